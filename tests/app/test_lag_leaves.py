"""Lagged leaves in the app without a browser: the history simulation's history leaf, the
coupling picker, event kernels; their settings refit through the state's one effect without
recompiling; the filter cards' figures updated in place; the leaves in the held-out score,
paths, Best strengths and forward selection; every bad input refused with a message while the
app keeps working."""

import io

import numpy as np
import pytest

from glm_core import explorer
from glm_core.lag_curves import filter_curves
from glm_core.lag_leaves import LagLeaf, with_lags
from glm_core.simulation import simulate_history_session
from tests.compile_counts import CompileCounter
from widgets.lag_cards import LagCardsView, lag_adders
from widgets.share import decode_query, encode_query
from widgets.state import ExplorerState
from widgets.vocabulary import HISTORY_SIMULATION, UPLOAD

T = 20_000


@pytest.fixture(scope="module")
def state():
    """The history simulation as a page opens it: cell A with its history leaf, Smooth."""
    s = ExplorerState(source=HISTORY_SIMULATION, n_samples=T)
    s.start()
    assert s.error == "" and s.fit.converged
    return s


@pytest.fixture(autouse=True)
def history_only(state):
    """Each test starts from the history leaf alone on cell A (and leaves it so)."""
    yield
    state.error = ""
    if state.unit != "cell A":
        state.unit = "cell A"
    state.set_couplings([])
    for row in [r for r in state.lags if r.kind != "history"]:
        state.remove_lag(row)
    history = state.lags[0]
    history.param.update(include=True, window_ms=250.0, n_basis=8, log_strength=-3.0)


def test_the_history_simulation_opens_with_a_history_leaf_and_its_truth(state):
    assert state.unit == "cell A"
    assert [(r.kind, r.source, r.window_ms, r.n_basis) for r in state.lags] == [
        ("history", None, 250.0, 8)]
    assert [leaf for leaf in state.encoding.leaves if isinstance(leaf, LagLeaf)] == [
        LagLeaf("history", None, 0.25, 8)]
    include, strengths = state._settings()
    assert include == [True, False, True, True] and len(strengths) == 4
    (curve,) = state.filters
    assert curve.name == "history"
    np.testing.assert_allclose(curve.lags_ms, np.arange(10, 260, 10))
    # the engine's filter, as a gain with its band
    filt = state.fit.filters[0]
    np.testing.assert_allclose(curve.gain, np.exp(filt.log_gain))
    np.testing.assert_allclose(curve.upper / curve.gain, np.exp(1.959964 * filt.se), rtol=1e-5)
    truth = simulate_history_session(T, 0).lag_truth["cell A"]["history"]
    np.testing.assert_allclose(curve.truth, np.exp(truth))
    # the refractory dip is found: the gain 10 ms after a spike is far below 1
    assert curve.gain[0] < 0.3 and curve.upper[0] < 1.0
    assert state.stats["samples dropped (lag windows)"] == 25


def test_the_held_out_score_is_the_engines(state):
    include, strengths = state._settings()
    cv = explorer.cross_validate_encoding(state.encoding, include, strengths, "Smooth")
    assert state.stats["held-out bits/spike"] == pytest.approx(cv.pooled, abs=1e-4)
    # history adds held-out information about cell A's spikes
    state.lags[0].include = False
    without = state.stats["held-out bits/spike"]
    state.lags[0].include = True
    assert state.stats["held-out bits/spike"] > without + 0.05


def test_lag_settings_refit_in_place_without_recompiling(state):
    view = LagCardsView(state)
    (plot,) = view.plots.values()
    figure = plot.figure
    state.lags[0].log_strength = -1.0  # compiles nothing (the Smooth solver is made)
    with CompileCounter() as counter:
        state.lags[0].log_strength = -0.5
        state.lags[0].window_ms = 150.0
        state.lags[0].n_basis = 5
        state.lags[0].include = False
        state.lags[0].include = True
        state.variables[0].log_strength = -2.0
    assert counter.count == 0
    assert view.plots["history"].figure is figure  # updated, not rebuilt
    (curve,) = state.filters
    lags, gain = (np.asarray(v) for v in plot.source("gain").data.values())
    np.testing.assert_array_equal(lags, curve.lags_ms)
    np.testing.assert_array_equal(gain, curve.gain)
    assert lags[-1] == 150.0 and state.fit.filters[0].log_gain.shape == (15,)
    state.variables[0].log_strength = -3.0


def test_the_coupling_picker_adds_and_removes_a_leaf(state):
    adders = lag_adders(state)
    picker = next(w for w in adders.objects if "coupling-picker" in w.css_classes)
    assert picker.options == ["cell B", "cell C"]  # not the unit itself
    view = LagCardsView(state)
    picker.value = ["cell B"]
    assert [r.name for r in state.lags] == ["history", "coupling from cell B"]
    assert [c.name for c in state.filters] == ["history", "coupling from cell B"]
    assert len(view.plots) == 2 and state.error == ""
    coupling = state.filters[1]
    assert coupling.truth is not None and coupling.gain.max() > 1.3  # B drives A
    assert "coupling from cell B" in [state.encoding.leaf_name(i, state.session.names)
                                      for i in range(len(state.encoding.leaves))]
    picker.value = []
    assert [r.name for r in state.lags] == ["history"] and len(state.filters) == 1


def test_an_event_kernel_is_added_from_the_sessions_events(state):
    assert state.add_lag("event", "reward")
    assert state.lags[-1].window_ms == 500.0
    curve = state.filters[-1]
    assert curve.name == "event reward" and curve.lags_ms[-1] == 500.0
    assert curve.truth is not None


def test_selection_paths_and_best_strengths_include_the_lagged_leaves(state):
    state.select_variables()
    names = [state.encoding.leaf_name(i, state.session.names)
             for i in range(len(state.encoding.leaves))]
    chosen = [names[i] for i in state.selection.selected]
    assert "history" in chosen and "position" in chosen and "speed" not in chosen
    state.lags[0].include = False
    state.apply_selection()
    assert state.lags[0].include
    for row in state.variables[1:]:
        row.include = False  # position and history: two paths
    try:
        state.best_strengths()  # coordinate ascent of the held-out score, then the paths
        assert state.error == ""
        assert sorted(state.paths) == ["history", "position"]
        assert state.paths["history"][3] == pytest.approx(state.lags[0].log_strength)
        logs, scores = state.paths["history"][:2]
        assert state.lags[0].log_strength == pytest.approx(logs[np.nanargmax(scores)], abs=0.3)
    finally:
        state.variables[2].include = True


def working(state):
    """The page still shows a converged fit of the lagged model."""
    return state.fit is not None and state.fit.converged and len(state.filters) == len(
        state.lags)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.add_lag("coupling", "cell A"), "coupling to itself"),
    (lambda s: setattr(s.lags[0], "window_ms", 255.0), "not a whole number of 10 ms bins"),
])
def test_bad_lag_settings_are_refused_and_the_model_stays(state, change, message):
    before = state.fit
    change(state)
    assert message in state.error
    assert state.fit is before and working(state)
    assert state.lags[0].window_ms == 250.0


def test_too_many_coupled_units_are_refused(state):
    assert state.add_lag("event", "reward")
    assert state.set_couplings(["cell B", "cell C"])
    assert len(state.lags) == 4
    assert not state.add_lag("history", window_ms=100.0)  # a fifth leaf
    assert "too many" in state.error or "once" in state.error
    assert len(state.lags) == 4 and working(state)


def test_a_unit_coupled_to_itself_by_a_unit_change_clears_the_fit_until_fixed(state):
    state.set_couplings(["cell B"])
    state.unit = "cell B"
    assert "coupling to itself" in state.error
    assert state.fit is None and state.filters == []
    state.set_couplings([])  # the leaf goes: the page fits again
    assert working(state)


def test_a_window_longer_than_the_session_is_refused():
    s = ExplorerState(source=HISTORY_SIMULATION, n_samples=100,
                      on_load={"lags": []})
    s.start()
    s.add_lag("history", window_ms=1000.0)
    assert "longer than the session" in s.error
    assert s.lags == [] and s.fit is not None


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_history_of_a_unit_without_spikes_and_bad_event_columns_are_explained():
    rng = np.random.default_rng(0)
    n = 4000
    x = np.cumsum(rng.normal(0, 1, n))
    s = ExplorerState(source=UPLOAD, upload=("cells.npz", npz_bytes(
        bin_width=0.02, **{"count:busy": rng.poisson(0.3, n), "count:silent": np.zeros(n),
                           "var:x": x, "event:tone": rng.poisson(0.05, n)})))
    s.start()
    assert s.error == ""
    s.unit = "silent"
    s.error = ""
    assert not s.add_lag("history")
    assert "no spikes" in s.error and s.lags == []
    s.unit = "busy"
    assert s.add_lag("event", "tone") and s.error == "" and s.filters[0].name == "event tone"
    assert s.add_lag("coupling", "silent") is False and "no spikes" in s.error
    # an event column that is neither counts nor times: the loader says so, the page stays
    s.upload = ("bad.npz", npz_bytes(bin_width=0.02, **{"count:busy": rng.poisson(0.3, n),
                                                         "var:x": x,
                                                         "event:tone": rng.normal(0, 1, n)}))
    assert "tone" in s.error
    assert s.session.source.endswith("cells.npz") or "cells.npz" in s.session.source
    assert working(s)


def test_filter_curves_follow_the_engine_for_each_leaf():
    session = simulate_history_session(T, 0)
    enc = with_lags(explorer.encode(session, "cell A", [20, 20, 16]), session,
                    [LagLeaf("history", None, 0.1, 4), LagLeaf("coupling", "cell B", 0.2, 6)])
    fit = explorer.fit(enc, [True, False, True, True, True], [1e-3] * 5, "Smooth")
    history, coupling = filter_curves(session, enc, fit)
    assert (history.name, coupling.name) == ("history", "coupling from cell B")
    np.testing.assert_allclose(np.log(coupling.gain), fit.filters[1].log_gain)
    assert coupling.lags_ms[-1] == 200.0
    np.testing.assert_allclose(  # the true filter over the leaf's 20 lags
        np.log(coupling.truth), session.lag_truth["cell A"]["coupling:cell B"][:20])


def test_a_share_link_rebuilds_the_lagged_leaves(state):
    assert state.set_couplings(["cell B"])
    state.lags[1].param.update(window_ms=150.0, n_basis=5, log_strength=-2.2, include=False)
    query = encode_query(state)
    assert query["source"] == "history-simulation"
    assert (query["lags"], query["lag_include"], query["lag_window"], query["lag_basis"],
            query["lag_log_strength"]) == ("history;coupling:cell B", "1,0", "250,150", "8,5",
                                           "-3.0,-2.2")
    shared = decode_query(query)
    assert shared.notices == ()
    copy = ExplorerState(**shared.state, on_load=shared.on_load)
    copy.start()
    assert [r.settings() for r in copy.lags] == [r.settings() for r in state.lags]
    assert copy.error == ""
    for ours, theirs in zip(state.filters, copy.filters):
        np.testing.assert_allclose(theirs.gain, ours.gain, rtol=1e-4)


@pytest.mark.parametrize("key, value", [
    ("lags", "history;coupling:cell Z"), ("lags", "history;history"),
    ("lag_window", "250,abc"), ("lag_basis", "8"), ("lag_log_strength", "-3,3"),
    ("lag_include", "1,yes"),
])
def test_a_bad_lag_value_in_a_link_gets_a_notice(key, value):
    query = {"source": "history-simulation", "T": "20000", "lags": "history;coupling:cell B",
             "lag_include": "1,1", "lag_window": "250,150", "lag_basis": "8,5",
             "lag_log_strength": "-3,-2", key: value}
    shared = decode_query(query)
    assert len(shared.notices) == 1 and shared.notices[0].startswith(key)
    if key == "lags":
        assert "lags" not in shared.on_load  # the data set's default leaves
    else:
        setting = {"lag_include": "include", "lag_window": "window_ms", "lag_basis": "n_basis",
                   "lag_log_strength": "log_strength"}[key]
        assert [lag["kind"] for lag in shared.on_load["lags"]] == ["history", "coupling"]
        assert all(setting not in lag for lag in shared.on_load["lags"])
