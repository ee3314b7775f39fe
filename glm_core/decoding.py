"""Bayesian decoding of a state (position, head direction, a 2-D place) from population counts.

Each unit u fires Poisson counts with mean lambda_us = rate_us * window in state s, independently
across units given the state (Zhang et al. 1998; pynapple's ``decode_bayes``). The log posterior
of window t is

    log p(s | n_t) = log prior(s) + sum_u [n_tu log(lambda_us) - lambda_us] + const,

normalised over the states (log-sum-exp). A state where a unit that spiked has a zero rate is
impossible there (probability exactly 0, not NaN); a window where every state is impossible gets
a NaN row.

"With memory" (``sigma``): the state follows a Gaussian random walk from window to window, and the
forward filter (the causal half of an HMM's forward-backward) carries the posterior on:

    alpha_0 ∝ prior * L_0,    alpha_t ∝ L_t * (alpha_{t-1} K),

with L_t the window's likelihood and K_ij ∝ exp(-d(i, j)^2 / (2 sigma^2)) normalised over j,
d the distance in state bins (on each axis of a 2-D grid, wrapped for a circular variable).
A window whose states are all impossible keeps the prediction alpha_{t-1} K and reports NaN.
Numpy float64 throughout. The filter runs window by window: on a line, alpha K is a convolution
with the Gaussian cut at ``TAIL`` SDs (beyond it exp(-d^2 / 2 sigma^2) < 1e-17, below float64's
resolution of the peak); on a grid, two small matrix products (K is separable).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

TAIL = 9.0  # the line's transition kernel is cut at this many SDs


def bayes_decode(rates_hz, counts, window_s: float, log_prior=None, sigma=None,
                 grid_shape=None, circular: bool = False) -> np.ndarray:
    """Posterior over the states for each window of population counts.

    Args:
        rates_hz: (units, states) firing rates in Hz: tuning curves, or 2-D maps flattened
            row-major (``map.reshape(units, -1)``).
        counts: (windows, units) spike counts per window.
        window_s: the window's length in seconds.
        log_prior: optional (states,) log prior (unnormalised; -inf rules a state out); flat if
            None. With ``sigma`` it is the prior of the first window only.
        sigma: None decodes each window on its own. A positive number turns on the continuity
            prior: the SD, in state bins per window, of the Gaussian random walk the state takes
            between consecutive windows (small: the state moves little; large: nearly no memory).
        grid_shape: (nx, ny) when the states are a flattened 2-D grid, so the walk steps in 2-D.
        circular: the (1-D) states wrap around, e.g. head direction.

    Returns:
        (windows, states) float64 posterior; each row sums to 1, NaN where no state is possible.
        InputError on bad input.
    """
    return decode_posterior(log_likelihood(rates_hz, counts, window_s), log_prior, sigma,
                            grid_shape, circular)


def decode_posterior(log_lik, log_prior=None, sigma=None, grid_shape=None,
                     circular: bool = False) -> np.ndarray:
    """The posterior of :func:`bayes_decode` from the (windows, states) log likelihood
    ``log_lik`` (each row up to a constant of its own); the other arguments as there."""
    log_lik = np.asarray(log_lik, np.float64)
    n_states = log_lik.shape[1]
    prior = _log_prior(log_prior, n_states)
    if sigma is None:
        return _normalise(log_lik + prior)
    return _forward_filter(log_lik, prior, _transition(sigma, n_states, grid_shape, circular))


def log_likelihood(rates_hz, counts, window_s: float) -> np.ndarray:
    """sum over units of n log(rate * window) - rate * window (log n! left out): the
    (windows, states) float64 log likelihood of each state; -inf where a unit that spiked has a
    zero rate. Arguments as :func:`bayes_decode`'s; a sum over units, so the log likelihood of
    a set of units is the sum of its parts'."""
    rates, counts, window_s = _check(rates_hz, counts, window_s)
    mean = rates * window_s  # (units, states) expected counts
    with np.errstate(divide="ignore"):
        log_mean = np.where(mean > 0, np.log(mean), 0.0)
    log_lik = counts @ log_mean - mean.sum(axis=0)
    if np.any(mean <= 0):
        impossible = (counts > 0).astype(float) @ (mean <= 0).astype(float) > 0
        log_lik[impossible] = -np.inf
    return log_lik


def _normalise(log_post) -> np.ndarray:
    """Rows of exp(log_post) summing to 1 (log-sum-exp); NaN rows where all are -inf."""
    top = np.max(log_post, axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        post = np.exp(log_post - top)
    post /= post.sum(axis=1, keepdims=True)
    return post


def _forward_filter(log_lik, prior, step) -> np.ndarray:
    """alpha_t ∝ L_t * step(alpha_{t-1}), alpha_0 ∝ prior * L_0; NaN rows (no possible state)
    keep the prediction."""
    lik = _normalise(log_lik)  # each row rescaled: the filter renormalises anyway
    lost = np.isnan(lik[:, 0])
    posterior = np.empty_like(lik)
    alpha = np.exp(prior - prior.max())
    for t in range(lik.shape[0]):
        prediction = alpha if t == 0 else step(alpha)
        if lost[t]:
            alpha = prediction / prediction.sum()
            posterior[t] = np.nan
            continue
        joint = prediction * lik[t]
        total = joint.sum()
        # The walk can put (numerically) no mass where the likelihood is: start again from it.
        alpha = joint / total if total > 0 else lik[t]
        posterior[t] = alpha
    return posterior


def _transition(sigma, n_states, grid_shape, circular):
    """The random-walk step alpha -> alpha K as a function (separable on a 2-D grid)."""
    if not (np.ndim(sigma) == 0 and np.isfinite(sigma) and sigma > 0):
        raise InputError(f"the continuity sigma must be a positive number of state bins, "
                         f"got {sigma!r}")
    if grid_shape is None:
        return _line_step(n_states, float(sigma), circular)
    nx, ny = (int(n) for n in grid_shape)
    if nx * ny != n_states or min(nx, ny) < 1:
        raise InputError(f"grid_shape {tuple(grid_shape)} does not hold the {n_states} states")
    if circular:
        raise InputError("circular states are 1-D: give grid_shape or circular, not both")
    kx, ky = _gaussian_kernel(nx, float(sigma), False), _gaussian_kernel(ny, float(sigma), False)
    return lambda alpha: (kx.T @ alpha.reshape(nx, ny) @ ky).ravel()


def _line_step(n, sigma, circular):
    """alpha -> alpha K on a line of n states: (alpha / Z) convolved with the cut Gaussian g,
    Z_i = sum_j g(i - j) the row sums (constant on a circle, wrapped by padding)."""
    half = int(np.ceil(TAIL * sigma))
    if 2 * half + 1 >= n:  # the kernel spans the line: the dense product is as cheap
        kernel = _gaussian_kernel(n, sigma, circular)
        return lambda alpha: alpha @ kernel
    g = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    if circular:
        scale = 1.0 / g.sum()
        return lambda alpha: np.convolve(np.concatenate([alpha[-half:], alpha, alpha[:half]]),
                                         g * scale, "valid")
    inverse_rows = 1.0 / np.convolve(np.ones(n), g, "same")
    return lambda alpha: np.convolve(alpha * inverse_rows, g, "same")


def _gaussian_kernel(n, sigma, circular) -> np.ndarray:
    """(n, n) row-stochastic K_ij ∝ exp(-d(i, j)^2 / (2 sigma^2))."""
    distance = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]).astype(float)
    if circular:
        distance = np.minimum(distance, n - distance)
    kernel = np.exp(-0.5 * (distance / sigma) ** 2)
    return kernel / kernel.sum(axis=1, keepdims=True)


def _log_prior(log_prior, n_states) -> np.ndarray:
    if log_prior is None:
        return np.zeros(n_states)
    prior = np.asarray(log_prior, np.float64)
    if prior.shape != (n_states,):
        raise InputError(f"log_prior must have shape ({n_states},), got {prior.shape}")
    if np.any(np.isnan(prior) | (prior == np.inf)) or not np.any(np.isfinite(prior)):
        raise InputError("log_prior must be finite or -inf, with some state possible")
    return prior


def _check(rates_hz, counts, window_s):
    rates = np.asarray(rates_hz, np.float64)
    counts = np.asarray(counts, np.float64)
    if rates.ndim != 2 or rates.shape[0] < 1 or rates.shape[1] < 1:
        raise InputError(f"rates_hz must be a (units, states) array, got shape {rates.shape}")
    if counts.ndim != 2 or counts.shape[1] != rates.shape[0]:
        raise InputError(f"counts must be a (windows, {rates.shape[0]}) array, "
                         f"got shape {counts.shape}")
    if not (np.all(np.isfinite(rates)) and np.all(rates >= 0)):
        raise InputError("rates_hz must be finite and non-negative")
    if not (np.all(np.isfinite(counts)) and np.all(counts >= 0)):
        raise InputError("counts must be finite and non-negative")
    if not (np.ndim(window_s) == 0 and np.isfinite(window_s) and window_s > 0):
        raise InputError(f"window_s must be a positive number of seconds, got {window_s!r}")
    return rates, counts, float(window_s)
