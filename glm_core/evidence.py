"""Per-variable strengths by evidence maximisation (Laplace marginal likelihood), for Ridge and
Smooth on a bin grid.

The penalty ``0.5 * s_v * w_v' K_v w_v`` per variable (``K_v`` the identity for Ridge,
``D'D + 1e-3 I`` for Smooth), in NeMoS's mean objective, is a Gaussian prior of precision
``n * s_v * K_v`` on the summed log-likelihood of ``n`` samples (the intercept's prior is flat).
The Laplace approximation of the log evidence is

    log Z(s) = -L(w*) - (n/2) sum_v s_v w_v*' K_v w_v* + (1/2) sum_v log det(n s_v K_v)
               - (1/2) log det(H + n S) + const,

with ``w*`` the penalised optimum, ``L`` the summed negative log-likelihood, ``H`` its Hessian
and ``S`` the penalty's Hessian. MacKay's fixed point sets its gradient in ``s_v`` to zero with
``H`` held: ``s_v = gamma_v / (n w_v*' K_v w_v*)``, where ``gamma_v = m_v - n s_v tr(Sigma_vv
K_v)`` counts the well-determined coefficients among the ``m_v`` active ones and ``Sigma`` is
``(H + n S)^-1``. Each update refits (warm-started), so the whole search costs some tens of
full fits and no cross-validation.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._grid_fit import FIT_MAXITER, FIT_TOL, fit_full
from ._grid_problem import cell_problem, grid_settings
from ._kernels import map_sizes, over_folds
from .cell_table import BinGrid
from .errors import InputError
from .regularizers import Regularizer, Ridge, Smooth, get_regularizer

LOG10_RANGE = (-6.0, 0.0)  # the strength sliders' range


def evidence_strengths(
    grid: BinGrid,
    n_bins,
    include,
    log_strengths,
    regularizer: str | Regularizer = "Ridge",
    init: jax.Array | None = None,
    circular=None,
    bases=None,
    bounds: tuple[float, float] = LOG10_RANGE,
    tol: float = 1e-3,
    maxiter: int = 100,
) -> np.ndarray:
    """log10 strengths of the included variables at the Laplace evidence's maximum (MacKay's
    fixed point, clipped to ``bounds``), the others' unchanged; Ridge and Smooth only. Stops
    when no log10 strength moves by more than ``tol``; starts from ``log_strengths`` and the
    coefficients ``init`` (a fit's ``theta``)."""
    reg = get_regularizer(regularizer)
    if not isinstance(reg, (Ridge, Smooth)):
        raise InputError(f"evidence maximisation needs Ridge or Smooth, not {reg.name}")
    log_strengths = np.asarray(log_strengths, float)
    log_strengths = np.where(include, np.clip(log_strengths, *bounds), log_strengths)
    reg, (n_coef, include_, _, maps, is_basis, rough) = grid_settings(
        grid, n_bins, include, 10.0**log_strengths, reg, bases, circular)
    theta = np.zeros(grid.n_theta, np.float32) if init is None else init
    cells = (grid.slots, grid.total_occupancy, grid.total_spikes, grid.slot_occupancy,
             grid.slot_spikes, grid.n_chunks)
    log_s = np.asarray(log_strengths, np.float32)
    bounds = np.asarray(bounds, np.float32)
    # Each step is a full fit (the explorer's compiled one) and an update from its optimum, so
    # the search compiles only the small update.
    for _ in range(maxiter):
        theta = fit_full(*cells, np.float32(grid.log_factorial), n_coef, include_,
                         10.0**log_s, maps, is_basis, rough, theta, reg, FIT_TOL,
                         FIT_MAXITER)[0].theta
        new, change = jax.device_get(_mackay_step(*cells, n_coef, include_, log_s, maps,
                                                  is_basis, rough, theta, bounds, reg))
        log_s = new
        if change <= tol:
            break
    return np.asarray(log_s, float)


def _mackay_update(theta, h, penalty_hessian, log_s, include, active, n, sizes):
    """One fixed-point step of the log10 strengths from the optimum ``theta`` and the masked
    Hessian ``h`` of the mean negative log-likelihood (identity rows off the active set), leaf
    by leaf (``sizes``: each leaf's slots in the flat vector)."""
    a = n * (h + penalty_hessian)
    cov = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a), jnp.eye(a.shape[0]))
    starts = np.cumsum((0, *sizes))
    gamma, fit_term = [], []
    for lo, hi in zip(starts[:-1], starts[1:]):
        prior = n * penalty_hessian[lo:hi, lo:hi]  # n s_v K_v
        gamma.append(-jnp.sum(cov[lo:hi, lo:hi] * prior.T))
        fit_term.append(theta[lo:hi] @ prior @ theta[lo:hi])  # n s_v w' K_v w
    m = jnp.stack([jnp.sum(a) for a in active])
    gamma = m + jnp.stack(gamma)
    fit_term = jnp.stack(fit_term)
    ratio = jnp.maximum(gamma, 1e-6 * m) / jnp.maximum(fit_term, 1e-30)
    return jnp.where(include & (m > 0), log_s + jnp.log10(ratio), log_s)


@partial(jax.jit, static_argnames=("reg",))
def _mackay_step(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef, include,
                 log_s, maps, is_basis, rough, theta, bounds, reg):
    """The fixed point's update at the optimum ``theta`` of ``log_s``, and the largest change.
    ``occupancy`` and ``spikes`` are the cells' totals over folds, ``slot_*`` per fold."""
    problem = cell_problem(
        slots, occupancy, spikes, over_folds(slot_occupancy), over_folds(slot_spikes),
        n_chunks, n_coef, include, 10.0**log_s, maps, is_basis, rough, reg)
    _, _, h = problem.value_grad_hess(theta)
    new = _mackay_update(theta, h, reg.hessian(theta, problem.weights, problem.groups), log_s,
                         include, problem.active, problem.n, map_sizes(maps))
    # A float32 Cholesky of a nearly flat posterior (a weak Smooth prior on a leaf's shift
    # against the intercept) can fail: the search then stops at the last finite strengths.
    new = jnp.where(include & jnp.isfinite(new), jnp.clip(new, bounds[0], bounds[1]), log_s)
    return new, jnp.max(jnp.abs(new - log_s))
