"""Pytree GLM explorer: `panel serve app.py --setup warm_up.py`.

Composition only: each browser session gets its own ExplorerState and views.
"""

import panel as pn

from widgets._compat import frozen_models
from widgets.page import keep_compiled_solvers, load_extension, page_parts, start
from widgets.share import ShareLink

load_extension(served=True)
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
