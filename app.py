"""Pytree GLM explorer: `panel serve app.py --setup warm_up.py`.

Composition only: each browser session gets its own ExplorerState and views.
"""

import panel as pn

from widgets.page import (
    PRESENTATION_CSS,
    frozen_models,
    keep_compiled_solvers,
    page_parts,
    start,
)
from widgets.plots import BOKEH_REDRAW_FIXES
from widgets.share import ShareLink

# No "filedropper": FilePond's scripts are loaded when an upload is first chosen (controls.py).
pn.extension("tabulator", sizing_mode="stretch_width", notifications=False,
             raw_css=[PRESENTATION_CSS], js_files=BOKEH_REDRAW_FIXES)
keep_compiled_solvers()

link = ShareLink()  # the settings in the URL, kept equal to each fit's
state = link.new_state()
sidebar, main = page_parts(state)
start(state)

# No busy spinner: it would cost two extra messages and a restyle per refit.
template = pn.template.BootstrapTemplate(title="Pytree GLM explorer", sidebar=sidebar,
                                         main=[link.notice, *main], busy_indicator=None)
with frozen_models():  # the document's model graph is walked once, not once per root
    template.servable()
