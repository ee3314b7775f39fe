"""The jitted fit of the cell table with its confidence bands, and the cross-validation kernels.

``fit_full`` solves the fit on every fold's cells and returns, beside the solution, each axis's
active coefficients and effects, the others' mean gain on its curve and the Laplace standard
error of the log of the curve. ``cross_validate_cells`` fits each fold's complement (the sums
over the fold rows minus row k) and scores row k, in one compiled loop over the folds.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._kernels import (
    log_likelihood_terms,
    map_sizes,
    null_log_likelihood,
    over_folds,
    padded_stack,
    pull,
    split,
    to_slots,
    walk,
)
from ._packed_newton import solve_cells
from .cell_table import FOLD_SLOTS, MAX_BINS
from .regularizers import Ridge, Smooth

FIT_TOL, FIT_MAXITER = 1e-6, 100  # the solvers' defaults (compiled once each)


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def fit_full(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, log_factorial,
             n_coef, include, strengths, maps, is_basis, rough, theta0, reg, tol, maxiter):
    """The fit on all folds' cells, with what the curves and their bands need.

    Args:
        slots, occupancy, spikes: the cell table and the cells' totals over the folds.
        slot_occupancy, slot_spikes: per fold, the totals per bin slot of every axis.
        n_chunks: chunks of the table to walk (``BinGrid.n_chunks``).
        log_factorial: sum of log y! over the samples.
        n_coef, include, strengths, maps, is_basis, rough: ``_grid_problem.grid_settings``.
        theta0: the starting coefficients; reg, tol, maxiter: the solver's (static).

    Returns:
        (solver result, active, weights, shown, log_others_gain, mean log-likelihood, the null
        model's, curve_se), per-axis arrays padded to the widest axis.
    """
    slot_occupancy, slot_spikes = over_folds(slot_occupancy), over_folds(slot_spikes)
    sizes = map_sizes(maps)
    n_axes, width = len(sizes), max(sizes)
    res, problem = solve_cells(
        slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef, include,
        strengths, maps, is_basis, rough, theta0, reg, tol, maxiter)
    groups, keep, active, n = problem.groups, problem.keep, problem.active, problem.n
    theta = res.theta
    slot_theta = to_slots(theta, maps)
    w = split(slot_theta[:-1], sizes)
    # A bin's effect is drawn where its coefficient is active; a basis's at every slot.
    shown = [jnp.where(is_basis[v] & include[v], True, active[v]) for v in range(n_axes)]

    # The others' mean effect on each axis's curve, and its gradient (for the bands): per
    # axis v, G_v = mean over samples of exp(sum_{u != v} w_u), and dG_v/dc_u per
    # coefficient of u. Each axis's largest shown effect is taken out before exponentiating,
    # so an unpenalised fit whose coefficients trade off against the intercept cannot overflow.
    peak = jnp.stack([jnp.max(jnp.where(s, x, -jnp.inf)) for s, x in zip(shown, w)])
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)

    def others(v):
        wv = [jnp.zeros_like(x) if u == v else x - peak[u] for u, x in enumerate(w)]
        th = jnp.concatenate([*wv, jnp.zeros(1)])
        total, per_bin, _ = walk(slots, occupancy, n_chunks, th, sizes, hessian=False)
        per_bin[v] = jnp.zeros_like(per_bin[v])
        return (jnp.log(total / n) + jnp.sum(peak) - peak[v],
                jnp.concatenate(pull(per_bin, maps)) / total)

    log_gains, d_log_gain = zip(*(others(v) for v in range(n_axes)))

    # Laplace: covariance = inverse Hessian of the summed penalised negative log-likelihood,
    # restricted to the free coordinates (the active coefficients, and for Lasso/GroupLasso the
    # nonzero ones); the delta method on log(curve) = b + (B_v c_v)[s] + log G_v. Joint leaves
    # (wider than MAX_BINS) get no band.
    # The solver's last Hessian is the one at the optimum (penalty included when smooth).
    h = res.hessian
    free = keep if reg.smooth else (keep & (theta != 0)).at[-1].set(True)
    h = jnp.where(free[:, None] & free[None, :], h * n, jnp.diag(jnp.where(free, 0.0, 1.0)))
    banded = [v for v, size in enumerate(sizes) if size <= MAX_BINS]
    jacs = []
    for v in banded:
        a, b = groups[v]
        jac = jnp.zeros((sizes[v], h.shape[0])).at[:, -1].set(1.0)
        jacs.append(jac.at[:, :-1].add(d_log_gain[v][None, :]).at[:, a:b].add(maps[v]))
    jac = jnp.concatenate(jacs) * free[None, :] if jacs else jnp.zeros((0, h.shape[0]))
    if isinstance(reg, (Ridge, Smooth)):  # positive definite: var = |L^-1 j|^2, H = LL'
        root = jax.scipy.linalg.solve_triangular(jnp.linalg.cholesky(h), jac.T, lower=True)
        var = jnp.sum(root**2, axis=0)
    else:  # the shift of a leaf against the intercept can be flat: pseudo-inverse
        var = jnp.sum((jac @ jnp.linalg.pinv(h, hermitian=True)) * jac, axis=1)
    starts = np.cumsum((0, *(sizes[v] for v in banded)))
    curve_se = [jnp.full(width, jnp.nan)] * n_axes
    for i, v in enumerate(banded):
        se = jnp.where(shown[v], jnp.sqrt(jnp.maximum(var[starts[i]:starts[i + 1]], 0.0)),
                       jnp.nan)
        curve_se[v] = jnp.pad(se, (0, width - sizes[v]), constant_values=jnp.nan)

    [rate_terms] = log_likelihood_terms(slots, [(occupancy, spikes)], n_chunks, slot_theta,
                                        sizes)
    ll = (rate_terms - log_factorial) / n
    n_spikes = jnp.sum(split(slot_spikes, sizes)[0])
    ll_null = null_log_likelihood(n_spikes, n, log_factorial)
    return (res, padded_stack(active, width, False), padded_stack(w, width),
            padded_stack(shown, width, False), jnp.stack(log_gains), ll, ll_null,
            jnp.stack(curve_se))


def _cv_fold(slots, occupancy, spikes, total_occ, total_spk, slot_occupancy, slot_spikes,
             slot_occ_total, slot_spk_total, n_chunks, n_coef, include, strengths, maps, is_basis,
             rough, theta0, reg, tol, maxiter):
    """Fit the complement of one fold and score the fold and the training cells."""
    train_occ, train_spk = total_occ - occupancy, total_spk - spikes
    sizes = map_sizes(maps)
    res, problem = solve_cells(slots, train_occ, train_spk, slot_occ_total - slot_occupancy,
                               slot_spk_total - slot_spikes, n_chunks, n_coef, include,
                               strengths, maps, is_basis, rough, theta0, reg, tol, maxiter)
    n_train = problem.n
    slot_theta = to_slots(res.theta, maps)
    test_samples = jnp.sum(split(slot_occupancy, sizes)[0])
    test_spikes = jnp.sum(split(slot_spikes, sizes)[0])
    train_spikes = jnp.sum(split(slot_spk_total, sizes)[0]) - test_spikes
    rate = train_spikes / n_train  # the training folds' mean count
    log_rate = jnp.log(jnp.maximum(rate, 1e-30))
    ll_test, ll_train = log_likelihood_terms(
        slots, [(occupancy, spikes), (train_occ, train_spk)], n_chunks, slot_theta, sizes)
    ll_test_mean = test_spikes * log_rate - test_samples * rate
    ll_train_mean = train_spikes * log_rate - n_train * rate
    return res.theta, res.converged, ll_test, ll_test_mean, ll_train, ll_train_mean


def _cv_folds(slots, occupancy, spikes, total_occ, total_spk, slot_occupancy, slot_spikes,
              n_chunks, n_folds, n_coef, include, strengths, maps, is_basis, rough, theta0, reg,
              tol, maxiter):
    """Every fold in turn, up to the run-time ``n_folds``: a loop rather than a vmap, so that
    each fold stops at its own convergence and unused fold rows cost nothing."""
    slot_occ_total, slot_spk_total = over_folds(slot_occupancy), over_folds(slot_spikes)

    def one(k, out):
        result = _cv_fold(slots, occupancy[k], spikes[k], total_occ, total_spk,
                          slot_occupancy[k], slot_spikes[k], slot_occ_total, slot_spk_total,
                          n_chunks, n_coef, include, strengths, maps, is_basis, rough, theta0[k],
                          reg, tol, maxiter)
        return tuple(o.at[k].set(r) for o, r in zip(out, result))

    zeros = jnp.zeros(FOLD_SLOTS, theta0.dtype)
    init = (theta0, jnp.ones(FOLD_SLOTS, bool), zeros, zeros, zeros, zeros)
    return jax.lax.fori_loop(0, n_folds, one, init)


cross_validate_cells = jax.jit(_cv_folds, static_argnames=("reg", "tol", "maxiter"))
"""Jitted cross-validation of the cell table: ``(slots, occupancy, spikes, total_occupancy,
total_spikes, slot_occupancy, slot_spikes, n_chunks, n_folds, n_coef, include, strengths, maps,
is_basis, rough, theta0, reg, tol, maxiter)``, per-fold tables with ``FOLD_SLOTS`` rows and
``theta0`` one start per row, to per row (theta, converged, ll_test, ll_test_mean, ll_train,
ll_train_mean), log y! left out."""
