"""Kernels on the cell table shared by the grid fit, the evidence search and the population fit.

A flat coefficient vector holds every axis's block, one after the other, then the intercept.
Each axis has a (slots x slots) map from its coefficients to its bin slots (the identity for
bins, a basis B padded with zeros otherwise); ``to_slots`` applies the maps and ``pull`` their
transposes. ``walk`` is one pass over the occupied cells at a coefficient vector, giving the
per-bin and per-bin-pair sums that the Poisson gradient and Hessian are made of.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .cell_table import CHUNK


def split(theta, sizes):
    """Per-axis blocks of a flat vector [axis 0 slots, axis 1 slots, ..., (intercept)]."""
    starts = np.cumsum((0, *sizes))
    return [theta[a:b] for a, b in zip(starts[:-1], starts[1:])]


def map_sizes(maps):
    """Static slot counts per axis, read off the maps' shapes."""
    return tuple(m.shape[0] for m in maps)


def over_folds(rows):
    """Sum over the fold rows, as a product with ones: XLA's CPU reduction over the leading
    axis is some forty times slower."""
    return jnp.ones(rows.shape[0], rows.dtype) @ rows


def to_slots(theta, maps):
    """[per-slot effects (B @ c per axis)..., intercept] from [coefficients..., intercept]."""
    coef = split(theta, map_sizes(maps))
    return jnp.concatenate([m @ c for m, c in zip(maps, coef)] + [theta[-1:]])


def pull(per_slot, maps):
    """B' x per axis: per-slot sums (a list, one per axis) to per-coefficient sums."""
    return [m.T @ x for m, x in zip(maps, per_slot)]


def walk(slots, occupancy, n_chunks, theta, sizes, hessian=True):
    """One pass over the occupied cells at ``theta`` (per-slot effects): total expected count,
    per-bin expected counts (a list of (sizes[v],)) and, with ``hessian``, per-bin-pair ones
    {(v, u): (sizes[v] * sizes[u],)}. With two axes or more, the per-bin sums are the margins
    of the pair tables (scatter-adds are most of a pass's cost on a CPU; these sums are not)."""
    n_axes = len(sizes)
    w = split(theta, sizes)
    pairs = [(v, u) for v in range(n_axes) for u in range(v + 1, n_axes)] if hessian else []
    from_pairs = bool(pairs)

    def step(i, acc):
        total, per_bin, per_pair = acc
        cells = jax.lax.dynamic_slice(slots, (0, i * CHUNK), (n_axes, CHUNK))
        occ = jax.lax.dynamic_slice(occupancy, (i * CHUNK,), (CHUNK,))
        eta = theta[-1] + sum(w[v][cells[v]] for v in range(n_axes))
        mu = jnp.where(occ > 0, occ * jnp.exp(eta), 0.0)
        if not from_pairs:
            per_bin = [acc_b + jax.ops.segment_sum(mu, cells[v], sizes[v])
                       for v, acc_b in enumerate(per_bin)]
        per_pair = [acc_p + jax.ops.segment_sum(mu, cells[v] * sizes[u] + cells[u],
                                                sizes[v] * sizes[u])
                    for acc_p, (v, u) in zip(per_pair, pairs)]
        return total + jnp.sum(mu), per_bin, per_pair

    zero = jnp.zeros((), theta.dtype)
    init = (zero, [jnp.zeros(n, theta.dtype) for n in sizes],
            [jnp.zeros(sizes[v] * sizes[u], theta.dtype) for v, u in pairs])
    total, per_bin, per_pair = jax.lax.fori_loop(0, n_chunks, step, init)
    per_pair = dict(zip(pairs, per_pair))
    if from_pairs:
        per_bin = [_margin(per_pair, sizes, v) for v in range(n_axes)]
    return total, per_bin, per_pair


def _margin(per_pair, sizes, v):
    """Axis v's per-bin sums from its table with a neighbouring axis."""
    if v + 1 < len(sizes):
        table = per_pair[(v, v + 1)].reshape(sizes[v], sizes[v + 1])
        return table @ jnp.ones(sizes[v + 1], table.dtype)
    table = per_pair[(v - 1, v)].reshape(sizes[v - 1], sizes[v])
    return jnp.ones(sizes[v - 1], table.dtype) @ table


def log_likelihood_terms(slots, tables, n_chunks, theta, sizes):
    """For each (occupancy, spikes) of ``tables``, in one pass: the sum over cells of
    spikes * eta - occupancy * exp(eta) (log y! left out; ``theta`` holds per-slot effects)."""
    n_axes = len(sizes)
    w = split(theta, sizes)

    def step(i, acc):
        cells = jax.lax.dynamic_slice(slots, (0, i * CHUNK), (n_axes, CHUNK))
        eta = theta[-1] + sum(w[v][cells[v]] for v in range(n_axes))
        rate = jnp.exp(eta)
        out = []
        for a, (occupancy, spikes) in zip(acc, tables):
            occ = jax.lax.dynamic_slice(occupancy, (i * CHUNK,), (CHUNK,))
            spk = jax.lax.dynamic_slice(spikes, (i * CHUNK,), (CHUNK,))
            out.append(a + jnp.sum(jnp.where(occ > 0, spk * eta - occ * rate, 0.0)))
        return out

    return jax.lax.fori_loop(0, n_chunks, step, [jnp.zeros((), theta.dtype) for _ in tables])


def hessian_blocks(total, per_bin, per_pair, sizes):
    """The (sum(sizes) + 1)^2 Hessian of sum(occupancy * exp(eta)) from its per-bin sums."""
    n_axes = len(sizes)
    rows = []
    for v in range(n_axes):
        row = []
        for u in range(n_axes):
            if u == v:
                row.append(jnp.diag(per_bin[v]))
            elif v < u:
                row.append(per_pair[(v, u)].reshape(sizes[v], sizes[u]))
            else:
                row.append(per_pair[(u, v)].reshape(sizes[u], sizes[v]).T)
        rows.append(row + [per_bin[v][:, None]])
    rows.append([per_bin[v][None, :] for v in range(n_axes)] + [total[None, None]])
    return jnp.block(rows)


def pull_hessian(h, maps):
    """Blockdiag(B_1, ..., B_V, 1)' H blockdiag(B_1, ..., B_V, 1), block by block."""
    starts = np.cumsum((0, *map_sizes(maps)))
    span = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
    inner = jnp.block([[mv.T @ h[sv, su] @ mu for mu, su in zip(maps, span)]
                       for mv, sv in zip(maps, span)])
    border = jnp.concatenate([m.T @ h[s, -1] for m, s in zip(maps, span)])
    return jnp.block([[inner, border[:, None]], [border[None, :], h[-1:, -1:]]])


def runtime_roughness(n, circular, max_bins):
    """``regularizers.roughness(n, circular)`` in the first ``n`` of ``max_bins`` slots, for a
    run-time ``n``: D'D of first differences, with the wrap-around difference when circular."""
    k = jnp.arange(max_bins - 1)
    links = (k + 1 < n).astype(jnp.float32)
    adjacency = jnp.diag(links, 1)
    wrap = circular.astype(jnp.float32)
    adjacency = adjacency.at[0, n - 1].add(wrap)
    adjacency = adjacency + adjacency.T
    return jnp.diag(adjacency.sum(1)) - adjacency


def padded_stack(blocks, width, fill=0.0):
    """Per-axis 1-D ``blocks`` padded with ``fill`` to ``width`` and stacked: (axes, width)."""
    return jnp.stack([jnp.pad(b, (0, width - b.shape[0]), constant_values=fill) for b in blocks])


def null_log_likelihood(n_spikes, n, log_factorial=0.0):
    """The mean log-likelihood per sample of the constant rate fitted to ``n_spikes`` spikes in
    ``n`` samples (the mean count), less ``log_factorial`` (sum of log y!) over ``n``."""
    mean_y = n_spikes / n
    return (n_spikes * jnp.log(mean_y) - n * mean_y - log_factorial) / n
