"""The objective of one training set with behavioural and lagged leaves, and its Newton solve.

The model is eta_t = b + sum_v (B_v c_v)[bin_v(t)] + z_t . beta: the behavioural leaves of the
cell table (``cell_table``, ``_kernels``) plus the lagged row z_t of each sample (history,
coupling and event sources through their lag kernels; ``LAG_COLUMNS`` columns, one block of
``LAG_BASIS`` per lag leaf, zero where unused). The flat coefficient vector is the behavioural
axes' blocks, then the ``LAG_COLUMNS`` lag coefficients, then the intercept.

One pass over the samples per Newton iteration (every array of a static, padded shape; a
sample's weight is 1 in the training set and 0 otherwise, so folds, dropped samples (a NaN in
the lagged row) and padding are data, not shapes):

- mu_t = w_t exp(eta_t), the behavioural part of eta_t gathered per sample from its cell;
- one scatter of mu_t [z_t, 1] onto the sample's joint cell gives per-cell sums; from them, as
  in the grid engine, the per-bin and per-bin-pair sums (the behavioural gradient and Hessian
  blocks, one walk over the occupied cells) and per bin the sums of mu_t z_t (the
  behaviour x lag blocks);
- Z' mu (the lag gradient) and Z' diag(mu) Z (the lag block), two products over the samples.

The linear term X'y is constant per training set and taken once. The slot-level Hessian is
pulled back through the behavioural bases and handed to ``solvers.solve``, which also runs the
proximal regularizers. A coefficient whose design column is zero on the training set is held at
zero (as in the grid engine); Smooth keeps the empty bins inside a behavioural axis's range
active, and penalises neighbouring lag coefficients within a lag leaf.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._kernels import hessian_blocks, map_sizes, pull, pull_hessian, split, to_slots, walk
from .cell_table import CHUNK
from .regularizers import SMOOTH_RIDGE, GroupLasso, Smooth
from .solvers import solve

MAX_LAG_LEAVES = 4  # lag leaves (history, couplings, events) in one model
LAG_BASIS = 8  # lag basis functions per leaf, at most
LAG_COLUMNS = MAX_LAG_LEAVES * LAG_BASIS


class LagProblem(NamedTuple):
    """One training set's objective: ``value_grad_hess(theta)``, the penalty's weights and
    groups, the gradient's scale, the free coordinates ``keep``, the behavioural axes' active
    coefficients, the sample count ``n`` and which lag leaves are ``on`` (included, with
    columns)."""

    value_grad_hess: object
    weights: jax.Array
    groups: tuple
    scale: jax.Array
    keep: jax.Array
    active: list
    n: jax.Array
    on: jax.Array


def cell_sums(slots, per_cell, n_chunks, sizes):
    """Per bin of every axis, the sums of ``per_cell`` (capacity, m) over the occupied cells:
    a list of (sizes[v], m)."""
    n_axes = len(sizes)

    def step(i, acc):
        cells = jax.lax.dynamic_slice(slots, (0, i * CHUNK), (n_axes, CHUNK))
        rows = jax.lax.dynamic_slice(per_cell, (i * CHUNK, 0), (CHUNK, per_cell.shape[1]))
        return [a + jax.ops.segment_sum(rows, cells[v], sizes[v]) for v, a in enumerate(acc)]

    init = [jnp.zeros((n, per_cell.shape[1]), per_cell.dtype) for n in sizes]
    return jax.lax.fori_loop(0, n_chunks, step, init)


def lag_term(columns, beta, on):
    """(N,) z_t . beta over the lag leaves that are ``on`` (the others' products are skipped
    at run time: a model with history alone pays for its own columns only)."""
    zero = jnp.zeros(columns.shape[1], columns.dtype)
    out = zero
    for j in range(MAX_LAG_LEAVES):
        out = out + jax.lax.cond(on[j], lambda c, j=j: c[j] @ beta[j * LAG_BASIS:
                                                                     (j + 1) * LAG_BASIS],
                                 lambda c: zero, columns)
    return out


def lag_products(columns, x, on):
    """(LAG_COLUMNS,) x' Z, zero for the lag leaves that are off."""
    zero = jnp.zeros(LAG_BASIS, columns.dtype)
    return jnp.concatenate([jax.lax.cond(on[j], lambda c, j=j: x @ c[j], lambda c: zero,
                                         columns) for j in range(MAX_LAG_LEAVES)])


def lag_gram(columns, mu, on):
    """(LAG_COLUMNS, LAG_COLUMNS) Z' diag(mu) Z, block by block of the leaves that are on."""
    zero = jnp.zeros((LAG_BASIS, LAG_BASIS), columns.dtype)
    blocks = {}
    for i in range(MAX_LAG_LEAVES):
        for j in range(i, MAX_LAG_LEAVES):
            blocks[i, j] = jax.lax.cond(
                on[i] & on[j], lambda c, i=i, j=j: (c[i] * mu[:, None]).T @ c[j],
                lambda c: zero, columns)
    return jnp.block([[blocks[i, j] if i <= j else blocks[j, i].T
                       for j in range(MAX_LAG_LEAVES)] for i in range(MAX_LAG_LEAVES)])


def lag_cells(cell, capacity, columns, x, on):
    """(capacity, LAG_COLUMNS): per cell the sums of x_t z_t, one scatter per lag leaf that
    is on (zeros for the others)."""
    zero = jnp.zeros((capacity, LAG_BASIS), columns.dtype)
    return jnp.concatenate([jax.lax.cond(
        on[j], lambda c, j=j: jax.ops.segment_sum(x[:, None] * c[j], cell, capacity),
        lambda c: zero, columns) for j in range(MAX_LAG_LEAVES)], 1)


def sample_eta(theta, maps, sample_slots, columns, on):
    """(N,) linear predictor of every sample: intercept, its bins' effects and its lagged row."""
    sizes = map_sizes(maps)
    n_beh = sum(sizes)
    slot_theta = to_slots(jnp.concatenate([theta[:n_beh], theta[-1:]]), maps)
    effects = split(slot_theta[:-1], sizes)
    eta = slot_theta[-1] + sum(effects[v][sample_slots[v]] for v in range(len(sizes)))
    return eta + lag_term(columns, theta[n_beh:n_beh + LAG_COLUMNS], on)


def lag_problem(slots, n_chunks, cell, sample_slots, y, columns, weight, nonzero, n_coef,
                include, strengths, maps, is_basis, rough, lag_include, lag_strengths,
                lag_n_basis, lag_rough, reg) -> LagProblem:
    """The penalised objective of one training set.

    Args:
        slots, n_chunks: the cell table (``BinGrid.slots``, ``BinGrid.n_chunks``).
        cell, sample_slots, y: per sample its joint cell, (V, N) its bin slot on every axis,
            and its count.
        columns: (MAX_LAG_LEAVES, N, LAG_BASIS) each lag leaf's lagged rows.
        weight: (N,) 1 for the training samples, 0 otherwise.
        nonzero: (LAG_COLUMNS,) the training samples with a nonzero entry in each lag column.
        n_coef, include, strengths, maps, is_basis, rough: the behavioural axes'
            (``_grid_problem.grid_settings``).
        lag_include, lag_strengths, lag_n_basis: per lag leaf (MAX_LAG_LEAVES).
        lag_rough: (MAX_LAG_LEAVES, LAG_BASIS, LAG_BASIS) D'D along each leaf's lags.
        reg: the regularizer.

    Returns:
        The :class:`LagProblem`.
    """
    del is_basis  # the Hessian is always pulled back through the maps
    sizes = map_sizes(maps)
    n_beh = sum(sizes)
    capacity = slots.shape[1]
    n = jnp.maximum(jnp.sum(weight), 1.0)
    wy = weight * y
    # constant sums: per cell samples and spikes, then per bin slot
    counts = jax.ops.segment_sum(jnp.stack([weight, wy], 1), cell, capacity)
    slot_counts = cell_sums(slots, counts, n_chunks, sizes)
    slot_samples = [s[:, 0] for s in slot_counts]
    on = lag_include & (lag_n_basis > 0)
    xty = jnp.concatenate([*pull([s[:, 1] for s in slot_counts], maps),
                           lag_products(columns, wy, on), jnp.sum(wy)[None]])
    coef_samples = pull(slot_samples, maps)
    in_range = [include[v] & (jnp.arange(size) < n_coef[v]) for v, size in enumerate(sizes)]
    active = in_range if isinstance(reg, Smooth) else [r & (c > 0)
                                                       for r, c in zip(in_range, coef_samples)]
    leaf = jnp.arange(LAG_COLUMNS) // LAG_BASIS
    lag_active = (lag_include[leaf] & (jnp.arange(LAG_COLUMNS) % LAG_BASIS < lag_n_basis[leaf])
                  & (nonzero > 0))
    keep = jnp.concatenate([*active, lag_active, jnp.ones(1, bool)])
    lag_maps = [*maps, jnp.eye(LAG_COLUMNS, dtype=columns.dtype)]

    def value_grad_hess(theta):
        mu = weight * jnp.exp(sample_eta(theta, maps, sample_slots, columns, on))
        resid = mu - wy  # the gradient from residuals: no cancellation of two large sums
        per_cell = jax.ops.segment_sum(jnp.stack([resid, mu], 1), cell, capacity)
        total, per_bin, per_pair = walk(slots, per_cell[:, 1], n_chunks,
                                        jnp.zeros(n_beh + 1, mu.dtype), sizes)
        resid_bins = cell_sums(slots, per_cell[:, :1], n_chunks, sizes)
        zmu = lag_products(columns, mu, on)
        gram = lag_gram(columns, mu, on)
        h_beh = hessian_blocks(total, per_bin, per_pair, sizes)
        cross = jnp.concatenate(cell_sums(slots, lag_cells(cell, capacity, columns, mu, on),
                                          n_chunks, sizes), 0)  # per bin: sum of mu z
        h = jnp.block([[h_beh[:-1, :-1], cross, h_beh[:-1, -1:]],
                       [cross.T, gram, zmu[:, None]],
                       [h_beh[-1:, :-1], zmu[None, :], total[None, None]]])
        h = pull_hessian(h, lag_maps) / n
        grad = jnp.concatenate([*pull([s[:, 0] for s in resid_bins], maps),
                                lag_products(columns, resid, on), jnp.sum(resid)[None]])
        f = (total - xty @ theta) / n
        g = jnp.where(keep, grad / n, 0.0)
        inert = jnp.diag(jnp.where(keep, 0.0, 1.0))
        return f, g, jnp.where(keep[:, None] & keep[None, :], h, inert)

    weights, groups = _penalty(reg, sizes, n_coef, include, strengths, rough, active,
                               lag_active, lag_strengths, lag_n_basis, lag_rough)
    scale = jnp.maximum(jnp.sum(wy) / n, 1e-6)
    return LagProblem(value_grad_hess, weights, groups, scale, keep, active, n, on)


def _penalty(reg, sizes, n_coef, include, strengths, rough, active, lag_active, lag_strengths,
             lag_n_basis, lag_rough):
    """The regularizer's weights and groups: one group per behavioural axis and per lag leaf."""
    starts = np.cumsum((0, *sizes, *([LAG_BASIS] * MAX_LAG_LEAVES)))
    groups = tuple((int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
    lag_blocks = [lag_active[j * LAG_BASIS:(j + 1) * LAG_BASIS] for j in range(MAX_LAG_LEAVES)]
    if isinstance(reg, GroupLasso):
        weights = jnp.concatenate([strengths * jnp.sqrt(n_coef.astype(strengths.dtype)),
                                   lag_strengths * jnp.sqrt(lag_n_basis.astype(
                                       lag_strengths.dtype))])
    elif isinstance(reg, Smooth):
        eye = jnp.eye(LAG_BASIS)
        blocks = [jnp.where(active[v][:, None] & active[v][None, :], strengths[v] * (
            rough[v] + SMOOTH_RIDGE * jnp.eye(size)), 0.0) for v, size in enumerate(sizes)]
        blocks += [jnp.where(a[:, None] & a[None, :], lag_strengths[j] * (
            lag_rough[j] + SMOOTH_RIDGE * eye), 0.0) for j, a in enumerate(lag_blocks)]
        weights = jax.scipy.linalg.block_diag(*blocks, jnp.zeros((1, 1)))
    else:
        per_coef = [jnp.where(a, strengths[v], 0.0) for v, a in enumerate(active)]
        per_coef += [jnp.where(a, lag_strengths[j], 0.0) for j, a in enumerate(lag_blocks)]
        weights = jnp.concatenate([*per_coef, jnp.zeros(1, strengths.dtype)])
    return weights, groups


def solve_lagged(slots, n_chunks, samples, weight, nonzero, settings, theta0, reg, tol,
                 maxiter):
    """Solve one training set: ``samples`` is (cell, sample_slots, y, columns) and
    ``settings`` are :func:`lag_problem`'s from ``n_coef`` to ``lag_rough``. Returns
    (``solvers.solve``'s result, the :class:`LagProblem`)."""
    cell, sample_slots, y, columns = samples
    problem = lag_problem(slots, n_chunks, cell, sample_slots, y, columns, weight, nonzero,
                          *settings, reg)
    res = solve(problem.value_grad_hess, theta0 * problem.keep, reg, problem.weights,
                problem.groups, problem.scale, tol, maxiter)
    return res, problem
