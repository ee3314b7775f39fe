"""The warm-up a server runs (``panel serve app.py --setup warm_up.py``): before the port opens,
compile and fill only what the first page shows; then compile the rest on a background thread,
most likely first, while the first visitors already work."""

from __future__ import annotations

import time

import panel as pn
from bokeh.document import Document

from glm_core.cell_table import max_bins_for

from .compiles import solver_compiles
from .export import code_view
from .page import explorer
from .paths import paths_view
from .population import population_view
from .shared import shared_open_field
from .state import ExplorerState
from .traces import traces_view
from .vocabulary import OPEN_FIELD, RECORDING, VariableSettings


def warm_first_page() -> None:
    """Compile the default regularizer's fit and cross-validation for the default data, fill
    the shared first fit and its score, and build one page (first-use costs of HoloViews, Bokeh
    and Panel), so that the first tab arrives fitted. The other compiles are queued for
    :func:`warm_rest`."""
    solver_compiles.queueing = True  # every later compile goes to the background thread
    start = time.perf_counter()
    view = explorer()  # its start() queues the default data's other solvers
    fitted = time.perf_counter()
    view.get_root(Document())
    for build in (code_view, paths_view, population_view, traces_view):  # built when opened
        pn.panel(build(view.state)).get_root(Document())
    pn.state.log(f"warm-up: first fit and score {fitted - start:.1f} s, page built in "
                 f"{time.perf_counter() - fitted:.1f} s; the rest compiles in the background")
    solver_compiles.queue(warm_population)
    solver_compiles.queue(warm_open_field)
    solver_compiles.queue(lambda: pn.state.log(
        f"warm-up: background compiles done {time.perf_counter() - start:.1f} s after the "
        "first page's began"))


def warm_rest():
    """Start the background thread that compiles what :func:`warm_first_page` queued: every
    regularizer of the default data (Best strengths' evidence first), the built-in recording
    and its population, then the open field's 2-D map. Returns the thread."""
    return solver_compiles.start_background()


def warm_population() -> None:
    """Compile the population fit and its held-out scores for the built-in recording's default
    model, once per process, so that the first "Fit all units" answers at once."""
    state = ExplorerState(source=RECORDING)
    state.start()
    state.update_population()


def warm_open_field() -> None:
    """Compile the default regularizer's solvers for the open field's default 2-D map layout."""
    state = ExplorerState(source=OPEN_FIELD)
    session = shared_open_field(state.n_samples, state.seed, n_units=state.open_field_units)
    rows = [VariableSettings(v, max_bins_for(len(session.variables))) for v in session.variables]
    encoding = state.encode(session, session.unit_names[0], rows, joint_map=True)
    solver_compiles.compile(encoding, state.regularizer)
