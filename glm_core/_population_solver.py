"""The population's jitted solver: one unit's penalised Poisson fit on a small, whole cell table,
vmapped over units (full fits) and over units x folds (held-out scores).

Each axis (a variable, or a joint 2-D leaf) has its own number of bin slots, read off the shape of
its (slots x slots) map from coefficients to bins (the identity for bins, a padded basis B
otherwise; ``_kernels``). The table is small, so it is walked whole: per-bin sums of an axis of
at most 64 slots are a product with its one-hot matrix, those of a joint axis a scatter-add.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ._kernels import (
    hessian_blocks,
    map_sizes,
    null_log_likelihood,
    padded_stack,
    pull,
    pull_hessian,
    split,
    to_slots,
)
from .cell_table import MAX_BINS
from .regularizers import SMOOTH_RIDGE, GroupLasso, Smooth
from .solvers import solve


def sum_folds(rows):
    """Sum over the fold axis (the second to last), as a product with ones."""
    return jnp.ones(rows.shape[-2], rows.dtype) @ rows


def _per_bin(values, cells, sizes, one_hot):
    """Per axis, the sums of ``values`` (one per cell) over the cells of each bin slot."""
    return [values @ e if e is not None else jax.ops.segment_sum(values, cells[v], size)
            for v, (size, e) in enumerate(zip(sizes, one_hot))]


def _problem(cells, occupancy, spikes, n_coef, include, strengths, maps, is_basis, rough, reg):
    """Value, gradient/Hessian, penalty weights, groups, scale, kept coordinates, active
    coefficients per axis and whether every included axis is one-hot, for one unit's training
    cells (``_grid_problem.cell_problem`` on a whole, small cell table)."""
    sizes = map_sizes(maps)
    n_axes = len(sizes)
    one_hot = [jax.nn.one_hot(cells[v], size, dtype=occupancy.dtype) if size <= MAX_BINS
               else None for v, size in enumerate(sizes)]
    pairs = [(v, u) for v in range(n_axes) for u in range(v + 1, n_axes)]
    pair_index = {(v, u): cells[v] * sizes[u] + cells[u] for v, u in pairs}
    diagonal = ~jnp.any(is_basis & include)
    n = jnp.maximum(jnp.sum(occupancy), 1.0)
    counts = pull(_per_bin(occupancy, cells, sizes, one_hot), maps)
    in_range = [include[v] & (jnp.arange(size) < n_coef[v]) for v, size in enumerate(sizes)]
    active = in_range if isinstance(reg, Smooth) else [r & (c > 0)
                                                       for r, c in zip(in_range, counts)]
    keep = jnp.concatenate([*active, jnp.ones(1, bool)])
    spike_totals = jnp.concatenate([*pull(_per_bin(spikes, cells, sizes, one_hot), maps),
                                    jnp.sum(spikes)[None]])

    def value_grad_hess(theta):
        eta = log_rate(cells, to_slots(theta, maps), sizes)
        mu = jnp.where(occupancy > 0, occupancy * jnp.exp(eta), 0.0)
        per_bin = _per_bin(mu, cells, sizes, one_hot)
        total = jnp.sum(mu)
        g = (jnp.concatenate([*pull(per_bin, maps), total[None]]) - spike_totals) / n
        per_pair = {p: jax.ops.segment_sum(mu, pair_index[p], sizes[p[0]] * sizes[p[1]])
                    for p in pairs}
        h = hessian_blocks(total, per_bin, per_pair, sizes) / n
        h = jax.lax.cond(diagonal, lambda a: a, lambda a: pull_hessian(a, maps), h)
        g = g * keep
        h = jnp.where(keep[:, None] & keep[None, :], h, jnp.diag(jnp.where(keep, 0.0, 1.0)))
        return (total - spike_totals @ theta) / n, g, h

    if isinstance(reg, GroupLasso):
        weights = strengths * jnp.sqrt(n_coef.astype(strengths.dtype))
    elif isinstance(reg, Smooth):
        blocks = [jnp.where(active[v][:, None] & active[v][None, :],
                            strengths[v] * (rough[v] + SMOOTH_RIDGE * jnp.eye(size)), 0.0)
                  for v, size in enumerate(sizes)]
        weights = jax.scipy.linalg.block_diag(*blocks, jnp.zeros((1, 1)))
    else:
        weights = jnp.concatenate([*(jnp.where(a, strengths[v], 0.0)
                                     for v, a in enumerate(active)),
                                   jnp.zeros(1, strengths.dtype)])
    starts = [sum(sizes[:v]) for v in range(n_axes + 1)]
    groups = tuple(zip(starts[:-1], starts[1:]))
    scale = jnp.maximum(jnp.sum(spikes) / n, 1e-6)
    return value_grad_hess, weights, groups, scale, keep, active, diagonal


def log_rate(cells, slot_theta, sizes):
    """Each cell's log rate per sample: the intercept plus its bin's effect on every axis."""
    w = split(slot_theta, sizes)
    return slot_theta[-1] + sum(w[v][cells[v]] for v in range(len(sizes)))


def log_likelihood_terms(cells, occupancy, spikes, slot_theta, sizes):
    """sum over cells of spikes * eta - occupancy * exp(eta) (log y! left out)."""
    eta = log_rate(cells, slot_theta, sizes)
    return jnp.sum(jnp.where(occupancy > 0, spikes * eta - occupancy * jnp.exp(eta), 0.0))


def _log_mean_exp_others(cells, occupancy, w, shown):
    """Per axis v, log of the occupancy-weighted mean of exp(sum of the other axes' effects),
    each axis's largest shown effect taken out before exponentiating (no overflow without a
    penalty), as ``binned``'s curves."""
    peak = jnp.stack([jnp.max(jnp.where(s, x, -jnp.inf)) for s, x in zip(shown, w)])
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)
    effects = jnp.stack([(x - peak[v])[cells[v]] for v, x in enumerate(w)])  # (V, C)
    n = jnp.sum(occupancy)
    return jnp.stack([jnp.log(jnp.sum(occupancy * jnp.exp(jnp.sum(effects, 0) - effects[v])) / n)
                      + jnp.sum(peak) - peak[v] for v in range(len(w))])


def _solve_unit(cells, occupancy, spikes, settings, theta0, reg, tol, maxiter):
    """One training set; without spikes it is swapped for a rate of one per sample, whose
    optimum, zero, is the start (reported as NaN by the caller)."""
    empty = jnp.sum(spikes) <= 0
    spikes = jnp.where(empty, occupancy, spikes)
    theta0 = jnp.where(empty, 0.0, theta0)
    value_grad_hess, weights, groups, scale, keep, active, diagonal = _problem(
        cells, occupancy, spikes, *settings, reg)
    res = solve(value_grad_hess, theta0 * keep, reg, weights, groups, scale, tol, maxiter,
                diagonal_blocks=diagonal)
    return res, active


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def fit_units(cells, occupancy, spikes, settings, theta0, reg, tol, maxiter):
    """Every unit's full fit (``spikes`` (units, folds, cells), summed over the folds).

    Args:
        cells: (axes, cells) bin slot of each cell per axis; occupancy: (folds, cells).
        settings: (n_coef, include, strengths, maps, is_basis, rough), per axis.
        theta0: (units, coefficients) starting points; reg, tol, maxiter: the solver's.

    Returns:
        (theta, converged, active, shown, per-slot effects, log_others_gain, mean
        log-likelihood, the mean model's) per unit; per-axis arrays padded to the widest axis.
    """
    occupancy = sum_folds(occupancy)
    sizes = map_sizes(settings[3])
    width = max(sizes)

    def one(spk, th0):
        spk = sum_folds(spk)
        res, active = _solve_unit(cells, occupancy, spk, settings, th0, reg, tol, maxiter)
        slot_theta = to_slots(res.theta, settings[3])
        w = split(slot_theta[:-1], sizes)
        is_basis, include = settings[4], settings[1]
        # a bin's effect is drawn where its coefficient is active; a basis's at every bin
        shown = [jnp.where(is_basis[v] & include[v], True, a) for v, a in enumerate(active)]
        log_gains = _log_mean_exp_others(cells, occupancy, w, shown)
        n = jnp.sum(occupancy)
        ll = log_likelihood_terms(cells, occupancy, spk, slot_theta, sizes) / n
        ll_null = null_log_likelihood(jnp.sum(spk), n)
        return (res.theta, res.converged, padded_stack(active, width, False),
                padded_stack(shown, width, False), padded_stack(w, width), log_gains, ll, ll_null)

    theta, converged, active, shown, w, log_gains, ll, ll_null = jax.vmap(one)(spikes, theta0)
    return theta, converged, active[0], shown[0], w, log_gains, ll, ll_null


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def cross_validate_units(cells, occupancy, spikes, settings, theta0, reg, tol, maxiter):
    """Every (unit, fold): fit the other folds, score the fold (``_grid_fit``'s fold kernel).

    Args:
        as :func:`fit_units`, with ``theta0`` (units, folds, coefficients).

    Returns:
        (theta, converged, held-out log-likelihood terms, the training mean rate's), each
        (units, folds, ...).
    """
    total_occ = sum_folds(occupancy)
    sizes = map_sizes(settings[3])

    def one(occ, spk, total_spk, th0):
        train_occ, train_spk = total_occ - occ, total_spk - spk
        res, _ = _solve_unit(cells, train_occ, train_spk, settings, th0, reg, tol, maxiter)
        rate = jnp.sum(train_spk) / jnp.maximum(jnp.sum(train_occ), 1.0)
        log_mean = jnp.log(jnp.maximum(rate, 1e-30))
        ll_test = log_likelihood_terms(cells, occ, spk, to_slots(res.theta, settings[3]), sizes)
        ll_test_mean = jnp.sum(spk) * log_mean - jnp.sum(occ) * rate
        return res.theta, res.converged, ll_test, ll_test_mean

    def unit(spk, th0):
        return jax.vmap(one, (0, 0, None, 0))(occupancy, spk, sum_folds(spk), th0)

    return jax.vmap(unit)(spikes, theta0)
