"""`panel serve app.py --setup warm_up.py`: compile and warm up once, before the first visitor."""

import gc

from widgets._compat import skip_document_validation
from widgets.warm import warm_population, warm_up

warm_up()
warm_population()
skip_document_validation()
# What the warm-up keeps (modules, compiled solvers, shared fits) lives as long as the server:
# full garbage collections, whose cost grows with every open tab, no longer walk it. (Its garbage,
# the warm-up's pages, is collected first: frozen, it would never be.)
gc.collect()
gc.freeze()
