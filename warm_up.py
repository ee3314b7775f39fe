"""`panel serve app.py --setup warm_up.py`: compile and warm up once, before the first visitor."""

import gc

from bokeh.settings import settings

from widgets.warm import warm_population, warm_up

warm_up()
warm_population()
# Bokeh's integrity checks of each new session's document (about 70 ms a tab) only log warnings;
# tests/test_views.py runs them on the page once.
settings.perform_document_validation.set_value(False)
# What the warm-up keeps (modules, compiled solvers, shared fits) lives as long as the server:
# full garbage collections, whose cost grows with every open tab, no longer walk it. (Its garbage,
# the warm-up's pages, is collected first: frozen, it would never be.)
gc.collect()
gc.freeze()
