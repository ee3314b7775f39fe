"""Sequential sampling with spike history (glm_core.sequential) against a bin-by-bin loop and
scipy's Poisson quantiles, and the simulation with known lag filters: stable over long runs, and
its history, coupling and reward filters recovered by the dense GLM."""

import warnings

import numpy as np
import pytest
from scipy.stats import poisson

from glm_core import GLM, cross_validate, lagged, raised_cosine_log
from glm_core.basis import bspline, cyclic_bspline
from glm_core.errors import InputError
from glm_core.sequential import causal_filter, simulate_with_history
from glm_core.simulation import (
    CELL_A,
    CELL_B,
    CELL_C,
    EVENT,
    burst_history,
    coupling_kernel,
    reward_kernel,
    simulate_history_session,
)


def loop_reference(drive, history, max_count, seed, past=()):
    """The definition, bin by bin: eta_t = drive_t + sum_l history[l-1] counts[t-l] over the
    past and the counts drawn so far; count = scipy's Poisson quantile of the uniform."""
    uniforms = np.random.default_rng(seed).random(len(drive))
    train, rates = list(past), []
    for t, u in enumerate(uniforms):
        eta = drive[t] + sum(h * train[-lag] for lag, h in enumerate(history, start=1)
                             if lag <= len(train))
        rates.append(min(np.exp(eta), max_count))
        train.append(int(poisson.ppf(u, rates[-1])))
    return np.array(train[len(past):]), np.array(rates)


@pytest.mark.parametrize("history", [
    burst_history(np.arange(1, 26) * 0.01),  # sparse spikes: the block search
    np.r_[np.full(8, 0.3), -np.ones(4)],  # stretches of a spike in every bin: one by one
])
def test_sampler_equals_the_bin_by_bin_loop(history):
    rng = np.random.default_rng(0)
    drive = np.log(0.08) + np.sin(np.arange(4000) / 200.0)
    sample = simulate_with_history(drive, history, max_count=5.0, seed=7)
    counts, rates = loop_reference(drive, history, 5.0, 7)
    assert counts.sum() > 200
    np.testing.assert_array_equal(sample.counts, counts)
    np.testing.assert_allclose(sample.rate, rates, rtol=1e-9)
    past = rng.poisson(0.5, 40)
    with_past = simulate_with_history(drive[:300], history, max_count=5.0, seed=3, past=past)
    counts, rates = loop_reference(drive[:300], history, 5.0, 3, past)
    np.testing.assert_array_equal(with_past.counts, counts)
    np.testing.assert_allclose(with_past.rate, rates, rtol=1e-9)


def test_without_history_the_counts_are_poisson_quantiles_of_the_rate():
    """No history: the Poisson(exp(drive)) quantiles of the same uniforms, rates up to 80 per
    bin (scipy's branch) included."""
    drive = np.log(np.geomspace(1e-3, 80.0, 5000))
    sample = simulate_with_history(drive, None, max_count=1e3, seed=1)
    expected = poisson.ppf(np.random.default_rng(1).random(5000), np.exp(drive))
    np.testing.assert_array_equal(sample.counts, expected)
    np.testing.assert_allclose(sample.rate, np.exp(drive), rtol=1e-12)
    assert sample.n_capped == 0


def test_causal_filter_is_the_lagged_design_with_an_empty_past():
    counts = np.random.default_rng(2).poisson(0.7, 300).astype(float)
    kernel = coupling_kernel(np.arange(1, 13) * 0.01)
    filtered = causal_filter(counts, kernel)
    np.testing.assert_allclose(filtered[12:], lagged(counts, kernel)[12:, 0], rtol=1e-12)
    for t in range(12):
        assert filtered[t] == pytest.approx(sum(kernel[lag - 1] * counts[t - lag]
                                                for lag in range(1, t + 1)), abs=1e-12)


def test_a_runaway_history_is_capped_and_reported():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow
        sample = simulate_with_history(np.full(3000, np.log(0.05)), np.full(20, 0.8),
                                       max_count=5.0, seed=0)
    assert sample.capped_fraction > 0.9
    assert sample.rate.max() == 5.0 and np.all(np.isfinite(sample.rate))
    assert sample.counts.mean() == pytest.approx(5.0, rel=0.1)
    stable = simulate_with_history(np.full(3000, np.log(0.05)), -np.ones(20), max_count=5.0)
    assert stable.n_capped == 0


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="finite"):
        simulate_with_history(np.array([0.0, np.nan]), None, max_count=1.0)
    with pytest.raises(InputError, match="cap"):
        simulate_with_history(np.zeros(5), None, max_count=0.0)
    with pytest.raises(InputError, match="1-D"):
        causal_filter(np.zeros((3, 2)), np.ones(2))


def test_the_simulation_is_stable_over_a_long_run():
    session = simulate_history_session(400_000, seed=5)
    rates = session.counts / session.bin_width  # Hz
    per_100s = rates[: 400_000 // 10_000 * 10_000].reshape(-1, 10_000, 3).mean(axis=1)
    assert np.all(rates.mean(axis=0) > 2.0) and np.all(rates.mean(axis=0) < 20.0)
    assert per_100s.max() < 30.0  # no stretch runs away
    assert session.events[EVENT].sum() == pytest.approx(0.1 * 4000, rel=0.2)


def test_lag_truth_and_events_are_exposed():
    session = simulate_history_session(5_000, seed=1)
    truth = session.lag_truth
    assert set(truth) == {CELL_A, CELL_B, CELL_C}
    assert set(truth[CELL_A]) == {"history", f"coupling:{CELL_B}", f"event:{EVENT}"}
    np.testing.assert_allclose(truth[CELL_A]["history"], burst_history(np.arange(1, 26) * 0.01))
    np.testing.assert_allclose(truth[CELL_A][f"event:{EVENT}"],
                               reward_kernel(np.arange(1, 51) * 0.01))
    assert session.events[EVENT].shape == (5_000,)
    assert truth[CELL_A]["history"][0] < -3 and truth[CELL_A]["history"].max() > 0.5
    longer = session.lag_truth_of(CELL_A, "history", 40)  # a 400 ms window: zero past 250 ms
    np.testing.assert_array_equal(longer, np.r_[truth[CELL_A]["history"], np.zeros(15)])
    np.testing.assert_array_equal(session.lag_truth_of(0, "history", 10),
                                  truth[CELL_A]["history"][:10])
    assert session.lag_truth_of(CELL_B, f"coupling:{CELL_A}", 25) is None


@pytest.fixture(scope="module")
def recovery():
    session = simulate_history_session(100_000, seed=0)
    counts = {u: session.unit_counts(u) for u in session.unit_names}
    k25, k50 = raised_cosine_log(8, 25), raised_cosine_log(8, 50)
    behaviour = {
        "position": bspline(session.variable("position").values, 10, (0.0, 1.0)),
        "head direction": cyclic_bspline(session.variable("head direction").values, 8,
                                         (-np.pi, np.pi)),
    }
    lags = {"history": lagged(counts[CELL_A], k25), "coupling": lagged(counts[CELL_B], k25),
            "event": lagged(session.events[EVENT], k50)}
    return session, counts, behaviour, lags, {"history": k25, "coupling": k25, "event": k50}


def test_the_fitted_filters_recover_the_true_ones(recovery):
    session, counts, behaviour, lags, kernels = recovery
    model = GLM("Ridge", 1e-4).fit({**behaviour, **lags}, counts[CELL_A])
    truth = session.lag_truth[CELL_A]
    keys = {"history": "history", "coupling": f"coupling:{CELL_B}", "event": f"event:{EVENT}"}
    r = {leaf: np.corrcoef(kernels[leaf] @ np.asarray(model.coef_[leaf]), truth[key])[0, 1]
         for leaf, key in keys.items()}
    assert r["history"] >= 0.95 and r["coupling"] >= 0.95, r
    assert r["event"] >= 0.9, r


def test_history_raises_the_held_out_score(recovery):
    """On the same samples (the history window's first rows dropped from both)."""
    _, counts, behaviour, lags, _ = recovery
    no_history = np.where(np.isnan(lags["history"]), np.nan, 0.0)
    model = GLM("Ridge", 1e-4)
    with_history = cross_validate(model, {**behaviour, "history": lags["history"]},
                                  counts[CELL_A], 5)
    without = cross_validate(model, {**behaviour, "history": no_history}, counts[CELL_A], 5)
    assert with_history.n_dropped == without.n_dropped == 25
    assert with_history.pooled > without.pooled + 0.3


def test_a_shared_place_field_looks_like_coupling_until_position_is_in(recovery):
    """Cell C shares A's field but does not drive it."""
    _, counts, behaviour, _, kernels = recovery
    from_c = {"coupling": lagged(counts[CELL_C], kernels["coupling"])}
    naive = GLM("Ridge", 1e-4).fit({"head direction": behaviour["head direction"], **from_c},
                                   counts[CELL_A])
    full = GLM("Ridge", 1e-4).fit({**behaviour, **from_c}, counts[CELL_A])
    assert (kernels["coupling"] @ np.asarray(naive.coef_["coupling"])).max() > 0.3
    assert np.abs(kernels["coupling"] @ np.asarray(full.coef_["coupling"])).max() < 0.15
