"""Second-order solvers on a flat parameter vector, written to run inside ``jax.jit``.

The smooth part of the objective comes as one function, ``value_grad_hess(theta) -> (f, g, H)``:
the value with its derivatives, from one pass over the data. Every iteration takes a second-order
step and evaluates the objective and its derivatives at the full step, which is nearly always
accepted, so an iteration costs one pass. Otherwise an Armijo backtracking line search halves it,
and Levenberg-Marquardt damping (a multiple of the mean curvature added
to H: tiny after a good step, raised a hundredfold after a failed one, so flat directions such as
one-hot leaves plus an intercept cannot derail it). Smooth problems (no penalty, Ridge) take
Newton steps; Lasso and GroupLasso take proximal Newton steps, whose inner problem the regularizer
solves.

Convergence: the largest entry of the minimum-norm subgradient of objective + penalty (the
gradient when the penalty is smooth) falls below ``tol * scale``, where ``scale`` is the mean
spike count, the natural size of the gradient. With Lasso or GroupLasso, whose inner problem is
solved by coordinate sweeps in float32, a nearly flat direction (a leaf with a very weak penalty,
shifted against the intercept) can hold that residual a little above ``tol``: once ``STALLS``
iterations in a row lower the objective by no more than its round-off, the solver stops,
converged if the residual is within ``STALL_TOL`` times ``tol``. Newton steps on the smooth
problems reach ``tol``; there a stall means something else (an unpenalised bin without spikes
has no finite optimum), so they run on and report it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .regularizers import Regularizer, branch

MAX_BACKTRACKS = 30
ARMIJO = 1e-4
MIN_DAMPING = 1e-6  # Levenberg-Marquardt damping, relative to the mean curvature
MAX_DAMPING = 1e6
STALLS = 3
STALL_TOL = 100.0
INNER_SWEEPS = 500  # at most, per proximal Newton step


class SolverResult(NamedTuple):
    """Immutable solver output."""

    theta: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    residual: jax.Array  # optimality residual at ``theta``, in units of ``scale``
    objective: jax.Array
    hessian: jax.Array  # of the smooth part (penalty included when smooth) at ``theta``


def solve(
    value_grad_hess: Callable,
    theta0: jax.Array,
    regularizer: Regularizer,
    weights: jax.Array,
    groups: tuple,
    scale: jax.Array,
    tol: float,
    maxiter: int,
    diagonal_blocks=False,
) -> SolverResult:
    """Minimise ``f(theta) + regularizer.penalty(theta)`` from ``theta0``, where
    ``value_grad_hess(theta)`` returns f with its gradient and Hessian.

    ``diagonal_blocks`` promises that each group's block of the Hessian is diagonal (one-hot
    leaves), which lets the non-smooth inner solvers update a whole group at once; a JAX bool
    decides it at run time.
    """
    penalty = lambda th: regularizer.penalty(th, weights, groups)  # noqa: E731
    if regularizer.smooth:
        value_grad_hess = _with_smooth_penalty(value_grad_hess, penalty,
                                               regularizer.hessian(theta0, weights, groups))
        diagonal = diagonal_blocks if regularizer.keeps_blocks_diagonal else False

        def direction(*args):
            first, lead = groups[0] if groups else (1, 0)
            return branch(diagonal, partial(_newton_direction, lead=lead if first == 0 else 0),
                          _newton_direction, *args)

        nonsmooth = lambda th: 0.0  # noqa: E731
    else:
        def direction(theta, g, h, res):
            # Inexact proximal Newton: the inner problem is solved to a small fraction of the
            # current optimality residual, tightening as the outer iterations converge.
            inner_tol = 1e-2 * scale * jnp.maximum(jnp.minimum(res, 1.0), tol)
            z = regularizer.solve_quadratic(
                h, h @ theta - g, theta, weights, groups, inner_tol, INNER_SWEEPS, diagonal_blocks
            )
            d = z - theta
            return d, g @ d + penalty(z) - penalty(theta)

        nonsmooth = penalty

    def evaluate(theta):
        f, g, h = value_grad_hess(theta)
        return f + nonsmooth(theta), g, h

    def residual(theta, g):
        return jnp.max(jnp.abs(regularizer.stationarity(theta, g, weights, groups))) / scale

    def cond(state):
        *_, res, k, damping, stalls = state
        return ((res > tol) & (k < maxiter) & (damping < MAX_DAMPING)
                & (regularizer.smooth | (stalls < STALLS)))

    def body(state):
        theta, f, g, h, res, k, damping, stalls = state
        eye = jnp.eye(h.shape[0], dtype=h.dtype)
        d, slope = direction(theta, g, h + damping * jnp.mean(jnp.diagonal(h)) * eye, res)
        new_theta, new_f, new_g, new_h, ok = _line_search(evaluate, theta, f, d, slope)
        return (
            new_theta,
            new_f,
            jnp.where(ok, new_g, g),
            jnp.where(ok, new_h, h),
            jnp.where(ok, residual(new_theta, new_g), res),
            k + 1,
            jnp.where(ok, jnp.maximum(damping / 10, MIN_DAMPING), damping * 100),
            jnp.where(f - new_f <= _round_off(f), stalls + 1, 0),
        )

    f0, g0, h0 = evaluate(theta0)
    init = (theta0, f0, g0, h0, residual(theta0, g0), 0,
            jnp.asarray(MIN_DAMPING, theta0.dtype), 0)
    theta, f, _, h, res, k, _, stalls = jax.lax.while_loop(cond, body, init)
    converged = (res <= tol) | (
        (not regularizer.smooth) & (stalls >= STALLS) & (res <= STALL_TOL * tol))
    return SolverResult(theta, k, converged, res, f, h)


def _with_smooth_penalty(value_grad_hess, penalty, ph):
    """Fold a smooth penalty into the value, gradient and Hessian. The smooth penalties (none,
    Ridge, Smooth) are quadratic forms 0.5 theta' P theta: P (``ph``, the regularizer's own
    Hessian) is constant and the gradient is P theta."""

    def value_grad_hess_p(theta):
        f, g, h = value_grad_hess(theta)
        return f + penalty(theta), g + ph @ theta, h + ph

    return value_grad_hess_p


def _newton_direction(theta, g, h, res, lead=0):
    """Solve h d = -g by Cholesky. With ``lead`` > 0 (h's leading lead x lead block is
    diagonal), those coordinates are eliminated first and Cholesky runs on the smaller Schur
    complement."""
    if not lead:
        d = _cholesky_solve(h, -g)
        return d, g @ d
    diag = jnp.diagonal(h)[:lead]
    coupling = h[:lead, lead:]
    schur = h[lead:, lead:] - coupling.T @ (coupling / diag[:, None])
    d_rest = _cholesky_solve(schur, -(g[lead:] - coupling.T @ (g[:lead] / diag)))
    d = jnp.concatenate([-(g[:lead] + coupling @ d_rest) / diag, d_rest])
    return d, g @ d


def _cholesky_solve(h, rhs):
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(h), rhs)


def _line_search(evaluate, theta, f, d, slope):
    """Armijo backtracking from the full step, each trial point evaluated with its derivatives
    (the full step is nearly always taken, so this is one pass), with a few ulps of slack so
    float32 round-off near the optimum cannot reject a good full step. Returns the new point,
    its value and derivatives, and whether a step was taken (else the old point is kept)."""
    slack = _round_off(f)

    def cond(state):
        t, f_new, *_, n = state
        return ~(f_new <= f + ARMIJO * t * slope + slack) & (n < MAX_BACKTRACKS)

    def body(state):
        t, *_, n = state
        t = 0.5 * t
        return (t, *evaluate(theta + t * d), n + 1)

    one = jnp.ones((), theta.dtype)
    t, f_new, g_new, h_new, _ = jax.lax.while_loop(cond, body, (one, *evaluate(theta + d), 0))
    accept = jnp.isfinite(f_new) & (f_new <= f + slack) & jnp.all(jnp.isfinite(d))
    return (jnp.where(accept, theta + t * d, theta), jnp.where(accept, f_new, f), g_new, h_new,
            accept)


def _round_off(f):
    """A few ulps of the objective: changes below it are float32 noise."""
    return 8 * jnp.finfo(f.dtype).eps * jnp.abs(f)
