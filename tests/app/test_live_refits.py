"""Refits while the user works, outside a server: a strength change starts from the previous
solution, and a dragged slider refits at most once per interval (Panel's timer is replaced by a
list of pending callbacks, which the test fires by hand)."""

import numpy as np
import panel as pn
import param
import pytest

from glm_core import explorer
from widgets import controls
from widgets.controls import LIVE_INTERVAL_MS, variable_controls
from widgets.state import ExplorerState


@pytest.fixture(scope="module")
def state():
    s = ExplorerState(n_samples=20_000)
    s.start()
    assert s.error == ""
    return s


def test_a_strength_change_refits_from_the_previous_solution(state):
    """A warm start takes fewer solver iterations than a cold fit of the same settings, and lands
    on the same fit."""
    for log_strength in (-2.9, -3.5):
        state.variables[0].log_strength = log_strength
        rows = state.variables
        enc = explorer.encode(state.session, state.unit, [r.n_bins for r in rows])
        cold = explorer.fit(enc, [r.include for r in rows], [10.0**r.log_strength for r in rows],
                            state.regularizer)
        assert state.stats["converged"] and cold.converged
        assert state.stats["iterations"] < cold.n_iter
        assert state.stats["pseudo-R2 (McFadden)"] == pytest.approx(cold.pseudo_r2, rel=1e-5)


def test_a_dragged_slider_refits_once_per_interval(state, monkeypatch):
    """README: a key press refits at once; while a slider is dragged, refits are throttled to
    about 12 a second, each with the latest value, landing on the released value."""
    assert round(1000 / LIVE_INTERVAL_MS) == 12
    timers = []
    monkeypatch.setattr(controls, "in_server", lambda: True)
    monkeypatch.setattr(pn.state, "add_periodic_callback",
                        lambda callback, period, count: timers.append((callback, period, count)))
    card = variable_controls(state).objects[0]
    slider = next(w for w in card.objects if isinstance(w, pn.widgets.FloatSlider))
    row = state.variables[0]
    applied = []
    row.param.watch(lambda e: applied.append(e.new), "log_strength")
    r2 = state.stats["pseudo-R2 (McFadden)"]

    for value in (-2.5, -2.0, -1.5, -1.0):  # one burst of drag events
        slider.value = value
    # the first refits at once (a key press waits for nothing); the rest wait for the interval
    assert applied == [-2.5] and len(timers) == 1 and state.stats["pseudo-R2 (McFadden)"] != r2
    callback, period, count = timers.pop()
    assert (period, count) == (LIVE_INTERVAL_MS, 1)
    callback()  # the interval ends: one refit, with the latest value, and a new interval
    assert applied == [-2.5, -1.0] and len(timers) == 1
    timers.pop()[0]()  # a quiet interval: nothing to apply, and the throttle rests
    assert applied == [-2.5, -1.0] and not timers

    slider.value = -0.5  # after a quiet spell: at once
    assert applied == [-2.5, -1.0, -0.5] and len(timers) == 1
    slider.value = -0.6  # dragging on, then released elsewhere
    with param.edit_constant(slider):  # as Panel sets it when the mouse is released
        slider.value_throttled = -0.7
    assert applied == [-2.5, -1.0, -0.5, -0.7]  # the release applies at once
    timers.pop()[0]()  # the pending timer then has nothing left to apply
    assert applied == [-2.5, -1.0, -0.5, -0.7] and row.log_strength == -0.7
    assert not timers and np.isfinite(state.stats["log-likelihood"])
