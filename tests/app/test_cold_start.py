"""The server's warm-up in two parts (widgets/warm.py): before the port opens it compiles only
what the first page shows; a background thread then compiles the rest, each solver once."""

import threading

import numpy as np

from glm_core import explorer
from glm_core.cell_table import max_bins_for
from glm_core.regularizers import REGULARIZERS
from tests.compile_counts import CompileCounter
from widgets.compiles import MOST_LIKELY_FIRST, solver_compiles
from widgets.shared import shared_simulation
from widgets.state import ExplorerState
from widgets.vocabulary import OPEN_FIELD, RECORDING, VariableSettings
from widgets.warm import warm_first_page, warm_rest

FIRST_PAGE_COMPILES = 8  # the default data's Smooth fit and its cross-validation
BACKGROUND_COMPILES = 20  # every regularizer of it, the recording and population, the 2-D map
# (25 before this session's solver changes; the asserts above show nothing compiles after them)


def test_the_first_page_compiles_only_what_it_needs_and_the_background_the_rest(fresh_process):
    with CompileCounter() as first:
        warm_first_page()
    tab = ExplorerState()  # a served tab's state, after the warm-up
    with CompileCounter() as tab_count:
        tab.start()  # queues its data's solvers (all queued already): compiles nothing now
        tab.variables[0].log_strength = -1.5  # a key press: refit and held-out score
    assert "held-out bits/spike" in tab.stats and tab.error == ""
    assert not any(solver_compiles.ready(tab.encoding, name) for name in REGULARIZERS)

    with CompileCounter() as rest:
        warm_rest()
        solver_compiles.wait_idle()
    assert all(solver_compiles.ready(tab.encoding, name) for name in REGULARIZERS)

    recording = ExplorerState(source=RECORDING)
    with CompileCounter() as after:
        for name in MOST_LIKELY_FIRST:
            tab.regularizer = name
            assert tab.error == "" or name == "UnRegularized", tab.error
        tab.best_strengths()
        recording.start()
        recording.update_population()
        open_field = ExplorerState(source=OPEN_FIELD)
        open_field.start()
    assert np.isfinite(recording.population.held_out).any()
    assert open_field.maps and open_field.error == ""
    assert (first.count, tab_count.count, after.count) == (FIRST_PAGE_COMPILES, 0, 0)
    assert rest.count == BACKGROUND_COMPILES


def test_a_solver_compiles_once_when_two_threads_ask_for_it(fresh_process, monkeypatch):
    """A tab asking for a solver that another thread is compiling waits for that compile: the
    warm-up of that solver runs once (JAX itself would compile it once either way: the second
    run would still hold the CPU for its tracing, and the tab would not know to wait)."""
    state = ExplorerState(n_samples=3_000, seed=3)
    session = shared_simulation(3_000, 3)
    rows = [VariableSettings(v, max_bins_for(len(session.variables))) for v in session.variables]
    encoding = state.encode(session, session.unit_names[0], rows)
    runs = []
    real = explorer.warm_up

    def counted(*args):
        runs.append(args)
        real(*args)

    monkeypatch.setattr(explorer, "warm_up", counted)
    threads = [threading.Thread(target=solver_compiles.compile, args=(encoding, "Lasso"))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert solver_compiles.ready(encoding, "Lasso") and len(runs) == 1
