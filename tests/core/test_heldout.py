"""Held-out scores, bands, Smooth and forward selection on the explorer's cell table, against
independent float64 references (sklearn, scipy) and the simulations' ground truth."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import poisson
from sklearn.linear_model import PoissonRegressor

from glm_core import explorer, tuning
from glm_core.cell_table import max_bins_for
from glm_core.encoding import one_hot
from glm_core.errors import InputError
from glm_core.simulation import simulate_binned_truth, simulate_session
from tests.compile_counts import CompileCounter
from widgets.heldout_jobs import PATH_POINTS
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING, SIMULATION, VariableSettings


@pytest.fixture(scope="module")
def session():
    return simulate_session(6_000, seed=4)


def design(enc, include):
    return np.hstack([one_hot(enc.indices[:, v], n).astype(float)
                      for v, n in enumerate(enc.n_bins) if include[v]])


def fold_ids(n, k):
    """Independent of glm_core: 5k contiguous sections, section j in fold j % k."""
    out = np.empty(n, int)
    for j, idx in enumerate(np.array_split(np.arange(n), 5 * k)):
        out[idx] = j % k
    return out


def bits(y, rate, mean_rate):
    ll = poisson.logpmf(y, rate).sum() - poisson.logpmf(y, mean_rate).sum()
    return ll / y.sum() / np.log(2)


@pytest.mark.parametrize("n_folds", [10, 4])
def test_cross_validation_equals_sklearn_refits_per_fold(session, n_folds):
    include, s = [True, False, True], 3e-3
    enc = explorer.with_folds(explorer.encode(session, 0, [12, 5, 8]), n_folds)
    cv = explorer.cross_validate_encoding(enc, include, [s] * 3, "Ridge")
    assert cv.converged.all()
    X, y = design(enc, include), enc.counts
    fold = fold_ids(y.size, n_folds)
    test, train, ll_model, ll_mean = [], [], 0.0, 0.0
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        ref = PoissonRegressor(alpha=s, tol=1e-12, max_iter=1000, solver="newton-cholesky")
        ref.fit(X[tr], y[tr])
        mean_rate = y[tr].mean()
        test.append(bits(y[te], ref.predict(X[te]), mean_rate))
        train.append(bits(y[tr], ref.predict(X[tr]), mean_rate))
        ll_model += poisson.logpmf(y[te], ref.predict(X[te])).sum()
        ll_mean += poisson.logpmf(y[te], mean_rate).sum()
    np.testing.assert_allclose(cv.test_bits_per_spike, test, atol=1e-4)
    np.testing.assert_allclose(cv.train_bits_per_spike, train, atol=1e-4)
    spikes = np.bincount(fold, y, n_folds)
    assert cv.pooled == pytest.approx(np.sum(np.multiply(test, spikes)) / y.sum(), abs=1e-4)
    train_spikes = y.sum() - spikes
    assert cv.train_pooled == pytest.approx(
        np.sum(np.multiply(train, train_spikes)) / train_spikes.sum(), abs=1e-4)
    assert cv.test_pseudo_r2 == pytest.approx(1.0 - ll_model / ll_mean, abs=1e-4)
    np.testing.assert_array_equal(cv.test_spikes, np.bincount(fold, y, n_folds))
    np.testing.assert_array_equal(cv.test_spikes + cv.train_spikes, np.full(n_folds, y.sum()))


def test_pooled_held_out_score_is_below_the_training_score_on_well_specified_simulations():
    """Issue 18: the headline held-out score must not beat the training score on data the model
    can represent exactly. The pooled score (all folds' gains / all held-out spikes) is below
    the pooled training score in >= 95% of 60 seeds; the unweighted mean of per-fold ratios,
    the old headline, is not (56 of 60: folds of few spikes score high)."""
    below = 0
    for seed in range(60):
        s = simulate_binned_truth(10_000, seed)
        enc = explorer.encode(s, 0, [10, 6, 8])
        cv = explorer.cross_validate_encoding(enc, [True] * 3, [1e-3] * 3, "Ridge")
        below += cv.pooled < cv.train_pooled
    assert below >= 57


def explicit_smooth_objective(X_blocks, circular, y, strengths):
    """NeMoS's mean Poisson loss plus 0.5 * s * sum of squared neighbour differences (wrapped
    for circular leaves) plus the 1e-3 * s ridge, written out term by term."""

    def f(theta):
        b, offset, eta, pen = theta[-1], 0, theta[-1], 0.0
        for X, circ, s in zip(X_blocks, circular, strengths):
            w = theta[offset: offset + X.shape[1]]
            offset += X.shape[1]
            eta = eta + X @ w
            diffs = [w[i + 1] - w[i] for i in range(w.size - 1)]
            if circ and w.size > 2:
                diffs.append(w[0] - w[-1])
            pen += 0.5 * s * (sum(d * d for d in diffs) + 1e-3 * np.sum(w * w))
        del b
        return np.mean(np.exp(eta) - y * eta) + pen

    return f


def test_smooth_on_the_grid_equals_a_float64_optimum(session):
    include, strengths = [True, False, True], [3e-2, 1.0, 1e-2]
    enc = explorer.encode(session, 0, [12, 5, 8])
    fit = explorer.fit(enc, include, strengths, "Smooth")
    assert fit.converged
    blocks = [one_hot(enc.indices[:, v], enc.n_bins[v]).astype(float) for v in (0, 2)]
    f = explicit_smooth_objective(blocks, [False, True], enc.counts, [strengths[0], strengths[2]])
    ref = minimize(f, np.zeros(12 + 8 + 1), method="BFGS", options={"gtol": 1e-10})
    coef = fit.coef(session.names, enc.n_bins)
    np.testing.assert_allclose(coef["position"], ref.x[:12], atol=2e-4)
    np.testing.assert_allclose(coef["head direction"], ref.x[12:20], atol=2e-4)
    np.testing.assert_allclose(fit.intercept, ref.x[-1], atol=2e-4)
    # the wrap-around link is there: the circular leaf's ends are pulled together
    assert abs(coef["head direction"][0] - coef["head direction"][-1]) < np.ptp(
        coef["head direction"])


def test_bands_cover_the_truth_at_the_nominal_rate():
    """Over 100 seeded simulations whose truth is piecewise constant on the bins, the 95% bands
    at Ridge 1e-4 cover the true curve in 92-98% of position and head-direction bins."""
    covered = []
    for seed in range(100):
        s = simulate_binned_truth(10_000, seed)
        enc = explorer.encode(s, 0, [10, 6, 8])
        fit = explorer.fit(enc, [True] * 3, [1e-4] * 3, "Ridge")
        for c in tuning.tuning_curves(s, enc, fit):
            if c.name != "speed":
                ok = np.isfinite(c.model)
                assert ok.sum() >= c.centres.size - 1
                covered.append(((c.lower <= c.truth) & (c.truth <= c.upper))[ok])
    rate = np.concatenate(covered).mean()
    assert 0.92 <= rate <= 0.98, rate


def test_forward_selection_finds_position_and_head_direction():
    picks = []
    for seed in range(20):
        s = simulate_binned_truth(10_000, 1000 + seed)
        enc = explorer.encode(s, 0, [10, 6, 8])
        picks.append(set(explorer.forward_select_encoding(enc, [1e-4] * 3, "Ridge").selected))
    assert sum(p == {0, 2} for p in picks) >= 18


@pytest.mark.parametrize("regularizer", ["Smooth", "Ridge"])
def test_forward_selection_after_best_strengths_never_adds_speed(regularizer):
    """Issue 18: after Best strengths, the page's default simulation (T = 2e4, default bins)
    had speed, which has no true effect, added for +0.0001 (Smooth, seed 0, p = 0.0098) and
    +0.0018 bits/spike (Ridge, seed 1, p = 0.019). The minimum gain keeps it out in seeds
    0-9, while position and head direction are always selected."""
    for seed in range(10):
        session = simulate_session(20_000, seed)
        rows = [VariableSettings(v, max_bins_for(3)) for v in session.variables]
        enc = explorer.encode(session, 0, [r.n_bins for r in rows])
        logs = explorer.best_strengths(enc, [True] * 3, [r.log_strength for r in rows],
                                       regularizer, PATH_POINTS)
        result = explorer.forward_select_encoding(enc, [10.0**x for x in logs], regularizer)
        assert set(result.selected) == {0, 2}, (seed, result.steps[-1])


def test_held_out_score_peaks_inside_the_slider_range():
    """Overfitting is visible: with far more bins than the truth has, training bits/spike
    falls with the strength, stays above the held-out score, and the held-out score has an
    interior optimum."""
    s = simulate_binned_truth(6_000, 4)
    enc = explorer.encode(s, 0, [60, 6, 32])
    grid = np.linspace(-6, 0, 13)
    scores = explorer.path(enc, [True, False, True], [1e-3] * 3, "Ridge", 0, grid)
    test = np.array([s.pooled for s in scores])
    train = np.array([s.train_pooled for s in scores])
    assert np.all(np.diff(train) < 1e-6)
    assert 0 < np.argmax(test) < grid.size - 1
    assert np.all(train >= test - 1e-3)


def test_changes_never_recompile_cross_validation(session):
    """After warm-up (fit and CV per regularizer), paths, Best strengths and forward selection
    compile nothing either: they reuse those solvers (a first path used to compile its own for
    seconds, over a minute with Lasso)."""
    enc = explorer.encode(session, 0, [12, 5, 8])
    explorer.warm_up(enc)
    grid = np.linspace(-5, -1, 5)
    with CompileCounter() as counter:
        for regularizer in ("Ridge", "Smooth", "Lasso"):
            explorer.path(enc, [True] * 3, [1e-3] * 3, regularizer, 0, grid)
        for regularizer in ("Ridge", "Smooth"):
            explorer.best_strengths(enc, [True] * 3, [-3] * 3, regularizer, grid)
        explorer.forward_select_encoding(enc, [1e-3] * 3, "Ridge")
        prev = explorer.cross_validate_encoding(enc, [True] * 3, [1e-2] * 3, "Ridge")
        for folds in (3, 10, 20):
            enc = explorer.with_folds(enc, folds)
            explorer.cross_validate_encoding(enc, [True, False, True], [1e-4] * 3, "Smooth")
        enc = explorer.with_bins(explorer.with_unit(enc, session, 0), session, 0, 30)
        explorer.cross_validate_encoding(enc, [True] * 3, [1e-3] * 3, "Ridge", prev.theta)
        explorer.path(enc, [True, True, False], [1e-3] * 3, "Ridge", 1, grid + 0.5)
    assert counter.count == 0


def test_bad_fold_settings_give_clear_messages(session):
    enc = explorer.encode(session, 0, [12, 5, 8])
    with pytest.raises(InputError, match="folds"):
        explorer.with_folds(enc, 21)
    small = simulate_session(60, seed=1)
    with pytest.raises(InputError, match="fewer folds"):
        explorer.with_folds(explorer.encode(small, 0, [3, 3, 3], n_folds=2), 20)


def test_a_fold_without_spikes_scores_nan_and_the_others_still_count(session):
    counts = session.counts.copy()
    counts[: counts.shape[0] // 50] = 0  # the first section (fold 0's) is silent
    from dataclasses import replace

    silent = replace(session, counts=counts)
    enc = explorer.encode(silent, 0, [12, 5, 8])
    cv = explorer.cross_validate_encoding(enc, [True] * 3, [1e-3] * 3, "Ridge")
    assert np.isnan(cv.test_bits_per_spike[0]) or enc.grid.fold_spikes[0] > 0
    assert np.isfinite(cv.pooled)


@pytest.mark.parametrize("source,ridge,smooth", [(SIMULATION, 1.446, 1.579),
                                                 (RECORDING, 1.669, 1.760)])
def test_smooth_is_the_better_default_for_both_built_in_sources(source, ridge, smooth):
    """README, "Is this fit any good?": at the page's default settings Smooth scores higher on
    held-out data than Ridge, for the simulation and the recording's t10c18."""
    state = ExplorerState(source=source)
    state.start()
    held_out = {}
    for regularizer in ("Ridge", "Smooth"):
        state.regularizer = regularizer
        held_out[regularizer] = state.stats["held-out bits/spike"]
    assert held_out["Ridge"] == pytest.approx(ridge, abs=0.005)
    assert held_out["Smooth"] == pytest.approx(smooth, abs=0.005)
