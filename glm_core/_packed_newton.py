"""Newton's solve of one training set on the cell table, packed to its free coordinates.

With a smooth penalty (none, Ridge, Smooth) and at most ``COMPACT`` free coordinates, the Newton
system is packed to those: its Hessian is gathered straight from the per-bin sums and a step
factors a 64 x 64 matrix instead of the padded (3 x 64 + 1)^2 one. Both branches are compiled
together, so crossing that size compiles nothing.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._grid_problem import Problem, cell_problem
from ._kernels import map_sizes
from .solvers import solve

COMPACT = 64  # smooth problems with at most this many free coordinates are solved packed


def solve_cells(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef,
                include, strengths, maps, is_basis, rough, theta0, reg, tol, maxiter):
    """Solve one training set. With a smooth penalty and at most ``COMPACT`` free coordinates
    (the usual case), the solver runs on those alone.

    Args:
        slots, ..., rough, reg: as for ``_grid_problem.cell_problem``.
        theta0: the starting coefficients; tol, maxiter: the solver's.

    Returns:
        (``solvers.solve``'s result, in all coordinates; the :class:`Problem`).
    """
    problem = cell_problem(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks,
                           n_coef, include, strengths, maps, is_basis, rough, reg)

    def full(theta0):
        return solve(problem.value_grad_hess, theta0 * problem.keep, reg, problem.weights,
                     problem.groups, problem.scale, tol, maxiter,
                     diagonal_blocks=problem.one_hot)

    if reg.smooth:
        compact = partial(_solve_packed, problem, map_sizes(maps), reg, tol, maxiter)
        res = jax.lax.cond(jnp.sum(problem.keep) <= COMPACT, compact, full, theta0)
    else:
        res = full(theta0)
    return res, problem


def _solve_packed(problem: Problem, sizes, reg, tol, maxiter, theta0):
    """``solve`` on the free coordinates (``keep``) alone, packed into the first entries of a
    ``COMPACT`` vector whose other entries are inert (zero gradient, unit curvature), so a
    Newton step factors a COMPACT^2 system instead of the whole padded one. For one-hot axes the
    packed Hessian is gathered straight from the per-bin sums; the result is unpacked."""
    n_theta = sum(sizes) + 1
    keep = problem.keep
    idx = jnp.nonzero(keep, size=COMPACT, fill_value=n_theta)[0]  # n_theta: inert
    valid = idx < n_theta
    both = valid[:, None] & valid[None, :]
    inert = jnp.diag(jnp.where(valid, 0.0, 1.0))
    position = jnp.cumsum(keep) - 1

    def unpack(theta_c):
        return jnp.where(keep, theta_c[position], 0.0)

    def pack(x):
        return jnp.where(valid, jnp.append(x, 0.0)[idx], 0.0)

    def pack_matrix(m):
        padded = jnp.pad(m, ((0, 1), (0, 1)))
        return jnp.where(both, padded[idx[:, None], idx[None, :]], 0.0)

    source = _packed_hessian_index(idx, sizes)

    def value_grad_hess(theta_c):
        f, g, walked = problem.sums(unpack(theta_c))
        h = jax.lax.cond(problem.one_hot,
                         lambda w: _flat_sums(w, sizes)[source] / problem.n,
                         lambda w: pack_matrix(problem.hessian(w)), walked)
        return f, pack(g), jnp.where(both, h, inert)

    weights = pack_matrix(problem.weights) if problem.weights.ndim == 2 else pack(
        problem.weights)
    res = solve(value_grad_hess, pack(theta0 * keep), reg, weights, (), problem.scale, tol,
                maxiter)
    hessian = jnp.zeros((n_theta + 1, n_theta + 1), res.hessian.dtype).at[
        idx[:, None], idx[None, :]].set(res.hessian)[:-1, :-1]
    return res._replace(theta=unpack(res.theta),
                        hessian=hessian + jnp.diag(jnp.where(keep, 0.0, 1.0)))


def _flat_sums(walked, sizes):
    """The per-bin-pair, per-bin and total sums of one pass in one vector, then a zero."""
    total, per_bin, per_pair = walked
    pairs = [per_pair[(v, u)] for v in range(len(sizes)) for u in range(v + 1, len(sizes))]
    return jnp.concatenate([*pairs, *per_bin, total[None], jnp.zeros(1, total.dtype)])


def _packed_hessian_index(idx, sizes):
    """(len(idx), len(idx)) positions in :func:`_flat_sums` of the one-hot Hessian's entries
    between the coordinates ``idx`` (bins of the axes one after the other, then the intercept):
    a pair table between two axes, a bin's own sum on the diagonal and against the intercept,
    the total for the intercept, and the trailing zero elsewhere (two bins of one axis)."""
    n_axes = len(sizes)
    starts = np.cumsum((0, *sizes))
    axis = jnp.searchsorted(jnp.asarray(starts[1:]), idx, side="right")
    bin_ = idx - jnp.asarray(starts)[jnp.minimum(axis, n_axes)]
    ai, bi, aj, bj = axis[:, None], bin_[:, None], axis[None, :], bin_[None, :]
    pairs = [(v, u) for v in range(n_axes) for u in range(v + 1, n_axes)]
    offset = 0
    index = jnp.zeros((idx.size, idx.size), jnp.int32)
    for v, u in pairs:
        index = jnp.where((ai == v) & (aj == u), offset + bi * sizes[u] + bj, index)
        index = jnp.where((ai == u) & (aj == v), offset + bj * sizes[u] + bi, index)
        offset += sizes[v] * sizes[u]
    for v in range(n_axes):
        index = jnp.where((ai == v) & (aj == v) & (bi == bj), offset + bi, index)
        index = jnp.where((ai == v) & (aj == n_axes), offset + bi, index)
        index = jnp.where((ai == n_axes) & (aj == v), offset + bj, index)
        offset += sizes[v]
    index = jnp.where((ai == n_axes) & (aj == n_axes), offset, index)
    same_axis_off_diagonal = (ai == aj) & (ai < n_axes) & (bi != bj)
    return jnp.where(same_axis_off_diagonal, offset + 1, index)

