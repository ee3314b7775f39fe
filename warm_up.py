"""`panel serve app.py --setup warm_up.py`: compile and warm up once, before the first visitor."""

import panel as pn

from widgets.page import warm_up
from widgets.state import warm_population

warm_up()
warm_population()
# A later tab's page (HTML) is rendered from the first session's, and its own session is built
# at once, while the browser loads the page's scripts, instead of before the page is sent.
# Each tab still gets its own session, built from its own URL (the shared-link query).
pn.config.reuse_sessions = "warm"
