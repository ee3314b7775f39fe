"""The "Model in time" card without a browser: its predicted and observed arrays are glm_core's
(the cross-validated rate of the state's fold fits, the unit's counts), it follows refits only
while its card is open, the simulate toggle adds (and removes) the simulated spikes, and the
window control moves the stretch."""

import holoviews as hv
import numpy as np
import panel as pn
import pytest

from glm_core.model_in_time import cross_validated_rate
from glm_core.time_view import sample_log_rates, stretch, time_view
from widgets.model_in_time import DEFAULT_WINDOW_S, ModelInTimeView, describe, plot_data
from widgets.state import ExplorerState
from widgets.vocabulary import HISTORY_SIMULATION


def expected_rate(state, start, stop):
    """The cross-validated rate of samples start..stop-1 (all valid in the simulation), from
    the state's fold fits, through glm_core."""
    enc = state.encoding
    samples = np.arange(start, stop)
    eta = sample_log_rates(enc, np.asarray(state.cv.theta)[: enc.grid.n_folds], samples)
    return cross_validated_rate(eta, enc.grid.sample_fold[samples]) / state.session.bin_width


def test_predicted_and_observed_are_glm_cores_and_follow_refits():
    state = ExplorerState(n_samples=6000)
    state.start()
    view = ModelInTimeView(state)
    start, stop = stretch(state.session, 0.0, DEFAULT_WINDOW_S)
    assert view.data.time.size == stop - start
    np.testing.assert_allclose(view.data.predicted_rate, expected_rate(state, start, stop),
                               rtol=1e-10)
    np.testing.assert_array_equal(view.data.observed,
                                  state.session.unit_counts(state.unit)[start:stop])
    sent = plot_data(view.data)["rates"]
    np.testing.assert_array_equal(sent["predicted"], view.data.predicted_rate)
    assert isinstance(view._pane.object, hv.Layout) and len(view._pane.object) == 2 + len(
        state.session.variables)
    before = view.data.predicted_rate
    state.variables[0].log_strength = 0.0  # a much stronger penalty on position
    assert not np.allclose(view.data.predicted_rate, before)
    np.testing.assert_allclose(view.data.predicted_rate, expected_rate(state, start, stop),
                               rtol=1e-10)


def test_simulate_toggle_adds_and_removes_simulated_spikes():
    state = ExplorerState(n_samples=6000)
    state.start()
    view = ModelInTimeView(state)
    assert view.data.simulated is None
    view.simulate.value = True
    simulated = view.data.simulated
    assert simulated is not None and simulated.sum() > 0 and not view.data.ran_away
    assert "Simulated from the fit" in view.message.object
    ticks = plot_data(view.data)["raster"]["simulated"]
    np.testing.assert_allclose(ticks, view.data.time[simulated > 0])
    view.simulate.value = False
    assert view.data.simulated is None and plot_data(view.data)["raster"]["simulated"].size == 0


def test_window_and_start_move_the_stretch():
    state = ExplorerState(n_samples=6000)
    state.start()
    view = ModelInTimeView(state)
    view.window.value = 5.0
    view.start.value = 30.0
    view.start.param.trigger("value_throttled")  # as a released slider does
    start, stop = stretch(state.session, 30.0, 5.0)
    np.testing.assert_allclose(view.data.time, np.arange(start, stop) * state.session.bin_width)
    view.start.value = view.start.end
    view.start.param.trigger("value_throttled")
    state.n_samples = 2000  # a shorter session: the start moves inside it
    bw = state.session.bin_width
    last = 2000 * bw - 5.0
    assert view.start.end == pytest.approx(last) and view.start.value == pytest.approx(last)
    np.testing.assert_allclose(view.data.time[[0, -1]], [last, 2000 * bw - bw])


def test_a_collapsed_card_waits_until_it_is_opened():
    state = ExplorerState(n_samples=6000)
    state.start()
    card = pn.Card(collapsed=False)
    view = ModelInTimeView(state, card)
    card.collapsed = True
    shown = view.data
    state.variables[0].log_strength = 0.0
    assert view.data is shown  # not recomputed while collapsed
    card.collapsed = False
    assert view.data is not shown
    start, stop = stretch(state.session, 0.0, DEFAULT_WINDOW_S)
    np.testing.assert_allclose(view.data.predicted_rate, expected_rate(state, start, stop),
                               rtol=1e-10)


def test_with_a_history_leaf_the_card_shows_the_lagged_model_and_a_runaway():
    """The history simulation opens with a history leaf: the card's rate is the lagged fit's
    (none in the first window), its simulation runs the fitted history, and a self-exciting
    history filter's runaway is said in the card."""
    state = ExplorerState(source=HISTORY_SIMULATION, n_samples=12_000)
    state.start()
    assert state.encoding.lag is not None and state.error == ""
    view = ModelInTimeView(state)
    start, stop = stretch(state.session, 0.0, DEFAULT_WINDOW_S)
    window = state.encoding.lag.kernels[0].shape[0]
    assert np.all(np.isnan(view.data.predicted_rate[:window]))
    np.testing.assert_allclose(view.data.predicted_rate, expected_rate(state, start, stop),
                               rtol=1e-10)
    view.simulate.value = True
    assert view.data.simulated.sum() > 0 and "Simulated from the fit" in view.message.object
    theta = np.asarray(state.fit.theta, float).copy()
    n_beh = sum(state.encoding.grid.sizes)
    theta[n_beh:n_beh + 8] = 3.0  # a history filter that excites itself at every lag
    runaway = time_view(state.session, state.encoding, theta, None, start, stop,
                        simulate_seed=0)
    assert runaway.ran_away
    assert "ran away" in describe(runaway, state.session.bin_width)
