"""Lag bases and lagged designs (spike history, coupling, event kernels): the kernels and the
design against NeMoS, strict causality, and the dense GLM with lagged leaves against a float64
scipy optimum, NaN rows dropped and counted."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from glm_core import GLM, cross_validate, forward_select, lagged, raised_cosine_log
from glm_core.crossval import fold_index
from glm_core.errors import InputError

nmo = pytest.importorskip("nemos")

SHAPES = [(2, 2), (3, 6), (5, 20), (8, 25), (10, 100)]  # (n_basis, window_size)


def nemos_basis(n_basis, window):
    return nmo.basis.RaisedCosineLogConv(n_basis, window_size=window)


@pytest.mark.parametrize("n_basis,window", SHAPES)
def test_raised_cosine_log_equals_nemos_kernels(n_basis, window):
    theirs = np.asarray(nemos_basis(n_basis, window).evaluate_on_grid(window)[1], float)
    ours = raised_cosine_log(n_basis, window)
    assert ours.shape == (window, n_basis)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("n_basis,window", SHAPES)
def test_lagged_equals_nemos_compute_features(n_basis, window):
    counts = np.random.default_rng(window).poisson(0.4, 700).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(nemos_basis(n_basis, window).compute_features(counts), float)
    ours = lagged(counts, raised_cosine_log(n_basis, window))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.all(np.isnan(ours[:window])) and not np.any(np.isnan(ours[window:]))
    np.testing.assert_allclose(ours[window:], theirs[window:], atol=1e-5, rtol=1e-5)


def test_lagged_row_is_the_sum_over_past_lags():
    """The definition, term by term: row t = sum_l counts[t - l] * kernels[l - 1]."""
    rng = np.random.default_rng(3)
    counts, kernels = rng.poisson(1.0, 60).astype(float), rng.normal(size=(7, 3))
    expected = np.full((60, 3), np.nan)
    for t in range(7, 60):
        expected[t] = sum(counts[t - lag] * kernels[lag - 1] for lag in range(1, 8))
    np.testing.assert_allclose(lagged(counts, kernels), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spike", [30, 31, 200, 494])
def test_one_spike_changes_only_the_rows_after_it(spike):
    """Causality: a spike at bin s changes rows s + 1 .. s + W, exactly those (where they exist),
    and never row s itself, nor any earlier row."""
    window = 25
    kernels = raised_cosine_log(6, window) + 0.01  # every lag weighs in
    counts = np.random.default_rng(spike).poisson(0.3, 500).astype(float)
    before = lagged(counts, kernels)
    counts[spike] += 1
    after = lagged(counts, kernels)
    changed = np.flatnonzero(np.any(np.nan_to_num(after - before, nan=0.0) != 0, axis=1))
    expected = np.arange(max(spike + 1, window), min(spike + window + 1, counts.size))
    np.testing.assert_array_equal(changed, expected)
    np.testing.assert_array_equal(after[:spike + 1], before[:spike + 1])


def test_moving_a_spike_changes_only_later_rows():
    window = 10
    kernels = raised_cosine_log(4, window)
    counts = np.zeros(100)
    counts[40] = 1
    before = lagged(counts, kernels)
    counts[40], counts[45] = 0, 1  # the spike moves from bin 40 to bin 45
    after = lagged(counts, kernels)
    np.testing.assert_array_equal(after[:41], before[:41])  # bin 40's own row included
    last = 45 + window + 1  # the last row that sees bin 45
    assert np.any(after[41:last] != before[41:last]) and np.all(after[last:] == before[last:])


def test_lagged_rejects_bad_input():
    kernels = raised_cosine_log(3, 10)
    for bad in (np.ones((5, 2)), np.r_[np.ones(20), np.nan], np.ones(10)):
        with pytest.raises(InputError):
            lagged(bad, kernels)
    for args in ((1, 10), (3, 1), (3, 10, 0.9), (3, 10, 2.2), (3, 10, 2.0, 0.0)):
        with pytest.raises(InputError):
            raised_cosine_log(*args)


@pytest.fixture(scope="module")
def history_data():
    """A unit driven by a behavioural leaf, its own history (refractory dip, then a bump) and a
    second, independent unit's past, simulated bin by bin as the GLM generates spikes."""
    rng = np.random.default_rng(5)
    n, window = 4000, 12
    kernels = raised_cosine_log(4, window)
    x = rng.normal(size=(n, 3)) * 0.4
    other = rng.poisson(0.4, n).astype(float)
    history = kernels @ np.array([-2.0, 0.3, 0.1, 0.0])  # per lag
    coupling = kernels @ np.array([0.5, 0.3, 0.0, 0.0])
    drive = -1.2 + x @ [0.6, -0.4, 0.2]
    y = np.zeros(n)
    for t in range(n):
        past = slice(max(t - window, 0), t)
        lags = t - np.arange(past.start, t)  # lag of each past bin
        eta = (drive[t] + y[past] @ history[lags - 1] + other[past] @ coupling[lags - 1])
        y[t] = rng.poisson(np.exp(min(eta, 2.0)))
    X = {"x": x, "history": lagged(y, kernels), "coupling": lagged(other, kernels)}
    return X, y, window


def scipy_ridge_optimum(A, y, strength):
    """float64 minimiser of mean[exp(A theta) - y A theta] + 0.5 s |theta[:-1]|^2 (A's last
    column is the unpenalised intercept)."""
    weights = np.r_[np.full(A.shape[1] - 1, strength), 0.0]

    def f(theta):
        eta = A @ theta
        return np.mean(np.exp(eta) - y * eta) + 0.5 * np.sum(weights * theta**2)

    def grad(theta):
        return A.T @ (np.exp(A @ theta) - y) / y.size + weights * theta

    def hess(theta):
        return (A * np.exp(A @ theta)[:, None]).T @ A / y.size + np.diag(weights)

    res = minimize(f, np.zeros(A.shape[1]), jac=grad, hess=hess, method="trust-exact",
                   options={"gtol": 1e-13})
    assert np.max(np.abs(grad(res.x))) < 1e-10
    return res.x


def test_ridge_fit_with_lagged_leaves_matches_the_scipy_optimum(history_data):
    X, y, window = history_data
    strength = 0.01
    model = GLM("Ridge", strength).fit(X, y)
    assert model.fit_.converged and model.n_dropped_ == window
    keys = ["coupling", "history", "x"]  # jax's (sorted) leaf order
    clean = slice(window, None)
    A = np.hstack([X[k][clean] for k in keys] + [np.ones((y.size - window, 1))])
    expected = scipy_ridge_optimum(A, y[clean], strength)
    ours = np.r_[[v for k in keys for v in np.asarray(model.coef_[k], float)],
                 float(model.intercept_[0])]
    assert np.linalg.norm(ours - expected) / np.linalg.norm(expected) < 1e-5
    # the refractory dip is recovered (first history basis function strongly negative)
    assert model.coef_["history"][0] < -1.0


def test_nan_rows_are_dropped_as_if_never_there(history_data):
    X, y, window = history_data
    full = GLM("Ridge", 0.01).fit(X, y)
    clean = GLM("Ridge", 0.01).fit({k: v[window:] for k, v in X.items()}, y[window:])
    assert full.n_dropped_ == window and clean.n_dropped_ == 0
    for k in X:
        np.testing.assert_allclose(full.coef_[k], clean.coef_[k], rtol=1e-6, atol=1e-7)
    predicted = np.asarray(full.predict(X))
    assert np.all(np.isnan(predicted[:window])) and np.all(np.isfinite(predicted[window:]))
    np.testing.assert_allclose(full.score(X, y), clean.score(
        {k: v[window:] for k, v in X.items()}, y[window:]), rtol=1e-6)


def test_a_nan_anywhere_in_a_row_drops_that_sample_only(history_data):
    X, y, window = history_data
    X = {k: v.copy() for k, v in X.items()}
    X["x"][[100, 2000]] = np.nan
    X["coupling"][2000, 1] = np.nan  # same sample: counted once
    assert GLM("Ridge", 0.01).fit(X, y).n_dropped_ == window + 2


def test_cross_validate_drops_nan_rows_and_keeps_every_sample_in_its_fold(history_data):
    X, y, window = history_data
    result = cross_validate(GLM("Ridge", 0.01), X, y, n_folds=5)
    assert result.n_dropped == window
    fold = fold_index(y.size, 5)
    np.testing.assert_allclose(result.test_spikes,
                               np.bincount(fold[window:], weights=y[window:], minlength=5))
    assert np.all(np.isfinite(result.test_bits_per_spike))
    # fold 0's model is an explicit refit on the clean samples outside fold 0
    train = np.ones(y.size, bool)
    train[:window] = False
    train &= fold != 0
    refit = GLM("Ridge", 0.01).fit({k: v[train] for k, v in X.items()}, y[train])
    theta = np.r_[[v for k in ["coupling", "history", "x"]
                   for v in np.asarray(refit.coef_[k], float)], float(refit.intercept_[0])]
    np.testing.assert_allclose(result.theta[0], theta, rtol=1e-4, atol=1e-5)


def test_forward_select_scores_every_subset_on_the_same_samples(history_data):
    X, y, window = history_data
    result = forward_select(GLM("Ridge", 0.01), X, y, n_folds=5, alpha=0.05)
    assert result.n_dropped == window
    assert "history" in result.selected and "x" in result.selected
    # "x" alone, whose leaf has no NaN, is scored without the samples the lagged leaves drop
    x_alone = X["x"].copy()
    x_alone[:window] = np.nan
    step = result.steps[0]
    np.testing.assert_allclose(
        step.scores[step.candidates.index("x")],
        cross_validate(GLM("Ridge", 0.01), {"x": x_alone}, y, n_folds=5).test_bits_per_spike,
        rtol=1e-6)
