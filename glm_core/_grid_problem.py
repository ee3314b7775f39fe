"""The objective of one training set on the cell table, and the run-time settings it takes.

``grid_settings`` checks a design (bin counts per axis, included axes, strengths, bases, circular
flags) against a :class:`~glm_core.cell_table.BinGrid` and turns it into the arrays the jitted
solvers take as run-time values, so a new design compiles nothing. ``cell_problem`` builds the
penalised Poisson objective of one training set (cells and their totals per bin slot) in the
axes' coefficients: a variable with a basis B enters through its (slots x slots) map, the
per-bin gradient and Hessian pulled back through B. Coefficients whose design column is all zero
are held at zero (inactive); Smooth keeps the empty bins inside an axis's range active, where the
penalty interpolates them, as in the dense fit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._kernels import hessian_blocks, map_sizes, pull, pull_hessian, split, to_slots, walk
from .cell_table import JOINT_MAX_BINS
from .errors import InputError
from .regularizers import SMOOTH_RIDGE, GroupLasso, Smooth, get_regularizer, roughness


def grid_settings(grid, n_bins, include, strengths, regularizer, bases, circular):
    """Check a design against the grid and turn it into the jitted solvers' run-time settings.

    Per-axis matrices stay numpy arrays (cached where they repeat): jit takes them as they are,
    where converting each new one on its own would compile a transfer.

    Args:
        grid: the :class:`~glm_core.cell_table.BinGrid`.
        n_bins: per axis, its bin count, or a pair (nx, ny) for a joint leaf (bins bx * ny + by).
        include, strengths: per axis.
        regularizer: a regularizer or its name.
        bases: per axis, None or a (n_bins, k) basis; None for all one-hot.
        circular: per axis, whether it wraps around (Smooth); None for none.

    Returns:
        (regularizer, (n_coef, include, strengths, maps, is_basis, rough)): per axis the
        coefficient count, include flag, strength, (slots x slots) map from coefficients to bin
        slots, whether it has a basis, and Smooth's roughness matrix (D'D of neighbouring
        differences, in slots). Raises ``InputError`` on an invalid design.
    """
    reg = get_regularizer(regularizer)
    if len(n_bins) != grid.n_variables:
        raise InputError(f"expected bin counts for {grid.n_variables} leaves, got {len(n_bins)}")
    shapes = [tuple(int(m) for m in n) if np.ndim(n) else (int(n),) for n in n_bins]
    for shape, size in zip(shapes, grid.sizes):
        if len(shape) > 2 or min(shape) < 1 or int(np.prod(shape)) > size or (
                len(shape) == 2 and max(shape) > JOINT_MAX_BINS):
            raise InputError(f"each variable needs between 1 and {grid.max_bins} bins, and "
                             f"between 1 and {JOINT_MAX_BINS} in a 2-D leaf")
    if grid.n_spikes <= 0:
        raise InputError("this unit has no spikes in the selected samples: nothing to fit")
    if not any(include):
        raise InputError("include at least one variable in the model")
    bases = [None] * grid.n_variables if bases is None else list(bases)
    circular = [False] * grid.n_variables if circular is None else [bool(c) for c in circular]
    maps, n_coef, roughness = [], [], []
    for v, (basis, shape, size) in enumerate(zip(bases, shapes, grid.sizes)):
        if basis is None:
            maps.append(_identity(size))
            n_coef.append(int(np.prod(shape)))
        else:
            basis = np.asarray(basis, np.float32)
            if len(shape) == 2 or basis.ndim != 2 or basis.shape[0] != shape[0] or (
                    basis.shape[1] > size):
                raise InputError(f"variable {v}'s basis must be ({shape[0]} bins x at most "
                                 f"{size} functions), got {basis.shape}")
            padded = np.zeros((size, size), np.float32)
            padded[: basis.shape[0], : basis.shape[1]] = basis
            maps.append(padded)
            n_coef.append(basis.shape[1])
        if len(shape) == 2 and circular[v]:
            raise InputError("a 2-D leaf pairs two linear variables; a circular one cannot be "
                             "paired")
        rows = (n_coef[-1],) if len(shape) == 1 else shape
        roughness.append(slot_roughness(rows, circular[v], size))
    is_basis = np.array([b is not None for b in bases])
    return reg, (np.asarray(n_coef, np.int32), np.asarray(include, bool),
                 np.asarray(strengths, np.float32), tuple(maps), is_basis, tuple(roughness))


@lru_cache(maxsize=8)
def _identity(size):
    return np.eye(size, dtype=np.float32)


@lru_cache(maxsize=256)
def slot_roughness(shape, circular, size):
    """D'D of first differences of neighbouring coefficients, in the first prod(shape) of
    ``size`` slots: along a 1-D leaf (with the wrap-around pair when circular), or along both
    axes of a (nx, ny) joint leaf, the Kronecker sum R_nx (x) I_ny + I_nx (x) R_ny."""
    if len(shape) == 1:
        block = roughness(shape[0], circular)
    else:
        nx, ny = shape
        block = (np.kron(roughness(nx, False), np.eye(ny))
                 + np.kron(np.eye(nx), roughness(ny, False)))
    out = np.zeros((size, size), np.float32)
    out[: block.shape[0], : block.shape[0]] = block
    return out


class Problem(NamedTuple):
    """One training set's objective in coefficients. ``value_grad_hess(theta)`` gives the value
    with its gradient and Hessian (identity rows off ``keep``); ``sums(theta)`` the value and
    gradient with the per-bin sums the Hessian is made of, and ``hessian(sums)`` the Hessian
    from them. Then the penalty's weights and groups, the gradient's scale, the active
    coefficients (per axis; ``keep`` flat, with the intercept), the sample count, and whether
    every included axis is one-hot (the Hessian's blocks are then diagonal)."""

    value_grad_hess: Callable
    sums: Callable
    hessian: Callable
    weights: jax.Array
    groups: tuple
    scale: jax.Array
    keep: jax.Array
    active: list
    n: jax.Array
    one_hot: jax.Array


def cell_problem(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef,
                 include, strengths, maps, is_basis, rough, reg) -> Problem:
    """The objective of one training set.

    Args:
        slots, occupancy, spikes: the cell table and the training set's totals per cell.
        slot_occupancy, slot_spikes: its totals per bin slot of every axis.
        n_chunks: chunks of the table to walk.
        n_coef, include, strengths, maps, is_basis, rough: from :func:`grid_settings`.
        reg: the regularizer.

    Returns:
        The :class:`Problem`.
    """
    sizes = map_sizes(maps)
    one_hot = ~jnp.any(is_basis & include)
    slot_samples = split(slot_occupancy, sizes)
    n = jnp.maximum(jnp.sum(slot_samples[0]), 1.0)
    total_spikes = jnp.sum(split(slot_spikes, sizes)[0])
    # a coefficient whose column of the design is all zeros (no samples) is held at zero
    counts = pull(slot_samples, maps)
    in_range = [include[v] & (jnp.arange(size) < n_coef[v]) for v, size in enumerate(sizes)]
    active = in_range if isinstance(reg, Smooth) else [r & (c > 0)
                                                       for r, c in zip(in_range, counts)]
    keep = jnp.concatenate([*active, jnp.ones(1, bool)])
    # X'y of the design: constant, so the linear term costs no pass over the cells.
    spike_totals = jnp.concatenate([*pull(split(slot_spikes, sizes), maps), total_spikes[None]])

    def sums(theta):
        walked = walk(slots, occupancy, n_chunks, to_slots(theta, maps), sizes)
        total, per_bin, _ = walked
        f = (total - spike_totals @ theta) / n
        g = (jnp.concatenate([*pull(per_bin, maps), total[None]]) - spike_totals) / n
        return f, g * keep, walked

    def hessian(walked):
        h = hessian_blocks(*walked, sizes) / n
        return jax.lax.cond(one_hot, lambda a: a, lambda a: pull_hessian(a, maps), h)

    def value_grad_hess(theta):
        f, g, walked = sums(theta)
        inert = jnp.diag(jnp.where(keep, 0.0, 1.0))
        return f, g, jnp.where(keep[:, None] & keep[None, :], hessian(walked), inert)

    if isinstance(reg, GroupLasso):
        weights = strengths * jnp.sqrt(n_coef.astype(strengths.dtype))
    elif isinstance(reg, Smooth):
        blocks = [jnp.where(active[v][:, None] & active[v][None, :], strengths[v] * (
            rough[v] + SMOOTH_RIDGE * jnp.eye(size)), 0.0) for v, size in enumerate(sizes)]
        weights = jax.scipy.linalg.block_diag(*blocks, jnp.zeros((1, 1)))
    else:
        per_coef = jnp.concatenate([jnp.where(a, strengths[v], 0.0)
                                    for v, a in enumerate(active)])
        weights = jnp.concatenate([per_coef, jnp.zeros(1, strengths.dtype)])
    starts = np.cumsum((0, *sizes))
    groups = tuple((int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
    scale = jnp.maximum(total_spikes / n, 1e-6)
    return Problem(value_grad_hess, sums, hessian, weights, groups, scale, keep, active, n,
                    one_hot)

