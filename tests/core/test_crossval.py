"""Cross-validation and forward selection of the dense GLM against explicit float64 refits of
each fold (sklearn, scipy), hand-written folds and the simulation's ground truth; compile
counts; bad input."""

import numpy as np
import pytest
from scipy.stats import poisson, wilcoxon
from sklearn.linear_model import PoissonRegressor

from glm_core import GLM, cross_validate, forward_select
from glm_core.crossval import MIN_GAIN, CVResult, bits_per_spike, fold_index, select_by_score
from glm_core.encoding import bin_index, make_binning, one_hot
from glm_core.errors import InputError
from glm_core.regularizers import Smooth
from glm_core.simulation import simulate_session
from tests.compile_counts import CompileCounter
from tests.core.test_smooth import reference_fit


def one_hot_design(session, bins):
    return {v.name: one_hot(bin_index(v.values, make_binning(v.values, n, v.circular)), n)
            for v, n in zip(session.variables, bins)}


@pytest.fixture(scope="module")
def data():
    session = simulate_session(3000, seed=5)
    return one_hot_design(session, (8, 5, 6)), session.counts[:, 0].astype(float)


def hand_folds(n, k):
    fold = np.empty(n, int)
    for j, section in enumerate(np.array_split(np.arange(n), 5 * k)):
        fold[section] = j % k
    return fold


@pytest.mark.parametrize("n,k", [(10, 2), (103, 3), (1000, 10), (1001, 20), (12345, 7)])
def test_folds_are_contiguous_sections_dealt_in_turn(n, k):
    np.testing.assert_array_equal(fold_index(n, k), hand_folds(n, k))


def test_folds_by_hand():
    # 12 samples, 10 sections: the first two sections hold two samples each.
    np.testing.assert_array_equal(fold_index(12, 2), [0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1])


@pytest.mark.parametrize("n,k,message", [
    (100, 1, "between 2 and 20"), (1000, 21, "between 2 and 20"),
    (49, 10, "10 folds need at least 50 samples.*there are 49"),
])
def test_bad_fold_counts_raise_input_error(n, k, message):
    with pytest.raises(InputError, match=message):
        fold_index(n, k)


def test_bits_per_spike_against_scipy_log_likelihoods():
    rng = np.random.default_rng(0)
    y = rng.poisson(2.0, (3, 50))
    rate = rng.uniform(0.5, 4.0, (3, 50))
    ll_model = poisson.logpmf(y, rate).sum(1)
    ll_mean = poisson.logpmf(y, 1.5).sum(1)
    expected = (ll_model - ll_mean) / y.sum(1) / np.log(2)
    np.testing.assert_allclose(bits_per_spike(ll_model, ll_mean, y.sum(1)), expected, rtol=1e-12)
    assert np.isnan(bits_per_spike(-3.0, -4.0, 0))


def reference_scores(X, y, n_folds, predict_fold):
    """Held-out and train bits/spike from ``predict_fold(train_mask) -> rate of every sample``,
    with scipy's Poisson log-pmf."""
    fold = hand_folds(y.size, n_folds)
    test, train = [], []
    for k in range(n_folds):
        mask = fold != k
        rate, mean = predict_fold(mask), y[mask].mean()
        for out, rows in ((test, ~mask), (train, mask)):
            gain = poisson.logpmf(y[rows], rate[rows]).sum() - poisson.logpmf(y[rows], mean).sum()
            out.append(gain / y[rows].sum() / np.log(2))
    return np.array(test), np.array(train)


def test_ridge_cv_equals_sklearn_refits_per_fold(data):
    X, y = data
    s = 3e-3
    result = cross_validate(GLM("Ridge", s), X, y, n_folds=5)
    Xm = np.hstack(list(X.values())).astype(float)

    def predict(mask):
        ref = PoissonRegressor(alpha=s, solver="newton-cholesky", tol=1e-12, max_iter=1000)
        return ref.fit(Xm[mask], y[mask]).predict(Xm)

    test, train = reference_scores(X, y, 5, predict)
    np.testing.assert_allclose(result.test_bits_per_spike, test, atol=1e-4)
    np.testing.assert_allclose(result.train_bits_per_spike, train, atol=1e-4)
    assert result.converged.all()
    spikes = np.bincount(hand_folds(y.size, 5), y, 5)
    pooled = np.sum(test * spikes) / spikes.sum()  # the sum of the folds' gains / all spikes
    assert result.pooled == pytest.approx(pooled, abs=1e-4)
    assert result.train_pooled == pytest.approx(
        np.sum(train * (y.sum() - spikes)) / (4 * y.sum()), abs=1e-4)
    # the delta-method SE of a ratio of sums, written out
    residual = test * spikes - pooled * spikes
    assert result.pooled_se == pytest.approx(
        np.sqrt(5 / 4 * np.sum(residual**2)) / spikes.sum(), abs=1e-4)
    np.testing.assert_array_equal(result.test_spikes + result.train_spikes,
                                  np.full(5, y.sum()))
    fold, ll_model, ll_mean = hand_folds(y.size, 5), 0.0, 0.0
    for k in range(5):
        train = fold != k
        ll_model += poisson.logpmf(y[~train], predict(train)[~train]).sum()
        ll_mean += poisson.logpmf(y[~train], y[train].mean()).sum()
    assert result.test_pseudo_r2 == pytest.approx(1.0 - ll_model / ll_mean, abs=1e-5)
    assert result.theta.shape == (5, Xm.shape[1] + 1)


def test_smooth_cv_equals_scipy_refits_per_fold(data):
    X, y = data
    strength = {"position": 0.05, "speed": 0.5, "head direction": 0.1}
    circular = {"head direction"}
    result = cross_validate(GLM(Smooth(circular=circular), strength), X, y, n_folds=4)

    def predict(mask):
        coef, intercept = reference_fit(X, y, strength, circular, train=mask)
        return np.exp(sum(X[k] @ coef[k] for k in X) + intercept)

    test, train = reference_scores(X, y, 4, predict)
    np.testing.assert_allclose(result.test_bits_per_spike, test, atol=1e-4)
    np.testing.assert_allclose(result.train_bits_per_spike, train, atol=1e-4)


@pytest.mark.parametrize("regularizer", ["Ridge", Smooth(circular={"head direction"}), "Lasso"])
def test_new_strengths_do_not_recompile(data, regularizer):
    X, y = data
    cross_validate(GLM(regularizer, 1e-2), X, y)
    with CompileCounter() as counter:
        for strength in (1e-4, {"position": 1.0, "speed": 1e-3, "head direction": 0.1}):
            cross_validate(GLM(regularizer, strength), X, y)
    assert counter.count == 0


def test_a_fold_without_spikes_scores_nan_and_still_counts_in_the_pooled_score(data):
    X, y = data
    fold = fold_index(y.size, 5)
    silent = np.where(fold == 2, 0.0, y)
    result = cross_validate(GLM("Ridge", 1e-2), X, silent, n_folds=5)
    assert result.test_spikes[2] == 0 and np.isnan(result.test_bits_per_spike[2])
    scored = np.delete(result.test_bits_per_spike, 2)
    assert np.all(np.isfinite(scored)) and np.all(np.isfinite(result.train_bits_per_spike))
    # its gain (the model's expected spikes where none came, against the mean's) still counts
    assert np.isfinite(result.test_gain[2]) and result.test_gain[2] != 0
    keep = np.arange(5) != 2
    np.testing.assert_allclose(result.test_gain[keep] / np.log(2),
                               scored * result.test_spikes[keep])
    assert result.pooled == pytest.approx(result.test_gain.sum() / silent.sum() / np.log(2))


def test_spikes_in_one_fold_only_or_too_many_folds_raise_input_error(data):
    X, y = data
    only_one = np.where(fold_index(y.size, 5) == 1, y, 0.0)
    with pytest.raises(InputError, match="all fall in one fold"):
        cross_validate(GLM("Ridge", 1e-2), X, only_one, n_folds=5)
    with pytest.raises(InputError, match="no spikes"):
        cross_validate(GLM("Ridge", 1e-2), X, 0 * y, n_folds=5)
    small = {k: v[:60] for k, v in X.items()}
    with pytest.raises(InputError, match="need at least 100 samples"):
        cross_validate(GLM("Ridge", 1e-2), small, y[:60], n_folds=20)


def scored(per_fold, spikes):
    """A CVResult with these per-fold held-out scores and spikes."""
    per_fold, spikes = np.asarray(per_fold, float), np.asarray(spikes, float)
    gain = per_fold * spikes * np.log(2)
    return CVResult(per_fold, per_fold, spikes, spikes, gain, gain, np.nan,
                    np.ones(per_fold.size, bool), None)


def test_select_by_score_compares_each_step_with_the_current_model():
    """The first key is tested against zero, later ones against the current model's folds; the
    best candidate is the best pooled score; the subsets are scored in the order keys were
    added; selection stops at the first p >= alpha."""
    rng = np.random.default_rng(1)
    spikes = rng.integers(50, 250, 10)
    a = 0.5 + 0.05 * rng.normal(size=10)
    table = {("a",): a, ("b",): a - 0.3, ("c",): a - 0.4,
             ("a", "b"): a + 0.1 + 0.01 * rng.normal(size=10), ("a", "c"): a - 0.01,
             ("a", "b", "c"): a + 0.1 + 0.02 * rng.normal(size=10)}
    calls = []

    def score_subset(keys):
        calls.append(keys)
        return scored(table[keys], spikes)

    def pooled(scores):
        return np.sum(scores * spikes) / spikes.sum()

    result = select_by_score(score_subset, ["b", "a", "c"], alpha=0.05)
    assert result.selected == ("a", "b")
    assert calls == [("b",), ("a",), ("c",), ("a", "b"), ("a", "c"), ("a", "b", "c")]
    first, second, third = result.steps
    assert (first.chosen, second.chosen, third.chosen) == ("a", "b", "c")
    assert [s.added for s in result.steps] == [True, True, False]
    np.testing.assert_allclose(second.gain, table[("a", "b")] - a)
    assert third.pooled_gain == pytest.approx(
        pooled(table[("a", "b", "c")]) - pooled(table[("a", "b")]))
    for step, before in zip(result.steps, (0.0, a, table[("a", "b")])):
        gain = step.scores[step.candidates.index(step.chosen)] - before
        np.testing.assert_allclose(step.gain, gain)
        assert step.p_value == pytest.approx(wilcoxon(gain, alternative="greater").pvalue)
    np.testing.assert_allclose(first.pooled, [pooled(table[(k,)]) for k in "bac"])


def test_a_gain_below_the_minimum_adds_nothing_whatever_its_p_value():
    """A tiny gain on every fold has the smallest p-value the test can give (2**-10), but
    adds nothing below ``min_gain`` (issue 18: speed added at +0.0001 bits/spike)."""
    spikes = np.full(10, 100.0)
    base = np.linspace(1.0, 1.5, 10)
    table = {("a",): base, ("b",): base - 0.5, ("a", "b"): base + 0.002}
    result = select_by_score(lambda keys: scored(table[keys], spikes), ["a", "b"])
    assert result.selected == ("a",) and result.min_gain == MIN_GAIN == 0.005
    last = result.steps[-1]
    assert last.p_value == pytest.approx(2.0**-10) and last.p_value < 0.05
    assert last.pooled_gain == pytest.approx(0.002) and not last.added
    assert select_by_score(lambda keys: scored(table[keys], spikes), ["a", "b"],
                           min_gain=1e-3).selected == ("a", "b")


@pytest.mark.parametrize("n_folds", [2, 3, 4, 5, 10])
def test_smallest_p_is_what_the_wilcoxon_test_can_reach(n_folds):
    """With every fold gaining, the one-sided test's p-value is 2**-n: the step says so, so
    that the page can explain why 3 folds select nothing."""
    gain = np.linspace(1.0, 2.0, n_folds)
    result = select_by_score(lambda keys: scored(gain, np.full(n_folds, 50.0)), ["a"])
    step = result.steps[0]
    assert step.smallest_p == 2.0**-n_folds
    assert step.p_value == pytest.approx(wilcoxon(gain, alternative="greater").pvalue)
    assert step.p_value == pytest.approx(step.smallest_p)
    assert step.added == (n_folds >= 5)


@pytest.mark.parametrize("seed,regularizer", [(0, "Ridge"), (1, "Ridge"), (2, "Ridge"),
                                               (3, Smooth(circular={"head direction"}))])
def test_forward_select_finds_the_variables_of_the_simulation(seed, regularizer):
    """Position and head direction drive the simulated cell, speed does not (T = 1e4; bins
    10/6/8)."""
    session = simulate_session(10_000, seed=seed)
    X = one_hot_design(session, (10, 6, 8))
    result = forward_select(GLM(regularizer, 1e-3), X, session.counts[:, 0])
    assert set(result.selected) == {"position", "head direction"}
    assert result.steps[-1].chosen == "speed" and not result.steps[-1].added


def test_forward_select_needs_a_dict(data):
    X, y = data
    with pytest.raises(InputError, match="dict"):
        forward_select(GLM("Ridge", 1e-2), list(X.values()), y)
