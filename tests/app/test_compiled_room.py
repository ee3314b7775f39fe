"""A long-lived server makes room for compiled code before it runs out of memory mappings.

XLA:CPU maps each compiled kernel on its own; a process past ``vm.max_map_count`` crashes in its
next compile (a worker of this suite did, after about 65,000 mappings). Planted bugs these tests
catch: ``make_room`` that keeps the compiled code (its mappings stay), a compile that does not
make room first, and a tab whose fits stop working once the code is gone.
"""

import numpy as np

from tests.compile_counts import CompileCounter
from widgets import compiles
from widgets.compiles import mapping_limit, memory_mappings, solver_compiles
from widgets.state import ExplorerState


def curve(state, name):
    return next(c for c in state.curves if c.name == name).model


def test_memory_mappings_counts_this_process_maps():
    with open("/proc/self/maps") as maps:
        listed = len(maps.readlines())
    assert abs(memory_mappings() - listed) < 50  # both read now; a thread may map meanwhile
    assert mapping_limit() >= 1000


def started_tab():
    tab = ExplorerState(n_samples=5_000)
    tab.start()  # outside a server: this data set's solvers compile now
    return tab


def test_a_crowded_process_unmaps_its_solvers_and_its_tabs_fit_again(fresh_process):
    tab = started_tab()
    tab.variables[0].log_strength = -1.5
    fitted = curve(tab, "position")
    crowded = memory_mappings()
    limit = mapping_limit()

    assert not solver_compiles.make_room(share=(crowded + 500) / limit)  # room enough: kept
    assert solver_compiles.make_room(share=(crowded - 500) / limit)
    assert memory_mappings() < crowded - 2000  # the solvers' code was unmapped

    with CompileCounter() as counter:
        tab.variables[0].log_strength = -1.0
        tab.variables[0].log_strength = -1.5
    assert counter.count > 0  # compiled again, as needed
    assert tab.error == ""
    np.testing.assert_allclose(curve(tab, "position"), fitted, rtol=1e-5, equal_nan=True)


def test_a_compile_makes_room_first(fresh_process, monkeypatch):
    tab = started_tab()
    solver_compiles.compile(tab.encoding, "Ridge")
    assert solver_compiles.ready(tab.encoding, "Ridge")
    monkeypatch.setattr(compiles, "ROOM_SHARE", 0.0)  # every process counts as crowded
    solver_compiles.compile(tab.encoding, "Lasso")
    assert solver_compiles.ready(tab.encoding, "Lasso")
    assert not solver_compiles.ready(tab.encoding, "Ridge")  # cleared before Lasso compiled
