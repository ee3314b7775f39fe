"""Pytree GLM explorer: `panel serve app.py --setup warm_up.py`.

Composition only: each browser session gets its own ExplorerState and views.
"""

import panel as pn

from widgets.page import keep_compiled_solvers, page_parts, start
from widgets.state import ExplorerState

pn.extension("filedropper", "tabulator", sizing_mode="stretch_width", notifications=False)
keep_compiled_solvers()

state = ExplorerState()
sidebar, main = page_parts(state)
start(state)

# No busy spinner: it would cost two extra messages and a restyle per refit.
pn.template.BootstrapTemplate(title="Pytree GLM explorer", sidebar=sidebar, main=main,
                              busy_indicator=None).servable()
