"""Penalties on a flat parameter vector ``theta = [coefficients..., intercept]``.

Each regularizer knows its penalty value, its minimum-norm subgradient (the optimality residual,
computed without the round-off of ``theta - prox(theta - grad)``) and, for non-smooth penalties,
how to minimise a quadratic model plus the penalty (the inner problem of proximal Newton).
``weights`` are per coordinate (Ridge, Lasso; zero on the intercept), per group (GroupLasso,
already multiplied by sqrt(group size)) or a (p+1, p+1) matrix (Smooth, zero row and column for
the intercept); ``groups`` is a static tuple of (start, stop) slices, one per coefficient leaf.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import block_diag

SMOOTH_RIDGE = 1e-3  # Smooth adds this ridge, times the leaf's strength, so its optimum is unique


def branch(flag, if_true, if_false, *operands):
    """``if_true(*operands)`` where ``flag`` holds, else ``if_false(*operands)``: chosen while
    tracing for a Python bool, at run time (``lax.cond``, both compiled once) for a JAX bool."""
    if isinstance(flag, bool):
        return (if_true if flag else if_false)(*operands)
    return jax.lax.cond(flag, if_true, if_false, *operands)


@dataclass(frozen=True)
class Regularizer:
    """Base class; subclasses are stateless and hashable, so they can be static jit arguments."""

    name: ClassVar[str] = ""
    smooth: ClassVar[bool] = True
    keeps_blocks_diagonal: ClassVar[bool] = True  # its Hessian adds nothing off the diagonal

    def penalty(self, theta, weights, groups):
        return jnp.zeros((), theta.dtype)

    def stationarity(self, theta, grad, weights, groups):
        """Minimum-norm element of the subdifferential of objective + penalty (``grad`` is the
        smooth part's gradient; smooth penalties are already inside it)."""
        return grad

    def curvature(self, theta, weights, groups):
        """Where the penalty is smooth at ``theta`` (a boolean mask: the coordinates that the
        Laplace approximation treats as free) and its Hessian there."""
        return jnp.ones(theta.shape, bool), self.hessian(theta, weights, groups)

    def hessian(self, theta, weights, groups):
        """The penalty's Hessian at ``theta`` (of a smooth penalty)."""
        return jax.hessian(self.penalty)(theta, weights, groups)


@dataclass(frozen=True)
class UnRegularized(Regularizer):
    name: ClassVar[str] = "UnRegularized"


@dataclass(frozen=True)
class Ridge(Regularizer):
    """0.5 * sum(s * w**2)."""

    name: ClassVar[str] = "Ridge"

    def penalty(self, theta, weights, groups):
        return 0.5 * jnp.sum(weights * theta**2)

    def hessian(self, theta, weights, groups):
        return jnp.diag(weights)


@dataclass(frozen=True)
class Lasso(Regularizer):
    """sum(s * |w|)."""

    name: ClassVar[str] = "Lasso"
    smooth: ClassVar[bool] = False

    def penalty(self, theta, weights, groups):
        return jnp.sum(weights * jnp.abs(theta))

    def stationarity(self, theta, grad, weights, groups):
        at_zero = jnp.sign(grad) * jnp.maximum(jnp.abs(grad) - weights, 0.0)
        return jnp.where(theta == 0, at_zero, grad + weights * jnp.sign(theta))

    def curvature(self, theta, weights, groups):
        """Free: the nonzero and the unpenalised coordinates; |w| is flat away from zero."""
        free = (theta != 0) | (weights == 0)
        return free, jnp.zeros((theta.size, theta.size), theta.dtype)

    def solve_quadratic(self, hess, linear, z0, weights, groups, tol, max_sweeps,
                        diagonal_blocks=False):
        """Coordinate descent on 0.5 z'Hz - linear'z + sum(s|z|).

        With ``diagonal_blocks`` (each group's block of H is diagonal, as for one-hot leaves) the
        coordinates of a group do not interact, so each group is updated at once, exactly.
        ``diagonal_blocks`` may be a JAX bool, decided at run time.
        """
        diag = jnp.diagonal(hess)

        def soft(rho, i):
            return jnp.sign(rho) * jnp.maximum(jnp.abs(rho) - weights[i], 0.0) / diag[i]

        def coordinate(i, carry):
            z, hz = carry
            new = soft(linear[i] - hz[i] + diag[i] * z[i], i)
            return z.at[i].set(new), hz + hess[:, i] * (new - z[i])

        def coordinate_sweep(z):
            return jax.lax.fori_loop(0, z.shape[0], coordinate, (z, hess @ z))[0]

        def block_sweep(z):
            for a, b in _blocks(groups, z.shape[0]):
                rho = linear[a:b] - hess[a:b] @ z + diag[a:b] * z[a:b]
                z = z.at[a:b].set(soft(rho, slice(a, b)))
            return z

        # Exact moves of each group against the intercept (the last free coordinate): the
        # direction a one-hot leaf plus an intercept leaves flat, along which single coordinates
        # would crawl. Directions and their curvatures are fixed for the whole inner solve.
        free = _ungrouped(groups, z0.shape[0])
        moves = []
        for a, b in groups if free else ():
            d = jnp.zeros_like(z0).at[a:b].set((weights[a:b] > 0).astype(z0.dtype))
            d = d.at[free[-1]].set(-1.0)
            moves.append((a, b, d, hess @ d))

        def shifts(z):
            resid = hess @ z - linear
            for a, b, d, hd in moves:
                c = _lasso_line_min(d @ resid, d @ hd, z[a:b], weights[a:b])
                z, resid = z + c * d, resid + c * hd
            return z

        def base(z):
            return branch(diagonal_blocks, block_sweep, coordinate_sweep, z)

        # Each sweep ends with a solve on the support it found; once a sweep keeps the support
        # and that solve is a full step, z is the minimiser (float32 round-off would keep the
        # sweeps' change above a tight ``tol`` until ``max_sweeps``).
        def cond(state):
            _, change, exact, k = state
            return (change > tol) & ~exact & (k < max_sweeps)

        def body(state):
            z, _, _, k = state
            swept = shifts(base(z))
            new, full_step = _support_newton(hess, linear, swept, weights)
            same = jnp.all((swept != 0) == (z != 0))
            return new, jnp.max(jnp.abs(new - z)), full_step & same & (k > 0), k + 1

        state = (z0, jnp.asarray(jnp.inf, z0.dtype), jnp.asarray(False), 0)
        return jax.lax.while_loop(cond, body, state)[0]


@dataclass(frozen=True)
class GroupLasso(Regularizer):
    """sum_g s_g * sqrt(p_g) * ||w_g||_2; the sqrt(p_g) factor is already inside ``weights``."""

    name: ClassVar[str] = "GroupLasso"
    smooth: ClassVar[bool] = False

    def penalty(self, theta, weights, groups):
        return sum(weights[g] * jnp.linalg.norm(theta[a:b]) for g, (a, b) in enumerate(groups))

    def stationarity(self, theta, grad, weights, groups):
        out = grad
        for g, (a, b) in enumerate(groups):
            block, slope = theta[a:b], grad[a:b]
            norm, slope_norm = jnp.linalg.norm(block), jnp.linalg.norm(slope)
            at_zero = slope * jnp.maximum(1.0 - weights[g] / jnp.maximum(slope_norm, 1e-30), 0.0)
            moving = slope + weights[g] * block / jnp.maximum(norm, 1e-30)
            out = out.at[a:b].set(jnp.where(norm == 0, at_zero, moving))
        return out

    def solve_quadratic(self, hess, linear, z0, weights, groups, tol, max_sweeps,
                        diagonal_blocks=False):
        """Block coordinate descent with an exact solve per group, through the eigen-decomposition
        of its block of H (its diagonal when ``diagonal_blocks``, which may be a JAX bool).

        Coordinates outside every group (the intercept) are updated exactly with no penalty.
        """
        free = _ungrouped(groups, z0.shape[0])
        if isinstance(diagonal_blocks, bool) and diagonal_blocks:
            eig = [(jnp.diagonal(hess)[a:b], None) for a, b in groups]
        else:
            eig = branch(diagonal_blocks,
                         lambda h: [(jnp.diagonal(h)[a:b], jnp.eye(b - a, dtype=h.dtype))
                                    for a, b in groups],
                         lambda h: [tuple(jnp.linalg.eigh(h[a:b, a:b])) for a, b in groups],
                         hess)

        def sweep(z):
            for g, (a, b) in enumerate(groups):
                resid = linear[a:b] - hess[a:b] @ z + hess[a:b, a:b] @ z[a:b]
                z = z.at[a:b].set(_group_block_solve(*eig[g], resid, weights[g]))
            for i in free:
                resid = linear[i] - hess[i] @ z + hess[i, i] * z[i]
                z = z.at[i].set(resid / hess[i, i])
            return z

        return _polish(self, hess, linear, _iterate_sweeps(sweep, z0, tol, max_sweeps), weights,
                       groups)

    def curvature(self, theta, weights, groups):
        """Free: the intercept and the groups away from zero, with the group norms' curvature."""
        support, _, hess = self.on_support(theta, weights, groups)
        return support, hess

    def on_support(self, z, weights, groups):
        """Coordinates free to move (the intercept, and groups away from zero) and the penalty's
        gradient and Hessian there, where it is smooth."""
        support = jnp.ones(z.shape, bool)
        grad = jnp.zeros_like(z)
        hess = jnp.zeros((z.size, z.size), z.dtype)
        for g, (a, b) in enumerate(groups):
            block = z[a:b]
            norm = jnp.linalg.norm(block)
            safe = jnp.maximum(norm, 1e-30)
            support = support.at[a:b].set(norm > 0)
            grad = grad.at[a:b].set(weights[g] * block / safe)
            curvature = jnp.eye(b - a, dtype=z.dtype) / safe - jnp.outer(block, block) / safe**3
            hess = hess.at[a:b, a:b].set(weights[g] * curvature)
        return support, grad, hess


@dataclass(frozen=True)
class Smooth(Regularizer):
    """0.5 * theta' W theta with W block-diagonal, one block per leaf:
    s_leaf * (D'D + SMOOTH_RIDGE * I), D the first differences of the leaf's coefficients (with
    the wrap-around difference w[0] - w[n-1] for the leaves named in ``circular``; along both
    axes for the leaves that ``grids`` maps to a shape (nx, ny), whose coefficient bx * ny + by
    is cell (bx, by) of a 2-D map). ``weights`` is W itself, zero row and column for the
    intercept.

    ``circular`` and ``grids`` name leaves: top-level keys of a dict design, or for any other
    pytree the ``jax.tree_util.keystr`` of the leaf's path (e.g. ``"['a'][0]"``).
    """

    name: ClassVar[str] = "Smooth"
    keeps_blocks_diagonal: ClassVar[bool] = False
    circular: frozenset = field(default_factory=frozenset)
    grids: tuple = ()  # ((leaf name, (nx, ny)), ...), sorted; a dict is accepted

    def __post_init__(self):
        names = (self.circular,) if isinstance(self.circular, str) else self.circular
        object.__setattr__(self, "circular", frozenset(names))
        grids = dict(self.grids)
        object.__setattr__(self, "grids", tuple(sorted(
            (name, (int(shape[0]), int(shape[1]))) for name, shape in grids.items())))

    def penalty(self, theta, weights, groups):
        return 0.5 * theta @ (weights @ theta)

    def hessian(self, theta, weights, groups):
        """W's symmetric part, without differentiating twice (a cubic cost in the size)."""
        return 0.5 * (weights + weights.T)


def roughness(n: int, circular: bool) -> np.ndarray:
    """D'D for the first differences D of ``n`` coefficients in order: w[k+1] - w[k], plus
    w[0] - w[n-1] when ``circular`` (a circle of n bins has n boundaries; two for n = 2)."""
    eye = np.eye(n)
    diff = np.roll(eye, -1, axis=0) - eye if circular else np.diff(eye, axis=0)
    return diff.T @ diff


def grid_roughness(nx: int, ny: int) -> np.ndarray:
    """D'D for the first differences between neighbouring cells of an (nx, ny) grid, along
    both axes, its cells flattened as bx * ny + by: R_nx (x) I_ny + I_nx (x) R_ny."""
    return (np.kron(roughness(nx, False), np.eye(ny))
            + np.kron(np.eye(nx), roughness(ny, False)))


def smooth_weights(strengths: Iterable[float], sizes: Iterable[int],
                   circular: Iterable[bool], grids: Iterable | None = None) -> np.ndarray:
    """Smooth's W for leaves of ``sizes`` coefficients, plus a zero row/column for the
    intercept; ``grids`` gives per leaf None (a 1-D leaf) or its 2-D shape (nx, ny)."""
    sizes = list(sizes)
    grids = [None] * len(sizes) if grids is None else list(grids)
    blocks = [float(s) * ((roughness(p, c) if g is None else grid_roughness(*g))
                          + SMOOTH_RIDGE * np.eye(p))
              for s, p, c, g in zip(strengths, sizes, circular, grids)]
    return block_diag(*blocks, np.zeros((1, 1)))


def _polish(reg, hess, linear, z, weights, groups, steps=4):
    """Newton steps on the quadratic model restricted to the support of ``z``, where the penalty
    is smooth; kept only if they lower the model. Block coordinate descent crawls along directions
    the smooth part leaves flat (a one-hot leaf shifted against the intercept); Newton does not."""

    def model(z):
        return 0.5 * z @ hess @ z - linear @ z + reg.penalty(z, weights, groups)

    def newton(_, z):
        support, grad, curvature = reg.on_support(z, weights, groups)
        step_grad = jnp.where(support, hess @ z - linear + grad, 0.0)
        system = jnp.where(support[:, None] & support[None, :], hess + curvature,
                           jnp.eye(z.size, dtype=z.dtype))
        return z - jax.scipy.linalg.solve(system, step_grad, assume_a="pos")

    polished = jax.lax.fori_loop(0, steps, newton, z)
    better = jnp.all(jnp.isfinite(polished)) & (model(polished) < model(z))
    return jnp.where(better, polished, z)


SUPPORT_PACKED = 64  # a support of at most this many coordinates is solved packed


def _support_newton(hess, linear, z, weights):
    """The exact minimiser of 0.5 z'Hz - linear'z + sum(s|z|) on the orthant of ``z``'s signs
    (its support: the nonzero and the unpenalised coordinates), approached as far as no nonzero
    coordinate changes sign (one that would is set to zero). Coordinate sweeps identify the
    support quickly but crawl to the minimiser along directions the coupled one-hot leaves leave
    flat; one linear solve per sweep lands on it. Kept only where it lowers the model.

    Returns:
        (the new z, whether it is the orthant's minimiser: a full step, kept)."""
    n = z.size
    eye = jnp.eye(n, dtype=hess.dtype)
    coupled = jnp.any((hess != 0) & (eye == 0), axis=1)  # not an inert, uncoupled coordinate
    support = (z != 0) | ((weights == 0) & coupled)
    rhs = jnp.where(support, linear - weights * jnp.sign(z), 0.0)

    def packed(_):  # the support's system alone, padded to SUPPORT_PACKED with inert rows
        idx = jnp.nonzero(support, size=SUPPORT_PACKED, fill_value=n)[0]
        valid = idx < n
        h = jnp.pad(hess, ((0, 1), (0, 1)))[idx[:, None], idx[None, :]]
        h = jnp.where(valid[:, None] & valid[None, :], h, jnp.diag(jnp.where(valid, 0.0, 1.0)))
        x = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(h),
                                       jnp.where(valid, jnp.append(rhs, 0.0)[idx], 0.0))
        return jnp.zeros(n + 1, z.dtype).at[idx].set(x)[:n]

    def full(_):
        h = jnp.where(support[:, None] & support[None, :], hess, eye)
        return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(h), rhs)

    target = jnp.where(support, jax.lax.cond(jnp.sum(support) <= SUPPORT_PACKED, packed, full,
                                             None), 0.0)
    flips = (z != 0) & (weights > 0) & (jnp.sign(target) != jnp.sign(z))
    ratio = jnp.where(flips, z / jnp.where(flips, z - target, 1.0), jnp.inf)
    t = jnp.minimum(1.0, jnp.min(ratio))
    new = jnp.where(flips & (ratio <= t), 0.0, z + t * (target - z))

    def model(x):
        return 0.5 * x @ hess @ x - linear @ x + jnp.sum(weights * jnp.abs(x))

    better = jnp.all(jnp.isfinite(new)) & (model(new) <= model(z))
    return jnp.where(better, new, z), better & (t >= 1.0)


def _lasso_line_min(slope, curvature, z, s):
    """argmin_c slope*c + curvature*c**2/2 + sum_k s_k |z_k + c|: the minimum of a convex
    piecewise quadratic is at a kink (c = -z_k) or at the stationary point of one piece."""
    kinks = -z
    below = (kinks[None, :] <= kinks[:, None]) * s  # [j, k]: s_k where kink k <= kink j
    pull = jnp.concatenate([jnp.array([-jnp.sum(s)]), 2 * below.sum(1) - jnp.sum(s)])
    pieces = -(slope + pull) / jnp.maximum(curvature, 1e-30)
    candidates = jnp.concatenate([kinks, pieces, jnp.zeros(1, z.dtype)])
    values = (slope * candidates + 0.5 * curvature * candidates**2
              + jnp.sum(s * jnp.abs(z[None, :] + candidates[:, None]), axis=1))
    return candidates[jnp.argmin(jnp.where(jnp.isfinite(values), values, jnp.inf))]


def _blocks(groups, size):
    """The groups followed by one single-coordinate block per ungrouped coordinate."""
    return tuple(groups) + tuple((i, i + 1) for i in _ungrouped(groups, size))


def _ungrouped(groups, size):
    inside = {i for a, b in groups for i in range(a, b)}
    return tuple(i for i in range(size) if i not in inside)


def _group_block_solve(evals, evecs, resid, lam):
    """argmin_z 0.5 z'Az - r'z + lam*||z||, with A = evecs diag(evals) evecs' (evecs None: A is
    diagonal).

    Zero when ||r|| <= lam; otherwise z = (A + lam/rho I)^-1 r with rho = ||z|| the root of
    psi(rho) = sum_i a_i^2 / (evals_i rho + lam)^2 = 1. Newton runs on psi^-1/2 - 1, which is
    increasing and concave, from the lower bound (||a|| - lam) / max(evals), so it climbs
    monotonically to the root.
    """
    a = resid if evecs is None else evecs.T @ resid
    norm_a = jnp.linalg.norm(a)
    top = jnp.max(evals)
    evals = jnp.maximum(evals, 1e-12 * top)

    def newton(_, rho):
        denom = evals * rho + lam
        psi = jnp.sum(a**2 / denom**2)
        dpsi = -2.0 * jnp.sum(a**2 * evals / denom**3)
        return rho - (psi**-0.5 - 1.0) / (-0.5 * psi**-1.5 * dpsi)

    rho0 = jnp.maximum(norm_a - lam, 0.0) / top
    rho = jax.lax.fori_loop(0, 20, newton, rho0)
    z = a * rho / (evals * rho + lam)
    z = z if evecs is None else evecs @ z
    return jnp.where(norm_a > lam, z, 0.0)


def _iterate_sweeps(sweep, z0, tol, max_sweeps):
    def cond(state):
        _, change, k = state
        return (change > tol) & (k < max_sweeps)

    def body(state):
        z, _, k = state
        new = sweep(z)
        return new, jnp.max(jnp.abs(new - z)), k + 1

    z, _, _ = jax.lax.while_loop(cond, body, (z0, jnp.asarray(jnp.inf, z0.dtype), 0))
    return z


REGULARIZERS = {cls.name: cls for cls in (UnRegularized, Ridge, Lasso, GroupLasso, Smooth)}


def get_regularizer(regularizer: str | Regularizer) -> Regularizer:
    """A regularizer instance from its NeMoS name or an instance."""
    if isinstance(regularizer, Regularizer):
        return regularizer
    try:
        return REGULARIZERS[regularizer]()
    except KeyError:
        from .errors import InputError

        raise InputError(
            f"unknown regularizer {regularizer!r}; choose one of {sorted(REGULARIZERS)}"
        ) from None
