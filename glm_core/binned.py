"""Fits of one-hot designs from joint bin-grid totals, at a cost independent of the sample count.

With every variable one-hot encoded, the linear predictor of a sample depends only on its joint
cell (one bin per variable), so the objective needs just two arrays over the grid of cells:
samples per cell (occupancy) and spikes per cell. The Newton gradient is a set of marginal sums of
``occupancy * exp(eta) - spikes``; the Hessian's diagonal blocks are 1-D marginals of
``occupancy * exp(eta)`` and its off-diagonal blocks 2-D marginals.

Shapes stay static while the user works: every variable has ``max_bins`` slots, and a mask of
active bins (inside the chosen bin count, variable included, bin occupied) switches slots on and
off. Inactive coefficients are held at zero, which is exactly the dense solution (an empty bin's
column is all zeros, so only the penalty acts on it). Changing a strength, a bin count, the
variables included or the unit therefore reuses one compiled solver.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy
from scipy.special import gammaln

from .errors import InputError
from .poisson import pseudo_r2_mcfadden
from .regularizers import GroupLasso, Regularizer, get_regularizer
from .solvers import solve

MAX_BINS = 64
MAX_GRID_CELLS = 2**18


def max_bins_for(n_variables: int) -> int:
    """Bin slots per variable so that the joint grid stays within ``MAX_GRID_CELLS``."""
    slots = int(min(MAX_BINS, np.floor(MAX_GRID_CELLS ** (1.0 / max(n_variables, 1)) + 1e-9)))
    if slots < 2:
        raise InputError(
            f"{n_variables} variables are too many to bin jointly; keep at most "
            f"{int(np.log2(MAX_GRID_CELLS))}")
    return slots


@dataclass(frozen=True)
class BinGrid:
    """Samples and spikes per joint cell, shape ``(max_bins,) * n_variables``, kept on the JAX
    device so that refits copy nothing; ``sample_cell`` maps each sample to its cell in the
    flattened grid, so another unit's spikes are re-totalled with one bincount."""

    occupancy: jax.Array
    spikes: jax.Array
    n_spikes: float
    log_factorial: float  # sum over samples of log(y!), for the log-likelihood
    sample_cell: np.ndarray

    def with_counts(self, counts: np.ndarray) -> BinGrid:
        """The same grid with other spike counts (another unit)."""
        counts = np.asarray(counts, float)
        spikes = np.bincount(self.sample_cell, weights=counts, minlength=self.occupancy.size)
        return replace(self, spikes=jnp.asarray(spikes.reshape(self.occupancy.shape), jnp.float32),
                       n_spikes=float(counts.sum()), log_factorial=_log_factorial_sum(counts))


def bin_grid(indices: np.ndarray, counts: np.ndarray, max_bins: int) -> BinGrid:
    """Joint totals from per-sample bin indices ``(T, n_variables)`` and counts ``(T,)``."""
    indices = np.asarray(indices)
    counts = np.asarray(counts, float)
    if indices.ndim != 2 or indices.shape[0] != counts.shape[0]:
        raise InputError("bin indices and spike counts have different numbers of samples")
    if indices.shape[0] == 0:
        raise InputError("no samples to fit")
    shape = (max_bins,) * indices.shape[1]
    flat = np.ravel_multi_index(tuple(indices.T), shape)
    occupancy = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    occupancy = jnp.asarray(occupancy, jnp.float32)
    return BinGrid(occupancy, occupancy, 0.0, 0.0, flat).with_counts(counts)


def _log_factorial_sum(counts: np.ndarray) -> float:
    """sum_t log(y_t!) for whole-number counts: lgamma once per distinct count value, so the cost
    depends on the number of samples, not on how large the counts are."""
    values, repeats = np.unique(counts, return_counts=True)
    return float(repeats @ gammaln(values + 1.0))


@dataclass(frozen=True)
class BinnedFit:
    """One fit on a bin grid; arrays are padded to ``max_bins`` per variable.

    ``weights[v, k]`` is the coefficient of bin k of variable v (zero where ``active`` is False);
    ``others_gain[v]`` is the mean over samples of exp(sum of the other variables' coefficients),
    the factor by which the other variables scale the rate on average. ``theta`` is the flat
    solver vector, for warm starts.
    """

    weights: np.ndarray
    active: np.ndarray
    intercept: float
    others_gain: np.ndarray
    log_likelihood: float
    pseudo_r2: float
    n_iter: int
    converged: bool
    residual: float
    objective: float
    theta: jax.Array

    def coef(self, names, n_bins) -> dict:
        """Coefficients as a dict ``name -> (n_bins,)`` array, like the dense GLM's ``coef_``."""
        return {name: self.weights[v, : n_bins[v]] for v, name in enumerate(names)}


def fit_bin_grid(
    grid: BinGrid,
    n_bins,
    include,
    strengths,
    regularizer: str | Regularizer = "Ridge",
    init: jax.Array | None = None,
    tol: float = 1e-6,
    maxiter: int = 100,
) -> BinnedFit:
    """Fit the GLM of the one-hot design described by ``n_bins`` and ``include`` (one entry per
    variable) with per-variable ``strengths``, warm-started from ``init`` (a previous ``theta``)."""
    reg = get_regularizer(regularizer)
    n_vars, max_bins = grid.occupancy.ndim, grid.occupancy.shape[0]
    n_bins = np.asarray(n_bins, np.int32)
    if n_bins.shape != (n_vars,) or np.any(n_bins < 1) or np.any(n_bins > max_bins):
        raise InputError(f"each variable needs between 1 and {max_bins} bins")
    if grid.n_spikes <= 0:
        raise InputError("this unit has no spikes in the selected samples: nothing to fit")
    theta0 = jnp.zeros(n_vars * max_bins + 1, jnp.float32) if init is None else init
    out = _solve_grid(grid.occupancy, grid.spikes, jnp.float32(grid.log_factorial),
                      jnp.asarray(n_bins), jnp.asarray(include, bool),
                      jnp.asarray(strengths, jnp.float32), theta0, reg, tol, maxiter)
    res, active, others_gain, ll, ll_null = jax.device_get(out)  # one transfer
    return BinnedFit(
        weights=res.theta[:-1].reshape(n_vars, max_bins),
        active=active,
        intercept=float(res.theta[-1]),
        others_gain=others_gain,
        log_likelihood=float(ll),
        pseudo_r2=float(pseudo_r2_mcfadden(ll, ll_null)),
        n_iter=int(res.n_iter),
        converged=bool(res.converged),
        residual=float(res.residual),
        objective=float(res.objective),
        theta=out[0].theta,
    )


def marginal(grid, axes):
    """Sum of a numpy or JAX ``grid`` over every axis not in ``axes`` (kept in order)."""
    return grid.sum(axis=tuple(a for a in range(grid.ndim) if a not in axes))


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def _solve_grid(occupancy, spikes, log_factorial, n_bins, include, strengths, theta0, reg, tol,
                maxiter):
    n_vars, max_bins = occupancy.ndim, occupancy.shape[0]
    n = jnp.sum(occupancy)
    occupied = jnp.stack([marginal(occupancy, (v,)) > 0 for v in range(n_vars)])
    active = occupied & include[:, None] & (jnp.arange(max_bins)[None, :] < n_bins[:, None])
    keep = jnp.concatenate([active.ravel(), jnp.ones(1, bool)])

    def eta(theta):
        w = theta[:-1].reshape(n_vars, max_bins)
        out = theta[-1]
        for v in range(n_vars):
            out = out + w[v].reshape([max_bins if a == v else 1 for a in range(n_vars)])
        return out

    def expected(theta):
        return jnp.where(occupancy > 0, occupancy * jnp.exp(eta(theta)), 0.0)

    # X'y of the one-hot design: spikes per bin, then in total. Constant, so the linear term of
    # the objective and of its gradient costs no pass over the grid.
    spike_totals = jnp.concatenate(
        [marginal(spikes, (v,)) for v in range(n_vars)] + [jnp.sum(spikes)[None]])

    def value(theta):
        return (jnp.sum(expected(theta)) - spike_totals @ theta) / n

    def grad_hess(theta):
        """One pass over the grid per pair of variables: the 2-D marginals of the expected counts
        are the off-diagonal blocks, and their sums the diagonal and the gradient."""
        mu = expected(theta)
        pairs = {(v, u): marginal(mu, (v, u)) for v in range(n_vars) for u in range(v + 1, n_vars)}
        if n_vars == 1:
            diag = [mu]
        else:
            diag = [pairs[(0, 1)].sum(1)] + [pairs[(0, v)].sum(0) for v in range(1, n_vars)]
        total = jnp.sum(diag[0])
        rows = [
            [jnp.diag(diag[v]) if u == v else pairs[(v, u)] if v < u else pairs[(u, v)].T
             for u in range(n_vars)] + [diag[v][:, None]]
            for v in range(n_vars)
        ]
        rows.append([d[None, :] for d in diag] + [total[None, None]])
        g = (jnp.concatenate(diag + [total[None]]) - spike_totals) / n * keep
        h = jnp.block(rows) / n
        h = jnp.where(keep[:, None] & keep[None, :], h, jnp.diag(jnp.where(keep, 0.0, 1.0)))
        return g, h

    if isinstance(reg, GroupLasso):
        weights = strengths * jnp.sqrt(n_bins.astype(strengths.dtype))
    else:
        per_bin = jnp.where(active, strengths[:, None], 0.0).ravel()
        weights = jnp.concatenate([per_bin, jnp.zeros(1, strengths.dtype)])
    groups = tuple((v * max_bins, (v + 1) * max_bins) for v in range(n_vars))
    scale = jnp.maximum(jnp.sum(spikes) / n, 1e-6)
    res = solve(value, grad_hess, theta0 * keep, reg, weights, groups, scale, tol, maxiter,
                diagonal_blocks=True)

    w = res.theta[:-1].reshape(n_vars, max_bins)
    log_rate = eta(res.theta)
    others_gain = jnp.stack([
        jnp.sum(occupancy * jnp.exp(log_rate - res.theta[-1] - w[v].reshape(
            [max_bins if a == v else 1 for a in range(n_vars)]))) / n
        for v in range(n_vars)
    ])
    rate = jnp.exp(log_rate)
    ll = (jnp.sum(xlogy(spikes, rate) - occupancy * rate) - log_factorial) / n
    mean_y = jnp.sum(spikes) / n
    ll_null = (jnp.sum(spikes) * jnp.log(mean_y) - n * mean_y - log_factorial) / n
    return res, active, others_gain, ll, ll_null
