"""The model seen in time: the cross-validated predicted rate of each sample, spikes simulated
from a fit with its spike history, and observed counts smoothed for display.

Every rate here is an expected count per bin (divide by the bin width for spikes/s).

- :func:`cross_validated_rate` takes the log rate of every sample under each fold's model and the
  fold of each sample, and keeps for each sample the model that did not see it.
  :func:`dense_fold_log_rates` gives those log rates for the dense pytree GLM
  (``cross_validate(...).theta``); another engine supplies its own.
- :func:`simulate_from_fit` samples a stretch of the recording bin by bin from a fitted model:
  the drive (behaviour, coupling and event inputs from the observed trains) is the fit's, the
  unit's history acts on the simulated spikes (:func:`glm_core.sequential.simulate_with_history`).
  A self-exciting history filter can run away; the rate is then capped and the capped bins are
  counted, which is what the page shows.
- :func:`smooth_counts` is a Gaussian smoother (``scipy.ndimage.gaussian_filter1d``), for display
  only.
"""

from __future__ import annotations

import jax
import numpy as np
from scipy.ndimage import gaussian_filter1d

from .errors import InputError
from .sequential import MAX_SIMULATED_RATE_HZ, SimulatedTrain, simulate_with_history

ROW_CHUNK = 1 << 16  # samples per float64 block in ``dense_fold_log_rates``


def cross_validated_rate(eta_per_fold, fold) -> np.ndarray:
    """The held-out predicted rate of every sample: exp(eta_per_fold[fold[t], t]).

    Args:
        eta_per_fold: (n_folds, T) log rate of every sample under each fold's model (the model
            fitted without that fold).
        fold: (T,) the fold of each sample (``glm_core.crossval.fold_index``); negative for a
            sample in no fold.

    Returns:
        (T,) float64 expected count per bin; NaN for samples in no fold or with a NaN log rate.
    """
    eta = np.asarray(eta_per_fold, np.float64)
    fold = np.asarray(fold)
    if eta.ndim != 2 or fold.shape != (eta.shape[1],) or fold.dtype.kind not in "iu":
        raise InputError("cross_validated_rate needs (n_folds, T) log rates and (T,) integer "
                         f"folds, got shapes {eta.shape} and {fold.shape}")
    if np.any(fold >= eta.shape[0]):
        raise InputError(f"a fold id is {fold.max()}, but there are {eta.shape[0]} folds")
    inside = fold >= 0
    rate = np.full(fold.size, np.nan)
    rate[inside] = np.exp(eta[fold[inside], np.flatnonzero(inside)])
    return rate


def dense_fold_log_rates(X, theta) -> np.ndarray:
    """(n_folds, T) log rate of every sample under each fold's dense GLM.

    Args:
        X: the design the folds were fitted on, a (T, p) array or a pytree of (T, k) leaves
            (flattened in ``jax.tree_util`` order, as :class:`glm_core.GLM` does).
        theta: (n_folds, p + 1) the folds' ``[coefficients..., intercept]``
            (``glm_core.cross_validate(...).theta``).

    Returns:
        float64 log rates, NaN in the rows where a leaf has a NaN.
    """
    leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(X)]
    if not leaves or any(leaf.ndim != 2 for leaf in leaves):
        raise InputError("every design leaf must be a 2-D (samples, features) array")
    n_samples, width = leaves[0].shape[0], sum(leaf.shape[1] for leaf in leaves)
    if any(leaf.shape[0] != n_samples for leaf in leaves):
        raise InputError("design leaves have different numbers of samples")
    theta = np.asarray(theta, np.float64)
    if theta.ndim != 2 or theta.shape[1] != width + 1:
        raise InputError(f"theta must be (n_folds, {width + 1}) for this design, got shape "
                         f"{theta.shape}")
    eta = np.empty((theta.shape[0], n_samples))
    for start in range(0, n_samples, ROW_CHUNK):  # float64 rows a block at a time
        rows = np.concatenate([leaf[start:start + ROW_CHUNK] for leaf in leaves], axis=1)
        eta[:, start:start + rows.shape[0]] = (rows.astype(np.float64) @ theta[:, :-1].T).T
    return eta + theta[:, -1:]


def simulate_from_fit(eta, history, observed, bin_width: float, *, start: int | None = None,
                      stop: int | None = None, seed=0,
                      max_rate_hz: float = MAX_SIMULATED_RATE_HZ) -> SimulatedTrain:
    """Sample the unit's spikes over samples ``start`` .. ``stop - 1`` from a fitted model, bin by
    bin, its history acting on the simulated spikes.

    Args:
        eta: (T,) the fit's log rate of every sample without its history term: intercept,
            behaviour, and the coupling and event inputs of the observed trains (e.g. the
            predicted log rate minus the history leaf's ``X_history @ coef``). Only the stretch
            simulated must be finite.
        history: (W,) the fitted history filter, log-rate change at lags 1..W bins (the lag
            kernels times the history coefficients); None for a model without history.
        observed: (T,) the unit's observed counts; those before ``start`` are the simulation's
            past.
        bin_width: seconds per bin.
        start, stop: the stretch (default: from the first finite ``eta`` to the end).
        seed: seed of the simulation.
        max_rate_hz: cap on the rate; bins above it are counted in ``n_capped`` (a runaway).

    Returns:
        A :class:`glm_core.sequential.SimulatedTrain` of ``stop - start`` bins.
    """
    eta = np.asarray(eta, np.float64)
    observed = np.asarray(observed, np.float64)
    if eta.ndim != 1 or observed.shape != eta.shape:
        raise InputError(f"eta and the observed counts must be (T,) arrays of one length, got "
                         f"shapes {eta.shape} and {observed.shape}")
    finite = np.flatnonzero(np.isfinite(eta))
    start = (int(finite[0]) if finite.size else 0) if start is None else int(start)
    stop = eta.size if stop is None else int(stop)
    if not 0 <= start < stop <= eta.size:
        raise InputError(f"cannot simulate samples {start} to {stop} of {eta.size}")
    if not np.all(np.isfinite(eta[start:stop])):
        bad = start + int(np.flatnonzero(~np.isfinite(eta[start:stop]))[0])
        raise InputError(f"the log rate of sample {bad} is not finite: simulate from the first "
                         "sample with a complete design (after the longest lag window)")
    if not (np.isfinite(bin_width) and bin_width > 0 and np.isfinite(max_rate_hz)
            and max_rate_hz > 0):
        raise InputError("the bin width and the rate cap must be positive numbers")
    return simulate_with_history(eta[start:stop], history, max_count=max_rate_hz * bin_width,
                                 past=observed[:start], seed=seed)


def smooth_counts(counts, bin_width: float, sd: float) -> np.ndarray:
    """Counts smoothed by a Gaussian of ``sd`` seconds, for display (edges reflected, so the
    total is kept).

    Args:
        counts: (T,) counts per bin.
        bin_width: seconds per bin.
        sd: the Gaussian's standard deviation in seconds; 0 returns the counts as floats.

    Returns:
        (T,) float64 smoothed counts per bin.
    """
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or not np.all(np.isfinite(counts)):
        raise InputError("smooth_counts takes one (T,) array of finite counts")
    if not (np.isfinite(sd) and sd >= 0 and np.isfinite(bin_width) and bin_width > 0):
        raise InputError(f"the smoothing width must be >= 0 s and the bin width > 0 s, got "
                         f"{sd} and {bin_width}")
    if sd == 0:
        return counts.copy()
    return gaussian_filter1d(counts, sd / bin_width, mode="reflect", truncate=4.0)
