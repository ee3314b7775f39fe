"""Issue 18: a lesson chosen while another lesson's data set is still being read wins, applied to
its own data. A server's scheduling is replayed in order (Panel's ``pn.state.execute`` and
periodic callbacks are queued, then run), so the second lesson arrives while the first one's
read is pending, as it does in a busy server."""

import asyncio

import panel as pn

from widgets import state as state_module
from widgets.lessons import LESSONS
from widgets.state import ExplorerState


def run_queued(queue):
    """Run what the server would have run, in order (coroutines to completion)."""
    while queue:
        result = queue.pop(0)()
        if asyncio.iscoroutine(result):
            asyncio.run(result)


def test_a_lesson_chosen_while_another_loads_wins(monkeypatch):
    state = ExplorerState()
    state.start()
    queue = []
    monkeypatch.setattr(state_module, "in_server", lambda: True)
    monkeypatch.setattr(pn.state, "execute",
                        lambda callback, schedule=False: queue.append(callback))
    monkeypatch.setattr(pn.state, "add_periodic_callback",
                        lambda callback, period, count: queue.append(callback))
    first, second = LESSONS[1], LESSONS[2]  # T = 3,000 unpenalised, then the same data with Ridge
    state.apply_settings(first.settings, first.variables, first.unit)
    assert queue and state.session.n_valid == 20_000  # its read is pending
    state.apply_settings(second.settings, second.variables, second.unit)
    run_queued(queue)
    assert state.session.n_valid == 3_000 and state.error == ""
    assert second.holds_in(state), {r.name: (r.n_bins, r.log_strength) for r in state.variables}
    assert state.fit is not None and state.encoding.n_bins[0] == 64
    assert [c.centres.size for c in state.curves] == [64, 20, 16]
