"""The jitted fit with behavioural and lagged leaves, its Laplace bands, and cross-validation.

``fit_lagged_full`` solves on every used sample and returns, as the grid engine's ``fit_full``,
each behavioural axis's active coefficients, effects, the others' mean gain (lagged term
included) and the Laplace standard error of the log of its curve, plus the Laplace covariance of
the lag coefficients (the filters' bands are taken from it on the host).
``cross_validate_lagged_folds`` fits each fold's complement and scores the fold, in one compiled
loop over the folds. A held-out sample's lagged row is its observed past, whatever fold that
past is in: a covariate, not a prediction.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._kernels import (
    map_sizes,
    null_log_likelihood,
    over_folds,
    padded_stack,
    pull,
    split,
    to_slots,
    walk,
)
from ._lag_problem import LAG_COLUMNS, lag_cells, lag_term, sample_eta, solve_lagged
from .cell_table import FOLD_SLOTS, MAX_BINS
from .regularizers import Ridge, Smooth


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def fit_lagged_full(slots, n_chunks, samples, fold, nonzero, log_factorial, settings, theta0,
                    reg, tol, maxiter):
    """The fit on every used sample (``fold >= 0``), with what the curves and bands need.

    Args:
        slots, n_chunks: the cell table.
        samples: per sample (cell, bin slots (V, N), count, lagged rows
            (MAX_LAG_LEAVES, N, LAG_BASIS)), as ``_lag_problem.solve_lagged`` takes them.
        fold: per sample its fold (-1: unused).
        nonzero: (FOLD_SLOTS, LAG_COLUMNS) per fold the samples with a nonzero lag entry.
        log_factorial: sum of log y! over the used samples.
        settings: ``_lag_problem.lag_problem``'s settings, ``n_coef`` to ``lag_rough``.
        theta0: the start; reg, tol, maxiter: the solver's (static).

    Returns:
        (solver result, active, effects, shown, log_others_gain, mean log-likelihood, the null
        model's, curve_se, lag covariance (LAG_COLUMNS, LAG_COLUMNS)); per-axis arrays padded to
        the widest axis.
    """
    maps, include, is_basis = settings[3], settings[1], settings[4]
    sizes = map_sizes(maps)
    n_axes, width, n_beh = len(sizes), max(sizes), sum(sizes)
    cell, sample_slots, y, columns = samples
    weight = (fold >= 0).astype(y.dtype)
    res, problem = solve_lagged(slots, n_chunks, samples, weight, over_folds(nonzero), settings,
                                theta0, reg, tol, maxiter)
    keep, active, n, theta = problem.keep, problem.active, problem.n, res.theta
    slot_theta = to_slots(jnp.concatenate([theta[:n_beh], theta[-1:]]), maps)
    w = split(slot_theta[:-1], sizes)
    shown = [jnp.where(is_basis[v] & include[v], True, active[v]) for v in range(n_axes)]
    peak = jnp.stack([jnp.max(jnp.where(s, x, -jnp.inf)) for s, x in zip(shown, w)])
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)
    on = problem.on
    lag = lag_term(columns, theta[n_beh:n_beh + LAG_COLUMNS], on)
    lag_peak = jnp.max(jnp.where(weight > 0, lag, -jnp.inf))

    # per cell, the sums of exp(lagged term) and of exp(lagged term) z over its samples: the
    # other axes' effects are constant within a cell, so each axis's mean gain is a cell walk
    lag_gain = weight * jnp.exp(lag - lag_peak)
    gain_cells = jax.ops.segment_sum(lag_gain, cell, slots.shape[1])
    gain_z_cells = lag_cells(cell, slots.shape[1], columns, lag_gain, on)

    def others(v):
        """log of the mean over samples of exp(the other axes' effects + the lagged term), and
        its gradient in the coefficients (behavioural, then lag)."""
        wv = [jnp.zeros_like(x) if u == v else x - peak[u] for u, x in enumerate(w)]
        total, per_bin, _ = walk(slots, gain_cells, n_chunks, jnp.concatenate(
            [*wv, jnp.zeros(1)]), sizes, hessian=False)
        per_bin[v] = jnp.zeros_like(per_bin[v])
        factor = jnp.exp(sum(wv[u][slots[u]] for u in range(n_axes)))  # per cell
        grad = jnp.concatenate([*pull(per_bin, maps), factor @ gain_z_cells]) / total
        return jnp.log(total / n) + jnp.sum(peak) - peak[v] + lag_peak, grad

    log_gains, d_log_gain = zip(*(others(v) for v in range(n_axes)))

    # Laplace: the inverse Hessian of the summed penalised negative log-likelihood on the free
    # coordinates (for Lasso/GroupLasso, the nonzero ones), the delta method for the curves.
    free = keep if reg.smooth else (keep & (theta != 0)).at[-1].set(True)
    h = jnp.where(free[:, None] & free[None, :], res.hessian * n,
                  jnp.diag(jnp.where(free, 0.0, 1.0)))
    eye = jnp.eye(h.shape[0], dtype=h.dtype)
    if isinstance(reg, (Ridge, Smooth)):
        cov = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(h), eye)
    else:
        cov = jnp.linalg.pinv(h, hermitian=True)
    cov = jnp.where(free[:, None] & free[None, :], cov, 0.0)
    starts = np.cumsum((0, *sizes))
    curve_se = []
    for v in range(n_axes):
        if sizes[v] > MAX_BINS:  # joint leaves get no band, as in the grid engine
            curve_se.append(jnp.full(width, jnp.nan))
            continue
        jac = jnp.zeros((sizes[v], h.shape[0])).at[:, -1].set(1.0)
        jac = jac.at[:, :-1].add(d_log_gain[v][None, :])
        jac = jac.at[:, starts[v]:starts[v + 1]].add(maps[v]) * free[None, :]
        var = jnp.sum((jac @ cov) * jac, axis=1)
        se = jnp.where(shown[v], jnp.sqrt(jnp.maximum(var, 0.0)), jnp.nan)
        curve_se.append(jnp.pad(se, (0, width - sizes[v]), constant_values=jnp.nan))
    lag_cov = cov[n_beh:n_beh + LAG_COLUMNS, n_beh:n_beh + LAG_COLUMNS]

    eta = sample_eta(theta, maps, sample_slots, columns, on)
    n_spikes = jnp.sum(weight * y)
    ll = (jnp.sum(weight * (y * eta - jnp.exp(eta))) - log_factorial) / n
    ll_null = null_log_likelihood(n_spikes, n, log_factorial)
    return (res, padded_stack(active, width, False), padded_stack(w, width),
            padded_stack(shown, width, False), jnp.stack(log_gains), ll, ll_null,
            jnp.stack(curve_se), lag_cov)


def _cv_folds(slots, n_chunks, samples, fold, nonzero, n_folds, settings, theta0, reg, tol,
              maxiter):
    """Every fold in turn, up to the run-time ``n_folds``: fit the other folds' used samples,
    score the fold's and the training samples (log y! left out)."""
    maps = settings[3]
    _, sample_slots, y, columns = samples
    used = fold >= 0
    all_nonzero = over_folds(nonzero)

    def one(k, out):
        train = (used & (fold != k)).astype(y.dtype)
        test = (fold == k).astype(y.dtype)
        res, problem = solve_lagged(slots, n_chunks, samples, train, all_nonzero - nonzero[k],
                                    settings, theta0[k], reg, tol, maxiter)
        eta = sample_eta(res.theta, maps, sample_slots, columns, problem.on)
        terms = y * eta - jnp.exp(eta)
        n_train, n_test = problem.n, jnp.sum(test)
        train_spikes, test_spikes = jnp.sum(train * y), jnp.sum(test * y)
        rate = train_spikes / n_train
        log_rate = jnp.log(jnp.maximum(rate, 1e-30))
        result = (res.theta, res.converged, jnp.sum(test * terms),
                  test_spikes * log_rate - n_test * rate, jnp.sum(train * terms),
                  train_spikes * log_rate - n_train * rate)
        return tuple(o.at[k].set(r) for o, r in zip(out, result))

    zeros = jnp.zeros(FOLD_SLOTS, theta0.dtype)
    init = (theta0, jnp.ones(FOLD_SLOTS, bool), zeros, zeros, zeros, zeros)
    return jax.lax.fori_loop(0, n_folds, one, init)


cross_validate_lagged_folds = jax.jit(_cv_folds, static_argnames=("reg", "tol", "maxiter"))
"""Jitted cross-validation: ``(slots, n_chunks, samples, fold, nonzero, n_folds, settings,
theta0, reg, tol, maxiter)`` (as for :func:`fit_lagged_full`), ``theta0`` one start per fold
row (``FOLD_SLOTS``), to per row (theta, converged, ll_test, ll_test_mean, ll_train,
ll_train_mean), log y! left out."""
