"""The model seen in time: the cross-validated rate against explicit refits of each fold,
simulation from a fit (Poisson without history, the simulation's mean rate with the true filters,
runaway reported), and the display smoother against an explicit Gaussian convolution."""

import numpy as np
import pytest
from scipy.stats import chisquare, poisson

from glm_core import GLM, cross_validate, lagged, raised_cosine_log
from glm_core.basis import bspline
from glm_core.crossval import fold_index
from glm_core.errors import InputError
from glm_core.model_in_time import (
    cross_validated_rate,
    dense_fold_log_rates,
    simulate_from_fit,
    smooth_counts,
)
from glm_core.sequential import causal_filter
from glm_core.simulation import CELL_A, CELL_B, EVENT, simulate_history_session


@pytest.fixture(scope="module")
def session():
    return simulate_history_session(60_000, seed=2)


def test_cross_validated_rate_is_each_fold_predicted_by_its_own_refit(session):
    y = session.unit_counts(CELL_A)
    X = {"position": bspline(session.variable("position").values, 8, (0.0, 1.0)),
         "history": lagged(y, raised_cosine_log(5, 25))}
    model = GLM("Ridge", 1e-3)
    cv = cross_validate(model, X, y, 4)
    fold = fold_index(y.size, 4)
    rate = cross_validated_rate(dense_fold_log_rates(X, cv.theta), fold)
    assert np.all(np.isnan(rate[:25])) and not np.any(np.isnan(rate[25:]))
    complete = ~np.isnan(X["history"][:, 0])
    for k in range(4):
        train, test = complete & (fold != k), complete & (fold == k)
        refit = GLM("Ridge", 1e-3).fit({key: v[train] for key, v in X.items()}, y[train])
        expected = np.asarray(refit.predict({key: v[test] for key, v in X.items()}))
        np.testing.assert_allclose(rate[test], expected, rtol=2e-3)


def test_cross_validated_rate_takes_its_own_fold_and_nan_outside_folds():
    eta = np.log(np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]]))
    rate = cross_validated_rate(eta, np.array([0, 1, -1, 1]))
    np.testing.assert_allclose(rate, [1.0, 20.0, np.nan, 40.0])
    with pytest.raises(InputError, match="fold id"):
        cross_validated_rate(eta, np.array([0, 2, 0, 0]))
    with pytest.raises(InputError, match="integer"):
        cross_validated_rate(eta, np.zeros(4))


def test_fold_log_rates_in_blocks_equal_the_plain_product(monkeypatch):
    from glm_core import model_in_time
    rng = np.random.default_rng(3)
    X = {"a": rng.normal(size=(2500, 3)), "b": rng.normal(size=(2500, 2)).astype(np.float32)}
    X["a"][:7] = np.nan
    theta = rng.normal(size=(4, 6))
    expected = (np.hstack([X["a"], X["b"]]) @ theta[:, :5].T + theta[:, 5]).T
    monkeypatch.setattr(model_in_time, "ROW_CHUNK", 1000)
    np.testing.assert_allclose(dense_fold_log_rates(X, theta), expected, rtol=1e-12)
    with pytest.raises(InputError, match=r"theta must be \(n_folds, 6\)"):
        dense_fold_log_rates(X, theta[:, :5])


def test_without_history_simulated_counts_are_poisson():
    eta = np.full(40_000, np.log(0.3))
    sample = simulate_from_fit(eta, None, np.zeros(40_000), 0.01, seed=4)
    observed = np.bincount(sample.counts, minlength=4)[:4]
    expected = poisson.pmf(np.arange(4), 0.3) * 40_000
    expected[-1] += 40_000 - expected.sum()  # 3 or more
    observed[-1] += np.count_nonzero(sample.counts > 3)
    assert chisquare(observed, expected).pvalue > 1e-3
    assert sample.n_capped == 0


def true_drive(session):
    """Cell A's true log rate without its own history: behaviour, coupling from the observed
    cell B, reward kernel."""
    effects, intercept = session.truth_of(CELL_A)
    filters = session.lag_truth[CELL_A]
    return (intercept + sum(f(session.variable(k).values) for k, f in effects.items())
            + causal_filter(session.unit_counts(CELL_B), filters[f"coupling:{CELL_B}"])
            + causal_filter(session.events[EVENT], filters[f"event:{EVENT}"]))


def test_with_the_true_filters_the_simulation_keeps_the_mean_rate(session):
    observed = session.unit_counts(CELL_A)
    history = session.lag_truth[CELL_A]["history"]
    drive = true_drive(session)
    means = [simulate_from_fit(drive, history, observed, session.bin_width, start=25,
                               seed=s).counts.mean() for s in range(3)]
    assert np.mean(means) == pytest.approx(observed[25:].mean(), rel=0.05)
    without = simulate_from_fit(drive, None, observed, session.bin_width, start=25).counts.mean()
    assert abs(without / observed[25:].mean() - 1) > 0.1  # the history does matter


def test_a_runaway_history_is_reported_not_overflowing(session):
    observed = session.unit_counts(CELL_A)
    runaway = simulate_from_fit(true_drive(session), np.full(25, 0.5), observed,
                                session.bin_width, stop=5_000)
    assert runaway.capped_fraction > 0.5
    assert runaway.rate.max() == pytest.approx(500.0 * session.bin_width)


def test_simulate_from_fit_starts_after_nan_rows_with_the_observed_past():
    eta = np.r_[np.full(10, np.nan), np.full(90, np.log(0.1))]
    observed = np.zeros(100)
    observed[9] = 1  # one spike just before the stretch: lag 1 of its first sample
    history = np.r_[-30.0, np.zeros(4)]
    sample = simulate_from_fit(eta, history, observed, 0.01)
    assert sample.counts.size == 90
    assert sample.rate[0] == pytest.approx(0.1 * np.exp(-30.0))
    with pytest.raises(InputError, match="sample 3 is not finite"):
        simulate_from_fit(eta, history, observed, 0.01, start=3)


def test_smooth_counts_is_a_gaussian_convolution_in_seconds():
    counts = np.random.default_rng(0).poisson(0.5, 400).astype(float)
    smoothed = smooth_counts(counts, 0.01, 0.05)  # sd 5 bins
    offsets = np.arange(-20, 21)
    kernel = np.exp(-offsets**2 / (2 * 5.0**2))
    kernel /= kernel.sum()
    np.testing.assert_allclose(smoothed[20:-20], np.convolve(counts, kernel, "valid"), rtol=1e-9)
    assert smoothed.sum() == pytest.approx(counts.sum(), rel=1e-9)
    np.testing.assert_array_equal(smooth_counts(counts, 0.01, 0.0), counts)
    with pytest.raises(InputError, match="smoothing width"):
        smooth_counts(counts, 0.01, -1.0)
