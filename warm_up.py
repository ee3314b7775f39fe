"""`panel serve app.py --setup warm_up.py`: compile what the first page needs before the port
opens; the rest compiles on a background thread meanwhile (widgets/warm.py)."""

import gc

from widgets._compat import skip_document_validation
from widgets.page import keep_compiled_solvers
from widgets.warm import warm_first_page, warm_rest

keep_compiled_solvers()
warm_first_page()
skip_document_validation()
# What the warm-up keeps (modules, compiled solvers, shared fits) lives as long as the server:
# full garbage collections, whose cost grows with every open tab, no longer walk it. (Its garbage,
# the warm-up's pages, is collected first: frozen, it would never be.) What the background thread
# compiles later stays unfrozen: by then tabs may be open, whose garbage must stay collectable.
gc.collect()
gc.freeze()
warm_rest()
