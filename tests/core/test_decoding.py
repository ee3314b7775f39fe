"""Bayesian population decoding: the posterior against a float64 scipy/numpy reference, zero
rates, recovery of a simulated state, and the continuity prior (forward filter) against a plain
log-space recursion and against the flat prior on a simulated random walk."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import poisson

from glm_core import bayes_decode
from glm_core.errors import InputError


def reference_log_likelihood(rates_hz, counts, window_s):
    """(windows, states) sum over units of the Poisson log pmf, one window and state at a time."""
    n_windows, n_states = counts.shape[0], rates_hz.shape[1]
    out = np.zeros((n_windows, n_states))
    for t in range(n_windows):
        for s in range(n_states):
            out[t, s] = poisson.logpmf(counts[t], rates_hz[:, s] * window_s).sum()
    return out


def reference_posterior(rates_hz, counts, window_s, log_prior):
    log_post = reference_log_likelihood(rates_hz, counts, window_s) + log_prior
    return np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))


def reference_filter(rates_hz, counts, window_s, log_prior, log_kernel):
    """log alpha_t = log L_t + logsumexp_i(log alpha_{t-1, i} + log K_ij), normalised;
    alpha_0 from the prior."""
    log_lik = reference_log_likelihood(rates_hz, counts, window_s)
    log_alpha = log_prior + log_lik[0]
    out = [log_alpha - logsumexp(log_alpha)]
    for t in range(1, counts.shape[0]):
        log_alpha = log_lik[t] + logsumexp(out[-1][:, None] + log_kernel, axis=0)
        out.append(log_alpha - logsumexp(log_alpha))
    return np.exp(np.array(out))


def gaussian_log_kernel(positions, sigma, period=None):
    """log K_ij, K_ij ∝ exp(-|x_i - x_j|^2 / 2 sigma^2) over rows j, for (n, d) positions."""
    diff = np.abs(positions[:, None, :] - positions[None, :, :])
    if period is not None:
        diff = np.minimum(diff, period - diff)
    log_k = -0.5 * np.sum(diff**2, axis=2) / sigma**2
    return log_k - logsumexp(log_k, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 3.0, size=(7, 12))
    counts = rng.poisson(1.0, size=(40, 7)).astype(float)
    log_prior = rng.normal(size=12)
    return rates, counts, log_prior


def test_flat_posterior_matches_the_float64_reference(small):
    rates, counts, log_prior = small
    for prior in (None, log_prior):
        expected = reference_posterior(rates, counts, 0.25, 0.0 if prior is None else prior)
        ours = bayes_decode(rates, counts, 0.25, log_prior=prior)
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-12)


def test_zero_rates_rule_out_states_exactly(small):
    rates, counts, _ = small
    rates = rates.copy()
    rates[0, 3] = 0.0  # unit 0 never fires in state 3
    rates[:, 5] = 0.0  # no unit fires in state 5
    counts = counts.copy()
    counts[0] = 0.0  # a silent window: state 5 is the likeliest
    counts[1] = 0.0
    counts[1, 0] = 2.0
    ours = bayes_decode(rates, counts, 0.25)
    assert np.all(np.isfinite(ours))
    spiking = counts[:, 0] > 0
    assert np.all(ours[spiking, 3] == 0.0) and np.all(ours[counts.sum(axis=1) > 0, 5] == 0.0)
    np.testing.assert_allclose(ours, reference_posterior(rates, counts, 0.25, 0.0), atol=1e-12)
    assert np.argmax(ours[0]) == 5


def test_a_window_no_state_can_explain_is_nan():
    rates = np.array([[0.0, 0.0], [1.0, 2.0]])
    counts = np.array([[1.0, 0.0], [0.0, 1.0]])
    ours = bayes_decode(rates, counts, 0.1)
    assert np.all(np.isnan(ours[0])) and np.all(np.isfinite(ours[1]))
    filtered = bayes_decode(rates, counts, 0.1, sigma=1.0)
    assert np.all(np.isnan(filtered[0])) and np.all(np.isfinite(filtered[1]))


def place_cells(n_units, n_states, rng, peak_hz=15.0, width=3.0):
    centres = rng.uniform(0, n_states, n_units)
    grid = np.arange(n_states)
    return 0.5 + peak_hz * np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / width) ** 2)


def test_map_recovers_the_simulated_state():
    rng = np.random.default_rng(1)
    rates = place_cells(40, 50, rng)
    truth = rng.integers(0, 50, 2000)
    counts = rng.poisson(rates[:, truth].T * 0.5)
    decoded = np.argmax(bayes_decode(rates, counts, 0.5), axis=1)
    error = np.abs(decoded - truth)
    assert np.median(error) == 0 and np.mean(error <= 1) > 0.9


def random_walk(rng, n_windows, n_states, step):
    position = np.cumsum(rng.normal(0, step, n_windows)) + n_states / 2
    return np.clip(np.round(position), 0, n_states - 1).astype(int)


def test_continuity_lowers_the_error_on_a_random_walk():
    """The state walks with SD 1 bin per window; windows hold few spikes, so one window alone
    often decodes far off, while the filter (sigma = the walk's SD) follows the walk."""
    rng = np.random.default_rng(2)
    n_states = 60
    rates = place_cells(15, n_states, rng, peak_hz=6.0)
    truth = random_walk(rng, 3000, n_states, 1.0)
    counts = rng.poisson(rates[:, truth].T * 0.3)
    flat = np.abs(np.argmax(bayes_decode(rates, counts, 0.3), axis=1) - truth)
    memory = np.abs(np.argmax(bayes_decode(rates, counts, 0.3, sigma=1.0), axis=1) - truth)
    assert np.mean(memory) < 0.25 * np.mean(flat) and np.mean(memory) < 1.0


@pytest.mark.parametrize("geometry,sigma", [("line", 1.3), ("circle", 1.3), ("grid", 1.3),
                                            ("line", 0.7), ("circle", 2.0), ("grid", 4.0)])
def test_forward_filter_matches_the_log_space_recursion(geometry, sigma):
    """40 states: a 1-D line or circle (the cut-kernel convolution at small sigma, the dense
    kernel at large), or a 5 x 8 grid flattened row-major."""
    rng = np.random.default_rng(4)
    rates = rng.gamma(2.0, 3.0, size=(6, 40))
    counts = rng.poisson(1.0, size=(30, 6)).astype(float)
    log_prior = rng.normal(size=40)
    shape = (5, 8) if geometry == "grid" else (40,)
    positions = np.indices(shape).reshape(len(shape), -1).T.astype(float)
    log_kernel = gaussian_log_kernel(positions, sigma, 40 if geometry == "circle" else None)
    expected = reference_filter(rates, counts, 0.25, log_prior, log_kernel)
    ours = bayes_decode(rates, counts, 0.25, log_prior=log_prior, sigma=sigma,
                        grid_shape=shape if geometry == "grid" else None,
                        circular=geometry == "circle")
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("kwargs", [
    {"rates_hz": np.ones(3)},
    {"rates_hz": -np.ones((4, 5))},
    {"counts": np.ones((3, 5))},
    {"counts": np.full((3, 4), np.nan)},
    {"window_s": 0.0},
    {"log_prior": np.ones(4)},
    {"log_prior": np.full(5, -np.inf)},
    {"sigma": 0.0},
    {"sigma": 1.0, "grid_shape": (2, 3)},
    {"sigma": 1.0, "grid_shape": (1, 5), "circular": True},
])
def test_bad_input_raises_input_error(kwargs):
    args = {"rates_hz": np.ones((4, 5)), "counts": np.ones((3, 4)), "window_s": 0.1} | kwargs
    with pytest.raises(InputError):
        bayes_decode(**args)
