"""The bin-grid fit against the dense pytree GLM and the simulation's ground truth; compile
counts."""

from dataclasses import replace

import jax
import numpy as np
import pytest

from glm_core import explorer, tuning
from glm_core.encoding import one_hot
from glm_core.errors import InputError
from glm_core.glm import GLM
from glm_core.simulation import simulate_session
from tests.compile_counts import CompileCounter

REGULARIZERS = [("Ridge", [1e-3, 1e-2, 3e-3]), ("Lasso", [1e-3, 5e-3, 1e-3]),
                ("GroupLasso", [1e-3, 2e-2, 1e-3]), ("UnRegularized", [0.0, 0.0, 0.0])]


@pytest.fixture(scope="module")
def session():
    return simulate_session(20_000, seed=3)


def dense_fit(session, enc, include, strengths, regularizer):
    names = [n for n, keep in zip(session.names, include) if keep]
    X = {n: one_hot(enc.indices[:, session.names.index(n)], enc.n_bins[session.names.index(n)])
         for n in names}
    strength = {n: strengths[session.names.index(n)] for n in names}
    return GLM(regularizer, strength if regularizer != "UnRegularized" else None).fit(
        X, enc.counts)


@pytest.mark.parametrize("regularizer,strengths", REGULARIZERS)
def test_bin_grid_fit_equals_dense_one_hot_fit(session, regularizer, strengths):
    """Same objective value and same predictions as the dense fit of the one-hot design; the same
    coefficients where they are identified (Ridge and GroupLasso are strictly convex along the
    shift of a leaf against the intercept; without a penalty, or with Lasso over an even number
    of bins, a whole segment of shifts is optimal)."""
    enc = explorer.encode(session, 0, [24, 8, 12])
    include = [True, True, True]
    if regularizer == "UnRegularized":  # a bin without spikes has no finite optimum:
        include = [False, False, True]  # use a leaf whose bins all have spikes
    fit = explorer.fit(enc, include, strengths, regularizer)
    dense = dense_fit(session, enc, include, strengths, regularizer)
    assert fit.converged and dense.fit_.converged
    np.testing.assert_allclose(fit.objective, dense.fit_.objective, rtol=1e-6)
    design = {n: one_hot(enc.indices[:, session.names.index(n)],
                         enc.n_bins[session.names.index(n)]) for n in dense.coef_}
    log_rate = fit.intercept + sum(fit.weights[v, enc.indices[:, v]] for v in range(3))
    np.testing.assert_allclose(log_rate, np.log(dense.predict(design)), atol=1e-4)
    np.testing.assert_allclose(fit.log_likelihood, dense.score(design, enc.counts), rtol=1e-5)
    if regularizer in ("Ridge", "GroupLasso"):
        coef = fit.coef(session.names, enc.n_bins)
        for name, w in dense.coef_.items():
            np.testing.assert_allclose(coef[name], w, atol=3e-5)
        np.testing.assert_allclose(fit.intercept, dense.intercept_[0], atol=3e-5)


def test_excluded_variable_and_rebinning_match_dense(session):
    enc = explorer.with_bins(explorer.encode(session, 0, [24, 8, 12]), session, 0, 40)
    include, strengths = [True, False, True], [1e-3, 1e-3, 1e-3]
    fit = explorer.fit(enc, include, strengths, "Ridge")
    dense = dense_fit(session, enc, include, strengths, "Ridge")
    coef = fit.coef(session.names, enc.n_bins)
    assert coef["position"].shape == (40,)
    np.testing.assert_allclose(coef["position"], dense.coef_["position"], atol=3e-5)
    np.testing.assert_allclose(coef["head direction"], dense.coef_["head direction"], atol=3e-5)
    assert np.all(coef["speed"] == 0)


def test_warm_start_reaches_the_cold_solution(session):
    enc = explorer.encode(session, 0, [20, 10, 16])
    for regularizer, strengths in REGULARIZERS[:3]:
        first = explorer.fit(enc, [True] * 3, strengths, regularizer)
        moved = [s * 3 for s in strengths]
        warm = explorer.fit(enc, [True] * 3, moved, regularizer, init=first.theta)
        cold = explorer.fit(enc, [True] * 3, moved, regularizer)
        assert warm.converged and cold.converged and warm.n_iter <= cold.n_iter
        np.testing.assert_allclose(warm.objective, cold.objective, rtol=1e-6)
        if regularizer != "Lasso":  # Lasso's optimum can be a segment (see above)
            np.testing.assert_allclose(warm.weights, cold.weights, atol=3e-5)


def test_ground_truth_recovery(session):
    enc = explorer.encode(session, 0, [30, 10, 20])
    fit = explorer.fit(enc, [True] * 3, [1e-4] * 3, "Ridge")
    curves = {c.name: c for c in tuning.tuning_curves(session, enc, fit)}
    for name in ("position", "head direction"):
        c = curves[name]
        ok = np.isfinite(c.model)
        assert np.corrcoef(c.model[ok], c.truth[ok])[0, 1] > 0.9, name
        peak = np.nanargmax(c.truth)
        np.testing.assert_allclose(c.model[peak], c.truth[peak], rtol=0.2)
    speed = curves["speed"]
    assert np.nanstd(np.log(speed.model)) < 0.2  # no speed effect in the simulation


def test_group_lasso_at_moderate_strength_zeroes_speed(session):
    enc = explorer.encode(session, 0, [20, 10, 16])
    fit = explorer.fit(enc, [True] * 3, [3e-3] * 3, "GroupLasso")
    coef = fit.coef(session.names, enc.n_bins)
    assert np.all(coef["speed"] == 0)
    assert np.count_nonzero(coef["position"]) > 10
    assert np.count_nonzero(coef["head direction"]) > 10


def test_no_spikes_and_bad_settings_raise_input_error(session):
    enc = explorer.encode(session, 0, [20, 10, 16])
    silent = replace(enc, counts=enc.counts * 0, grid=enc.grid.with_counts(enc.counts * 0))
    with pytest.raises(InputError, match="no spikes"):
        explorer.fit(silent, [True] * 3, [1e-3] * 3, "Ridge")
    with pytest.raises(InputError):
        explorer.fit(enc, [False] * 3, [1e-3] * 3, "Ridge")
    with pytest.raises(InputError):
        explorer.with_bins(enc, session, 0, 65)


def test_interactive_changes_never_recompile(session):
    """After one fit per regularizer, strengths, toggles, bin counts up to the maximum, warm
    starts and another unit or data set of the same shape reuse the compiled solvers. Caches are
    cleared first, so that nothing compiled by earlier tests hides a recompile."""
    jax.clear_caches()
    enc = explorer.encode(session, 0, [20, 10, 16])
    explorer.warm_up(enc)
    prev = explorer.fit(enc, [True] * 3, [1e-3] * 3, "Ridge")
    with CompileCounter() as counter:
        for regularizer, _ in REGULARIZERS:
            for strength in (1e-5, 1e-3, 1e-1):
                explorer.fit(enc, [True, True, True], [strength] * 3, regularizer, init=prev.theta)
            explorer.fit(enc, [True, False, True], [1e-3] * 3, regularizer)
            explorer.fit(enc, [False, True, False], [1e-3] * 3, regularizer)
        for n in (2, 7, 33, 64):
            enc = explorer.with_bins(enc, session, 0, n)
            prev = explorer.fit(enc, [True] * 3, [1e-3] * 3, "Ridge", init=prev.theta)
        other = simulate_session(5_000, seed=9)
        explorer.fit(explorer.encode(other, 0, [64, 3, 5]), [True] * 3, [1e-2] * 3, "Lasso")
    assert counter.count == 0


def test_compile_counter_sees_a_new_shape(session):
    """The counter itself works: a new number of variables compiles once, then not again."""
    from glm_core.session import make_session

    two = make_session(session.bin_width, session.variables[:2], session.counts)
    jax.clear_caches()  # whatever earlier tests compiled
    with CompileCounter() as counter:
        explorer.fit(explorer.encode(two, 0, [10, 10]), [True, True], [1e-3] * 2, "Ridge")
    assert counter.count >= 1
    with CompileCounter() as counter:
        explorer.fit(explorer.encode(two, 0, [12, 9]), [True, True], [1e-2] * 2, "Ridge")
    assert counter.count == 0
