"""Exports of a fit with lagged leaves: the Code card's glm_core snippet refits the page's
coefficients and filters (1e-5), NeMoS's reaches the page's optimum, and the CSV and JSON hold
each filter's gain with its band and truth."""

import csv
import io
import json
import warnings

import numpy as np
import pytest

from glm_core import export
from widgets.export import fit_record, fit_settings
from widgets.state import ExplorerState
from widgets.vocabulary import HISTORY_SIMULATION


@pytest.fixture(scope="module")
def state():
    """Cell A of the history simulation with Ridge: history (8 functions) and a coupling from
    cell B (5 functions, 150 ms), speed left out."""
    s = ExplorerState(source=HISTORY_SIMULATION, n_samples=20_000, regularizer="Ridge")
    s.start()
    assert s.set_couplings(["cell B"])
    s.lags[1].param.update(n_basis=5, window_ms=150.0, log_strength=-2.5)
    s.variables[0].log_strength = -2.0
    assert s.error == "" and s.fit.converged
    return s


def run(code):
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "snippet", "exec"), namespace)
    return namespace


def app_coefficients(state):
    """The page's coefficients by leaf name (behavioural bins, then lag basis weights)."""
    out = {row.name: state.fit.weights[v, :row.n_bins]
           for v, row in enumerate(state.variables) if row.include}
    out.update({row.name: state.fit.lag_coef[j, :row.n_basis]
                for j, row in enumerate(state.lags) if row.include})
    return out


def test_the_glm_snippet_refits_the_pages_coefficients_and_filters(state):
    code = export.glm_snippet(fit_settings(state))
    assert "'history': lagged_counts(session.unit_counts('cell A'), 25, 8)" in code
    assert "'coupling from cell B': lagged_counts(session.unit_counts('cell B'), 15, 5)" in code
    assert "simulate_history_session(20000, seed=0)" in code
    ns = run(code)
    model = ns["model"]
    assert model.fit_.converged
    ours = app_coefficients(state)
    assert sorted(model.coef_) == sorted(ours)
    for name, coef in ours.items():
        np.testing.assert_allclose(model.coef_[name], coef, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(model.intercept_[0], state.fit.intercept, rtol=1e-5)
    # the same samples: those inside the longest window are dropped by both
    assert state.fit.n_dropped == 25


def test_the_glm_snippet_of_a_smooth_fit_gives_the_pages_filters(state):
    state.regularizer = "Smooth"
    try:
        ns = run(export.glm_snippet(fit_settings(state)))
        kernels = state.encoding.lag.kernels
        for j, row in enumerate(state.lags):
            filt = kernels[j] @ np.asarray(ns["model"].coef_[row.name], float)
            np.testing.assert_allclose(filt, state.fit.filters[j].log_gain, atol=1e-5)
    finally:
        state.regularizer = "Ridge"


def test_the_nemos_snippet_reaches_the_pages_optimum(state):
    pytest.importorskip("nemos")
    ns = run(export.nemos_snippet(fit_settings(state)))
    X, y, model = ns["X"], np.asarray(ns["y"], float), ns["model"]
    keys = {row.name.replace(" ", "_"): row for row in (*state.variables, *state.lags)
            if row.include}
    assert sorted(dict(model.coef_)) == sorted(keys)
    rows = ~np.any([np.isnan(np.asarray(X[k], float)).any(1) for k in keys], axis=0)
    ours = {key: coef for key, coef in zip(
        keys, (app_coefficients(state)[row.name] for row in keys.values()))}

    def objective(coef, intercept):
        eta = sum(np.asarray(X[k], float)[rows] @ np.asarray(coef[k], float) for k in coef)
        eta = eta + intercept
        penalty = sum(0.5 * 10.0 ** keys[k].log_strength * np.sum(np.asarray(w, float) ** 2)
                      for k, w in coef.items())
        return np.mean(np.exp(eta) - y[rows] * eta) + penalty

    f_nemos = objective(dict(model.coef_), float(np.ravel(model.intercept_)[0]))
    f_app = objective(ours, state.fit.intercept)
    assert f_app <= f_nemos + 1e-7
    assert f_nemos - f_app < 1e-4 * abs(f_app)


def test_the_csv_and_json_hold_each_filter(state):
    record = fit_record(state)
    text = export.record_json(record)
    lags = json.loads(text)["lags"]
    assert [lag["name"] for lag in lags] == ["history", "coupling from cell B"]
    for lag, curve, filt in zip(lags, state.filters, state.fit.filters):
        np.testing.assert_allclose(lag["lags_ms"], curve.lags_ms)
        np.testing.assert_allclose(lag["gain"], curve.gain)
        np.testing.assert_allclose(lag["gain_lower"], curve.lower)
        np.testing.assert_allclose(lag["log_gain"], filt.log_gain)
        assert lag["truth_gain"] is not None
    history = lags[0]
    assert (history["window_bins"], history["n_basis"], history["encoding"]) == (
        25, 8, "raised-cosine lags")
    rows = [r for r in csv.DictReader(io.StringIO(export.record_csv(record)))
            if r["variable"] == "coupling from cell B"]
    assert len(rows) == 15
    np.testing.assert_allclose([float(r["centre"]) for r in rows], state.filters[1].lags_ms)
    np.testing.assert_allclose([float(r["gain"]) for r in rows], state.filters[1].gain,
                               rtol=1e-6)
    np.testing.assert_allclose([float(r["truth_gain"]) for r in rows],
                               state.filters[1].truth[:15], rtol=1e-6)
