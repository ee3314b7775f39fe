"""Sequential Poisson sampling of a GLM with spike history: each bin's rate depends on the counts
already drawn.

    eta_t   = drive_t + sum_{l=1..W} history[l - 1] * counts[t - l]
    rate_t  = min(exp(eta_t), max_count)                   (expected count per bin)
    counts_t = the Poisson(rate_t) quantile of u_t,        u = default_rng(seed).random(T)

``drive`` holds everything that does not depend on the sampled train: intercept, behaviour,
coupling and event inputs (see :func:`causal_filter`). The cap keeps an unstable (self-exciting)
history filter from overflowing: it is reported as the number of capped bins, which is how a
runaway shows.

The loop runs from spike to spike, not bin to bin: with no new spike, the history term of the
next bins is already known, so a block of bins is evaluated at once and the first bin whose
uniform exceeds P(count = 0) is the next spike. Its count is drawn by inverting the Poisson CDF,
its filter added to the following W bins, and the loop resumes after it. Where nearly every bin
spikes (a burst, a runaway) the blocks would hold one bin each, so after a spike within
``DENSE_GAP`` bins the next ``DENSE_RUN`` bins go one by one in plain Python scalars. The counts
are those of the bin-by-bin loop on the same uniforms; the cost grows with the number of spike
bins (benchmarks/history_simulation.py: 1e5 bins at 10 Hz in 0.16 s, of runaway in 0.46 s, on
the loaded 2-core CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from .errors import InputError

MIN_BLOCK, MAX_BLOCK = 16, 4096  # bins evaluated at once between spikes
MAX_SIMULATED_RATE_HZ = 500.0  # the usual cap of a simulated rate: above it a train runs away
DENSE_GAP, DENSE_RUN = 2, 256  # after a spike this close, the next bins go one by one
DIRECT_QUANTILE_RATE = 30.0  # expected counts per bin above which scipy draws the count


@dataclass(frozen=True)
class SimulatedTrain:
    """A sampled spike train.

    Attributes:
        counts: (T,) int64 counts per bin.
        rate: (T,) expected count per bin the counts were drawn from (after the cap).
        n_capped: bins whose rate exp(eta) exceeded the cap (a runaway history shows here).
    """

    counts: np.ndarray
    rate: np.ndarray
    n_capped: int

    @property
    def capped_fraction(self) -> float:
        """Fraction of bins whose rate was capped."""
        return self.n_capped / max(self.counts.size, 1)


def causal_filter(counts, kernel) -> np.ndarray:
    """(T,) input of a source train through a lag kernel, the past before the start taken as no
    spikes: out[t] = sum_{l=1..W} kernel[l - 1] * counts[t - l] (out[0] = 0).

    Args:
        counts: (T,) counts of the source (a unit or an event train).
        kernel: (W,) log-rate change at lags 1..W.

    Returns:
        The float64 input; InputError on non-finite or misshapen arguments.
    """
    counts = _finite_1d("the source counts", counts)
    kernel = _finite_1d("the kernel", kernel)
    out = np.zeros(counts.size)
    if counts.size > 1 and kernel.size:
        out[1:] = np.convolve(counts, kernel)[: counts.size - 1]
    return out


def simulate_with_history(drive, history=None, *, max_count: float, past=None, seed=0
                          ) -> SimulatedTrain:
    """Sample a spike train bin by bin from a Poisson GLM with a history filter.

    Args:
        drive: (T,) log expected count per bin from everything but the train's own history.
        history: (W,) log-rate change at lags 1..W after each spike (None: no history).
        max_count: cap on the expected count per bin (> 0), e.g. ``MAX_SIMULATED_RATE_HZ`` times
            the bin width.
        past: counts before the first bin, oldest first (their last W act through the history;
            None: no spikes before the start).
        seed: seed of the uniforms ``default_rng(seed).random(T)``.

    Returns:
        A :class:`SimulatedTrain`; InputError on non-finite or misshapen input.
    """
    drive = _finite_1d("the drive (log rate)", drive)
    history = np.zeros(0) if history is None else _finite_1d("the history filter", history)
    if not (np.isfinite(max_count) and max_count > 0):
        raise InputError(f"the rate cap must be a positive number, got {max_count}")
    n, window = drive.size, history.size
    accumulated = np.zeros(n + window)  # history term of every bin from the spikes drawn so far
    if past is not None and window:
        tail = _finite_1d("the past counts", past)[-window:]
        for age, count in enumerate(tail[::-1], start=1):  # the bin just before the start: age 1
            accumulated[: window - age + 1] += count * history[age - 1:]
    uniforms = np.random.default_rng(seed).random(n)
    counts, rate = np.zeros(n, np.int64), np.empty(n)
    log_cap = math.log(max_count)
    n_capped, t, block = 0, 0, MIN_BLOCK
    while t < n:
        stop = min(n, t + block)
        eta = drive[t:stop] + accumulated[t:stop]
        capped = eta > log_cap
        rate[t:stop] = np.where(capped, max_count, np.exp(np.minimum(eta, log_cap)))
        hits = np.flatnonzero(uniforms[t:stop] >= np.exp(-rate[t:stop]))
        gap = int(hits[0]) if hits.size else stop - t
        n_capped += int(np.count_nonzero(capped[: gap + 1]))
        if hits.size == 0:
            t, block = stop, min(2 * block, MAX_BLOCK)
            continue
        spike = t + gap
        counts[spike] = count = poisson_quantile(float(uniforms[spike]), float(rate[spike]))
        if window:
            accumulated[spike + 1: spike + 1 + window] += count * history
        t, block = spike + 1, int(np.clip(2 * (gap + 1), MIN_BLOCK, MAX_BLOCK))
        if gap < DENSE_GAP:  # spikes in most bins (a burst, a runaway): bin by bin for a while
            t, capped_here = _bin_by_bin(t, min(n, t + DENSE_RUN), drive, accumulated, history,
                                         uniforms, counts, rate, max_count)
            n_capped += capped_here
    return SimulatedTrain(counts=counts, rate=rate, n_capped=n_capped)


def _bin_by_bin(t, stop, drive, accumulated, history, uniforms, counts, rate, max_count):
    """The sampling loop in scalars, for a stretch where nearly every bin spikes (no numpy
    call per bin without a spike); fills ``counts``, ``rate`` and ``accumulated`` in place and
    returns (stop, bins capped)."""
    log_cap, window, n_capped = math.log(max_count), history.size, 0
    rates = []
    for i, d, u in zip(range(t, stop), drive[t:stop].tolist(), uniforms[t:stop].tolist()):
        eta = d + float(accumulated[i])
        if eta > log_cap:
            n_capped, rate_i = n_capped + 1, max_count
        else:
            rate_i = math.exp(eta)
        rates.append(rate_i)
        if u >= math.exp(-rate_i):
            counts[i] = count = poisson_quantile(u, rate_i)
            if window:
                accumulated[i + 1: i + 1 + window] += history if count == 1 else count * history
    rate[t:stop] = rates
    return stop, n_capped


def poisson_quantile(u: float, rate: float) -> int:
    """The smallest k with P(Poisson(rate) <= k) > u, for u in [0, 1) (scipy's quantile above a
    rate of ``DIRECT_QUANTILE_RATE``, where the direct sum would underflow or take long)."""
    if rate > DIRECT_QUANTILE_RATE:
        return int(poisson.ppf(u, rate))
    k, term = 0, math.exp(-rate)
    cdf = term
    while cdf <= u and term > 0.0:
        k += 1
        term *= rate / k
        cdf += term
    return k


def _finite_1d(label: str, values) -> np.ndarray:
    try:
        array = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{label} must be numbers") from None
    if array.ndim != 1:
        raise InputError(f"{label} must be a 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{label} must be finite (no NaN or inf)")
    return array
