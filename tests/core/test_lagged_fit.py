"""The lagged-leaf engine (behavioural bins plus history, coupling and event leaves) against
independent references: a float64 scipy optimum of the explicit dense design (Ridge and
Smooth), the dense pytree ``GLM.fit``, explicit refits of each fold; causality of the lagged
rows; bad input; compile counts.

The references build their design from ``np.histogram`` bins, one-hot columns and a plain
loop over the lags, not from the engine's encoding.
"""

from dataclasses import replace

import jax
import numpy as np
import pytest
from scipy.optimize import minimize

from glm_core import GLM, explorer
from glm_core.basis import raised_cosine_log
from glm_core.crossval import fold_index
from glm_core.errors import InputError
from glm_core.lag_leaves import LagLeaf, lag_rows, with_lags
from glm_core.regularizers import SMOOTH_RIDGE, roughness
from glm_core.simulation import simulate_place_cells, simulate_session
from tests.compile_counts import CompileCounter
from tests.core import references as ref

N_BINS = [8, 6, 8]
LAGS = (LagLeaf("history", None, 0.10, 5), LagLeaf("coupling", "b", 0.05, 4),
        LagLeaf("event", "reward", 0.20, 6))
REL_TOL = 1e-5


@pytest.fixture(scope="module")
def data():
    base = simulate_session(20_000, seed=3, bin_width=0.01)
    others = simulate_place_cells(base, 2, seed=5).astype(float)
    counts = np.column_stack([base.counts[:, 0], others])
    session = replace(base, counts=counts, unit_names=("a", "b", "c"))
    rng = np.random.default_rng(7)
    events = {"reward": (rng.random(session.n_samples) < 0.01).astype(float)}
    enc = with_lags(explorer.encode(session, "a", N_BINS), session, LAGS, events)
    return session, events, enc


def lag_columns(train, window_s, n_basis, bin_width):
    """Row t = sum over lags l = 1..W of train[t - l] * kernels[l - 1], NaN for t < W."""
    window = int(round(window_s / bin_width))
    kernels = raised_cosine_log(n_basis, window)
    out = np.full((train.size, n_basis), np.nan)
    for t in range(window, train.size):
        out[t] = sum(train[t - lag] * kernels[lag - 1] for lag in range(1, window + 1))
    return out


def reference_design(session, events):
    """Per leaf its dense design (behavioural one-hot, then lagged), and the counts of unit a."""
    designs = [ref.one_hot(ref.histogram_bins(v.values, n, v.circular)[0], n)
               for v, n in zip(session.variables, N_BINS)]
    trains = [session.unit_counts("a"), session.unit_counts("b"), events["reward"]]
    designs += [lag_columns(np.asarray(t, float), leaf.window_s, leaf.n_basis,
                            session.bin_width) for t, leaf in zip(trains, LAGS)]
    return designs, session.unit_counts("a").astype(float)


def penalty_matrices(regularizer, strengths, session):
    """Per leaf the matrix P of its penalty 0.5 w' P w (Ridge: s I; Smooth: s (D'D + r I))."""
    sizes = [*N_BINS, *(leaf.n_basis for leaf in LAGS)]
    circular = [v.circular for v in session.variables] + [False] * len(LAGS)
    if regularizer == "Ridge":
        return [s * np.eye(p) for s, p in zip(strengths, sizes)]
    return [s * (roughness(p, c) + SMOOTH_RIDGE * np.eye(p))
            for s, p, c in zip(strengths, sizes, circular)]


def scipy_optimum(designs, y, penalties):
    """float64 minimum of mean(exp(eta) - y eta) + sum 0.5 w' P w over the complete samples."""
    keep = ~np.any(np.isnan(np.hstack(designs)), axis=1)
    X = np.hstack([d[keep] for d in designs] + [np.ones((keep.sum(), 1))])
    y = y[keep]
    P = np.zeros((X.shape[1], X.shape[1]))
    start = 0
    for block in penalties:
        P[start:start + len(block), start:start + len(block)] = block
        start += len(block)

    def fun(theta):
        eta = X @ theta
        mu = np.exp(eta)
        value = np.mean(mu - y * eta) + 0.5 * theta @ P @ theta
        return value, X.T @ (mu - y) / y.size + P @ theta

    def hess(theta):
        mu = np.exp(X @ theta)
        return (X * mu[:, None]).T @ X / y.size + P

    theta0 = np.zeros(X.shape[1])
    theta0[-1] = np.log(y.mean())
    res = minimize(fun, theta0, jac=True, hess=hess, method="trust-exact",
                   options={"gtol": 1e-12})
    return res.x, keep


def engine_theta(fit):
    """The engine's coefficients in the reference's order."""
    parts = [fit.weights[v, :n] for v, n in enumerate(N_BINS)]
    parts += [fit.lag_coef[j, :leaf.n_basis] for j, leaf in enumerate(LAGS)]
    return np.concatenate([*parts, [fit.intercept]]).astype(float)


def relative_error(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# Smooth penalises a leaf's level (its shift against the intercept) only through its small
# ridge, SMOOTH_RIDGE * s: strengths near 1 keep that direction as well determined as Ridge's.
@pytest.mark.parametrize("regularizer, strengths", [
    ("Ridge", [1e-3, 3e-3, 1e-3, 1e-3, 1e-2, 3e-3]),
    ("Smooth", [3.0, 1.0, 3.0, 1.0, 3.0, 1.0])])
def test_fit_equals_float64_scipy_optimum(data, regularizer, strengths):
    session, events, enc = data
    designs, y = reference_design(session, events)
    expected, keep = scipy_optimum(designs, y, penalty_matrices(regularizer, strengths, session))
    fit = explorer.fit(enc, [True] * 6, strengths, regularizer)
    assert fit.converged
    assert fit.n_dropped == int((~keep).sum()) == 20  # the history leaf's 100 ms window
    assert relative_error(engine_theta(fit), expected) < REL_TOL
    # each curve's others' gain: the mean over the used samples of exp(the other leaves' terms,
    # the lagged ones included), from the fitted coefficients
    coefs = np.split(engine_theta(fit)[:-1], np.cumsum([d.shape[1] for d in designs])[:-1])
    terms = [np.nan_to_num(d[keep]) @ c for d, c in zip(designs, coefs)]
    for v in range(3):
        others = sum(t for u, t in enumerate(terms) if u != v)
        np.testing.assert_allclose(fit.log_others_gain[v], np.log(np.mean(np.exp(others))),
                                   rtol=1e-5, atol=1e-5)


def test_fit_equals_dense_pytree_glm(data):
    session, events, enc = data
    strengths = [1e-3, 3e-3, 1e-3, 1e-3, 1e-2, 3e-3]
    designs, y = reference_design(session, events)
    names = ["position", "speed", "direction", "history", "coupling", "event"]
    model = GLM("Ridge", dict(zip(names, strengths))).fit(dict(zip(names, designs)), y)
    dense = np.concatenate([*(np.asarray(model.coef_[n]) for n in names),
                            np.asarray(model.intercept_)])
    fit = explorer.fit(enc, [True] * 6, strengths, "Ridge")
    assert model.n_dropped_ == fit.n_dropped
    assert relative_error(engine_theta(fit), dense) < REL_TOL


def test_excluded_leaves_and_the_filter_band(data):
    """Excluding a lag leaf fits the model without it; a filter is kernels @ coefficients, with
    a positive band, one value per lag of its window."""
    session, events, enc = data
    strengths = [1e-3] * 6
    designs, y = reference_design(session, events)
    include = [True, False, True, True, False, True]
    penalties = [p for p, keep in zip(penalty_matrices("Ridge", strengths, session), include)
                 if keep]
    kept = [d for d, keep in zip(designs, include) if keep]
    # the samples dropped for any lag leaf stay dropped, so models are scored on one set
    complete = ~np.any(np.isnan(np.hstack(designs)), axis=1)
    expected, _ = scipy_optimum([d[complete] for d in kept], y[complete], penalties)
    fit = explorer.fit(enc, include, strengths, "Ridge")
    got = np.concatenate([fit.weights[0, :8], fit.weights[2, :8], fit.lag_coef[0, :5],
                          fit.lag_coef[2, :6], [fit.intercept]])
    assert relative_error(got, expected) < REL_TOL
    assert np.all(fit.weights[1] == 0) and np.all(fit.lag_coef[1] == 0)
    history = fit.filters[0]
    np.testing.assert_allclose(history.lags_ms, np.arange(1, 11) * 10.0)
    np.testing.assert_allclose(history.log_gain, raised_cosine_log(5, 10) @ fit.lag_coef[0, :5],
                               rtol=1e-6, atol=1e-7)
    reaches = raised_cosine_log(5, 10).any(1)  # the last lag's kernels are all zero
    assert np.all(history.se[reaches] > 0) and np.all(history.se[~reaches] == 0)
    assert np.all(np.isfinite(fit.curve_se[0, :8]))


def test_cross_validation_equals_explicit_refits(data):
    """Each fold's held-out gain equals a float64 refit on the other folds' samples scored on
    the fold (its lagged rows from the observed past), against the training folds' mean."""
    session, events, enc = data
    strengths = [1e-3, 3e-3, 1e-3, 1e-3, 1e-2, 3e-3]
    designs, y = reference_design(session, events)
    penalties = penalty_matrices("Ridge", strengths, session)
    cv = explorer.cross_validate_encoding(enc, [True] * 6, strengths, "Ridge")
    fold = fold_index(session.n_valid, 10)
    complete = ~np.any(np.isnan(np.hstack(designs)), axis=1)
    X = np.hstack([np.nan_to_num(d) for d in designs] + [np.ones((y.size, 1))])
    for k in (0, 3, 9):
        train = complete & (fold != k)
        theta, _ = scipy_optimum([d[train] for d in designs], y[train], penalties)
        test = complete & (fold == k)
        eta = X[test] @ theta
        rate = y[train].mean()
        gain = np.sum(y[test] * eta - np.exp(eta)) - (y[test].sum() * np.log(rate)
                                                      - test.sum() * rate)
        np.testing.assert_allclose(cv.test_gain[k], gain, rtol=2e-4, atol=1e-3)
        assert cv.test_spikes[k] == y[test].sum()
    assert cv.n_dropped == 20 and np.all(cv.converged)


def test_a_spike_changes_only_later_rows(data):
    """Adding one spike at t changes the rows t + l of its leaf for the lags l = 1 .. W its
    kernels reach, and no other, never row t itself: the design is strictly causal."""
    session, events, _ = data
    t = 5_000
    counts = session.counts.copy()
    counts[t, 1] += 1  # unit b drives a
    moved = replace(session, counts=counts)
    before, _, _ = lag_rows(session, "a", LAGS, events)
    after, _, _ = lag_rows(moved, "a", LAGS, events)
    changed = np.flatnonzero(np.any(np.nan_to_num(after - before) != 0, axis=1))
    reaches = np.flatnonzero(raised_cosine_log(4, 5).any(1))  # lags 1 .. 4 of 50 ms = 5 bins
    np.testing.assert_array_equal(changed, t + 1 + reaches)
    columns = np.flatnonzero(np.any(np.nan_to_num(after - before) != 0, axis=0))
    np.testing.assert_array_equal(columns, np.arange(8, 12))  # the coupling leaf's block


def test_bad_lag_leaves_get_clear_messages(data):
    session, events, enc = data
    silent = replace(session, counts=np.column_stack([session.counts, np.zeros(20_000)]),
                     unit_names=("a", "b", "c", "silent"))
    cases = [
        (session, [LagLeaf("history", None, 0.105, 4)], "whole number"),
        (session, [LagLeaf("history", None, 250.0, 4)], "longer than the session"),
        (session, [LagLeaf("coupling", "a", 0.1, 4)], "itself"),
        (session, [LagLeaf("history", None, 0.1, 9)], "between 2 and 8"),
        (session, [LagLeaf("event", "lick", 0.1, 4)], "no event train"),
        (session, [LagLeaf("history"), LagLeaf("coupling", "b"), LagLeaf("coupling", "c"),
                   LagLeaf("event", "reward"), LagLeaf("coupling", 2)], "too many"),
        (silent, [LagLeaf("coupling", "silent", 0.1, 4)], "no spikes"),
    ]
    for sess, lags, message in cases:
        with pytest.raises(InputError, match=message):
            with_lags(enc, sess, lags, events)
    quiet = explorer.encode(silent, "silent", N_BINS)
    with pytest.raises(InputError, match="no spikes"):
        with_lags(quiet, silent, [LagLeaf("history", None, 0.1, 4)], events)
    with pytest.raises(InputError, match="itself"):  # switching unit keeps the leaves' checks
        explorer.with_unit(enc, session, "b")


def test_interactive_changes_never_recompile(data):
    """After one fit and one cross-validation, strengths, includes, the unit, the coupled unit,
    windows and basis counts (within their maxima), the folds and a path compile nothing."""
    session, events, enc = data
    jax.clear_caches()
    explorer.warm_up(enc, ("Ridge",))
    # the cell table's first switch of unit compiles its few array conversions, once
    explorer.with_unit(with_lags(enc, session, ()), session, "b")
    with CompileCounter() as counter:
        fit = explorer.fit(enc, [True] * 6, [1e-2] * 6, "Ridge")
        explorer.fit(enc, [True, False, True, True, True, False], [1e-1] * 6, "Ridge",
                     init=fit.theta)
        explorer.cross_validate_encoding(enc, [False, True, True, True, False, True],
                                         [1e-3] * 6, "Ridge")
        changed = with_lags(enc, session, (LagLeaf("history", None, 0.25, 8),
                                           LagLeaf("coupling", "c", 0.03, 3)), events)
        explorer.fit(changed, [True] * 5, [1e-2] * 5, "Ridge")
        explorer.cross_validate_encoding(changed, [True] * 5, [1e-2] * 5, "Ridge")
        other_unit = with_lags(explorer.with_unit(with_lags(enc, session, ()), session, "c"),
                               session, (LagLeaf("history"), LagLeaf("coupling", "a")), events)
        explorer.fit(other_unit, [True] * 5, [1e-2] * 5, "Ridge")
        explorer.path(explorer.with_folds(other_unit, 5), [True] * 5, [1e-2] * 5, "Ridge", 3,
                      [-3.0, -2.0])
    assert counter.count == 0


def test_a_warm_start_of_the_other_layout_is_ignored(data):
    """Adding or removing lagged leaves changes the solver's layout: a fit or CV started from
    the other layout's solution starts cold instead, and gives the same answer."""
    session, _, enc = data
    plain = with_lags(enc, session, ())
    grid_fit = explorer.fit(plain, [True] * 3, [1e-2] * 3, "Ridge")
    lag_fit = explorer.fit(enc, [True] * 6, [1e-2] * 6, "Ridge")
    warm = explorer.fit(enc, [True] * 6, [1e-2] * 6, "Ridge", init=grid_fit.theta)
    np.testing.assert_allclose(warm.lag_coef, lag_fit.lag_coef, rtol=1e-5, atol=1e-6)
    back = explorer.fit(plain, [True] * 3, [1e-2] * 3, "Ridge", init=lag_fit.theta)
    np.testing.assert_allclose(back.weights, grid_fit.weights, rtol=1e-5, atol=1e-6)
    lag_cv = explorer.cross_validate_encoding(enc, [True] * 6, [1e-2] * 6, "Ridge")
    grid_cv = explorer.cross_validate_encoding(plain, [True] * 3, [1e-2] * 3, "Ridge",
                                               lag_cv.theta, moved=(lag_fit.theta, warm.theta))
    cold = explorer.cross_validate_encoding(plain, [True] * 3, [1e-2] * 3, "Ridge")
    np.testing.assert_allclose(grid_cv.test_gain, cold.test_gain, rtol=1e-5)


def test_event_trains_come_from_the_session_by_default(data):
    """Without an explicit mapping, an event leaf reads ``session.events``."""
    session, events, _ = data
    explicit, used, _ = lag_rows(session, "a", LAGS, events)
    own, own_used, _ = lag_rows(replace(session, events=events), "a", LAGS)
    np.testing.assert_array_equal(np.nan_to_num(own), np.nan_to_num(explicit))
    np.testing.assert_array_equal(own_used, used)
