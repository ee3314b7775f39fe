"""A Poisson GLM with a NeMoS-like API whose design is any pytree of (T, k) arrays.

``GLM(regularizer="Ridge", regularizer_strength=0.1).fit(X, y)`` minimises

    mean_t[exp(eta_t) - y_t * eta_t] + penalty(coef),   eta = sum_leaf X_leaf @ coef_leaf + b

and returns ``coef_`` in the structure of ``X``. The intercept is never penalised. Strengths are a
scalar or a pytree matching the coefficients (per leaf a scalar, or for Ridge and Lasso an array
of the leaf's shape). GroupLasso puts one group on each leaf; Smooth penalises the differences
of neighbouring coefficients within each leaf (see ``regularizers.Smooth``). The jitted solver is
cached by the design's shapes and the regularizer, so refits with new strengths or data of the
same shape do not recompile.

Samples with a NaN in any leaf (the first W rows of a lagged leaf, ``basis.lagged``) are dropped
before fitting, as NeMoS does; ``GLM.n_dropped_`` (``GLMFit.n_dropped``) says how many. ``predict``
gives NaN for them and ``score`` leaves them out. Infinite entries are an error.

Every fit also returns the Laplace covariance of ``theta = [coefficients..., intercept]``: the
inverse of the Hessian of the summed penalised negative log-likelihood at the optimum, computed in
float64 from the float32 optimum. Lasso and GroupLasso: on the free coordinates only (nonzero
coefficients, the intercept), NaN elsewhere; those held at zero count as fixed. A singular Hessian
(no penalty with one-hot leaves plus an intercept: a leaf can shift against the intercept) gets the
pseudo-inverse, which still gives the right variance for identified quantities such as the log
rate of a sample (``GLM.predict_log_rate_se``), though not for single coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import pinvh

from .errors import InputError
from .poisson import log_likelihood, pseudo_r2_mcfadden
from .regularizers import GroupLasso, Regularizer, Smooth, get_regularizer, smooth_weights
from .solvers import SolverResult, solve

PINV_RTOL = 1e-12  # Hessian eigenvalues below this fraction of the largest count as zero
ROW_CHUNK = 1 << 16  # samples per float64 pass, to bound memory at large T


@dataclass(frozen=True)
class GLMFit:
    """The result of one fit: coefficients in the design's structure plus solver diagnostics."""

    coef: Any
    intercept: jax.Array
    n_iter: int
    converged: bool
    residual: float
    objective: float
    covariance: np.ndarray  # float64 Laplace covariance of [coefficients..., intercept]
    coef_se: Any  # sqrt of its diagonal, in the structure of ``coef``
    intercept_se: np.ndarray
    n_dropped: int = 0  # samples left out for a NaN in some leaf


@dataclass(frozen=True)
class DenseProblem:
    """A checked pytree design flattened to ``design = [leaves..., 1]`` (n, p + 1), the counts,
    and the regularizer's weights for given strengths. Only the n kept samples (``keep``, a (T,)
    bool mask: no NaN in any leaf) are in ``design`` and ``y``."""

    design: jax.Array
    y: jax.Array
    treedef: Any
    sizes: tuple[int, ...]
    weights: jax.Array
    keep: np.ndarray

    @property
    def n_dropped(self) -> int:
        return int(self.keep.size - np.count_nonzero(self.keep))

    @property
    def groups(self) -> tuple:
        return _groups(self.sizes)


def dense_problem(X, y, regularizer: Regularizer, strength, keep=None) -> DenseProblem:
    """Check and flatten ``X`` and ``y``, dropping the samples with a NaN in any leaf (and those
    outside ``keep``, an optional (T,) bool mask); InputError on bad input or if none is left."""
    leaves, treedef = _design_leaves(X)
    sizes = tuple(leaf.shape[1] for leaf in leaves)
    y = _counts(y, leaves[0].shape[0])
    valid = complete_samples(leaves)
    keep = valid if keep is None else valid & np.asarray(keep, bool)
    if not keep.any():
        raise InputError("every sample has a NaN in some design leaf: nothing to fit")
    design = _with_intercept(leaves, jnp)
    if not keep.all():
        design, y = design[keep], y[keep]
    return DenseProblem(
        design=design,
        y=y,
        treedef=treedef,
        sizes=sizes,
        weights=_flat_weights(regularizer, strength, treedef, sizes),
        keep=keep,
    )


def complete_samples(leaves) -> np.ndarray:
    """(T,) bool: the samples with no NaN in any of the (T, k) ``leaves``."""
    return np.logical_and.reduce([~np.any(np.isnan(np.asarray(leaf)), axis=1) for leaf in leaves])


def fit_glm(X, y, regularizer="UnRegularized", strength=None, init=None, tol=1e-6, maxiter=100):
    """Fit the pytree GLM; pure apart from the jit cache."""
    reg = get_regularizer(regularizer)
    problem = dense_problem(X, y, reg, strength)
    treedef, sizes = problem.treedef, problem.sizes
    theta0 = _flat_init(init, treedef, sizes, problem.design.dtype)
    res, free, penalty_hess = jax.device_get(_solve_dense(
        problem.design, problem.y, theta0, problem.weights, reg, problem.groups, tol, maxiter))
    covariance = laplace_covariance(np.asarray(problem.design), res.theta, free, penalty_hess)
    se = np.sqrt(np.diagonal(covariance))
    return GLMFit(
        coef=jax.tree_util.tree_unflatten(treedef, _split(jnp.asarray(res.theta[:-1]), sizes)),
        intercept=jnp.asarray(res.theta[-1:]),
        n_iter=int(res.n_iter),
        converged=bool(res.converged),
        residual=float(res.residual),
        objective=float(res.objective),
        covariance=covariance,
        coef_se=jax.tree_util.tree_unflatten(treedef, _split(se[:-1], sizes)),
        intercept_se=se[-1:],
        n_dropped=problem.n_dropped,
    )


def laplace_covariance(design, theta, free, penalty_hess) -> np.ndarray:
    """Inverse (pseudo-inverse if singular) of the summed penalised negative log-likelihood's
    Hessian, sum_t x_t x_t' exp(x_t' theta) + n * penalty_hess, on the ``free`` coordinates; NaN
    rows and columns elsewhere (everywhere if the Hessian is not finite). Float64 throughout."""
    theta = np.asarray(theta, np.float64)
    hess = design.shape[0] * np.asarray(penalty_hess, np.float64)
    for rows in float64_chunks(design):
        root = rows * np.exp(0.5 * (rows @ theta))[:, None]
        hess += root.T @ root  # A'A: numpy takes the symmetric (syrk) path
    free = np.asarray(free, bool)
    covariance = np.full_like(hess, np.nan)
    block = hess[np.ix_(free, free)]
    if np.all(np.isfinite(block)):  # else the fit diverged: no covariance
        covariance[np.ix_(free, free)] = pinvh(block, atol=0.0, rtol=PINV_RTOL)
    return covariance


class GLM:
    """NeMoS-style estimator: set ``regularizer`` and ``regularizer_strength``, then ``fit``."""

    def __init__(self, regularizer="UnRegularized", regularizer_strength=None, tol=1e-6,
                 maxiter=100):
        self.regularizer = get_regularizer(regularizer)
        self.regularizer_strength = regularizer_strength
        self.tol = tol
        self.maxiter = maxiter

    def fit(self, X, y, init_params=None):
        """Fit; sets ``coef_``, ``intercept_`` and their Laplace standard errors ``coef_se_`` (same
        structure; NaN for coefficients Lasso/GroupLasso hold at zero) and ``intercept_se_``, and
        ``n_dropped_``: the samples left out for a NaN in some leaf."""
        self.fit_ = fit_glm(X, y, self.regularizer, self.regularizer_strength, init_params,
                            self.tol, self.maxiter)
        self.coef_, self.intercept_ = self.fit_.coef, self.fit_.intercept
        self.n_dropped_ = self.fit_.n_dropped
        self.coef_se_, self.intercept_se_ = self.fit_.coef_se, self.fit_.intercept_se
        return self

    def predict(self, X):
        """Expected spike count per sample (NaN where a leaf has a NaN)."""
        leaves, coefs = self._leaves_and_coefs(X)
        eta = sum(leaf @ c for leaf, c in zip(leaves, coefs)) + self.intercept_[0]
        return jnp.exp(eta)

    def predict_log_rate_se(self, X) -> np.ndarray:
        """Laplace standard error of each sample's log rate eta (float64): identified even where
        single coefficients trade off with the intercept. Coefficients held at zero by
        Lasso/GroupLasso count as fixed."""
        leaves, _ = self._leaves_and_coefs(X)
        covariance = np.nan_to_num(self.fit_.covariance)
        variance = np.concatenate([np.sum((rows @ covariance) * rows, axis=1)
                                   for rows in float64_chunks(_with_intercept(leaves, np))])
        return np.sqrt(np.maximum(variance, 0.0))

    def _leaves_and_coefs(self, X):
        leaves, treedef = _design_leaves(X)
        try:
            coefs = treedef.flatten_up_to(self.coef_)
        except (ValueError, TypeError) as err:
            raise InputError(f"X does not have the structure the model was fitted on: {err}")
        if any(leaf.shape[1] != np.size(c) for leaf, c in zip(leaves, coefs)):
            raise InputError("X's leaves do not have the widths the model was fitted on")
        return leaves, coefs

    def score(self, X, y, score_type="log-likelihood"):
        """Mean log-likelihood (log y! included) or McFadden's pseudo-R2, over the samples with
        no NaN in any leaf."""
        leaves, _ = _design_leaves(X)
        keep = complete_samples(leaves)
        if not keep.any():
            raise InputError("every sample has a NaN in some design leaf: nothing to score")
        y = _counts(y, leaves[0].shape[0])[keep]
        ll = log_likelihood(y, self.predict(X)[keep])
        if score_type == "log-likelihood":
            return ll
        if score_type == "pseudo-r2-McFadden":
            return pseudo_r2_mcfadden(ll, log_likelihood(y, jnp.full_like(y, jnp.mean(y))))
        raise InputError(f"unknown score_type {score_type!r}")


@partial(jax.jit, static_argnames=("reg", "groups", "tol", "maxiter"))
def _solve_dense(design, y, theta0, weights, reg, groups, tol, maxiter):
    """The fit, plus the penalty's free coordinates and Hessian at the optimum."""
    res = solve_weighted(design, y, jnp.ones_like(y), theta0, weights, reg, groups, tol, maxiter)
    return res, *reg.curvature(res.theta, weights, groups)


def solve_weighted(design, y, sample_weight, theta0, weights, reg: Regularizer, groups, tol,
                   maxiter) -> SolverResult:
    """Minimise sum_t w_t [exp(eta_t) - y_t eta_t] / sum_t w_t + penalty: NeMoS's objective on the
    samples with weight 1 when the weights are 0/1 (cross-validation folds). Traceable."""
    total = jnp.sum(sample_weight)

    def value_grad_hess(theta):
        eta = design @ theta
        mu = sample_weight * jnp.exp(eta)
        # X' diag(mu) X as A'A, A = diag(sqrt(mu)) X: half the work, and a plain batched
        # matrix product under vmap (the diag(mu) X form is ~6x slower there on CPU).
        root = design * jnp.sqrt(mu)[:, None]
        return (jnp.sum(mu - sample_weight * y * eta) / total,
                (mu - sample_weight * y) @ design / total, root.T @ root / total)

    scale = jnp.maximum(jnp.sum(sample_weight * y) / total, 1e-3)
    return solve(value_grad_hess, theta0, reg, weights, groups, scale, tol, maxiter)


def _design_leaves(X):
    leaves, treedef = jax.tree_util.tree_flatten(X)
    if not leaves:
        raise InputError("the design has no predictors")
    arrays = [jnp.asarray(leaf, dtype=jnp.result_type(float)) for leaf in leaves]
    if any(a.ndim != 2 for a in arrays):
        raise InputError("every design leaf must be a 2-D (samples, features) array")
    if len({a.shape[0] for a in arrays}) != 1:
        raise InputError("design leaves have different numbers of samples")
    if any(bool(jnp.any(jnp.isinf(a))) for a in arrays):
        raise InputError("the design contains inf")
    return arrays, treedef


def _with_intercept(leaves, xp):
    """The flat design ``[leaves..., 1]`` with numpy or jax.numpy ``xp``."""
    leaves = [xp.asarray(leaf) for leaf in leaves]
    return xp.concatenate([*leaves, xp.ones((leaves[0].shape[0], 1), leaves[0].dtype)], axis=1)


def float64_chunks(design):
    """Consecutive blocks of ``ROW_CHUNK`` rows of a numpy ``design``, as float64."""
    for start in range(0, design.shape[0], ROW_CHUNK):
        yield np.asarray(design[start:start + ROW_CHUNK], np.float64)


def _counts(y, n_samples):
    y = jnp.asarray(y, dtype=jnp.result_type(float))
    if y.shape != (n_samples,):
        raise InputError(f"y must have shape ({n_samples},), got {tuple(y.shape)}")
    if not bool(jnp.all(jnp.isfinite(y) & (y >= 0))):
        raise InputError("spike counts must be finite and non-negative")
    return y


def _groups(sizes):
    stops = np.cumsum(sizes)
    return tuple((int(b - s), int(b)) for s, b in zip(sizes, stops))


def _split(vector, sizes):
    return [vector[a:b] for a, b in _groups(sizes)]


def _flat_init(init, treedef, sizes, dtype):
    if init is None:
        return jnp.zeros(sum(sizes) + 1, dtype)
    coef, intercept = init
    leaves = treedef.flatten_up_to(coef)
    return jnp.concatenate([*(jnp.ravel(c) for c in leaves), jnp.ravel(intercept)]).astype(dtype)


def _flat_weights(reg: Regularizer, strength, treedef, sizes):
    """Per-coordinate strengths (zero on the intercept), or per-group ones times sqrt(size)."""
    if strength is None:
        strength = 0.0 if reg.name == "UnRegularized" else 1.0
    if np.ndim(strength) == 0 and not isinstance(strength, (dict, list, tuple)):
        per_leaf = [strength] * len(sizes)
    else:
        try:
            per_leaf = treedef.flatten_up_to(strength)
        except (ValueError, TypeError) as err:
            raise InputError(f"regularizer_strength does not match the coefficients: {err}")
    if isinstance(reg, GroupLasso | Smooth):
        if any(np.ndim(s) != 0 for s in per_leaf):
            raise InputError(f"{reg.name} takes one strength per leaf")
    if isinstance(reg, GroupLasso):
        return jnp.asarray([float(s) * np.sqrt(p) for s, p in zip(per_leaf, sizes)])
    if isinstance(reg, Smooth):
        circular = _circular_leaves(reg, treedef)
        grids = _grid_leaves(reg, treedef, sizes)
        return jnp.asarray(smooth_weights(per_leaf, sizes, circular, grids),
                           jnp.result_type(float))
    try:
        coords = [jnp.broadcast_to(jnp.asarray(s, float), (p,)) for s, p in zip(per_leaf, sizes)]
    except ValueError as err:
        raise InputError(f"a strength leaf does not match its coefficient: {err}") from None
    return jnp.concatenate([*coords, jnp.zeros(1)])


def leaf_names(treedef) -> list:
    """Each leaf's key in a flat dict design, else ``jax.tree_util.keystr`` of its path."""
    template = jax.tree_util.tree_unflatten(treedef, [0] * treedef.num_leaves)
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(template)[0]]
    return [path[0].key if len(path) == 1 and isinstance(path[0], jax.tree_util.DictKey)
            else jax.tree_util.keystr(path) for path in paths]


def _circular_leaves(reg: Smooth, treedef) -> list[bool]:
    names = leaf_names(treedef)
    unknown = reg.circular - set(names)
    if unknown:
        raise InputError(f"Smooth(circular=...) names {sorted(map(str, unknown))}, which are not "
                         f"leaves of the design; its leaves are {list(map(str, names))}")
    return [name in reg.circular for name in names]


def _grid_leaves(reg: Smooth, treedef, sizes) -> list:
    """Per leaf, the (nx, ny) shape that ``reg.grids`` gives it, or None."""
    names = leaf_names(treedef)
    grids = dict(reg.grids)
    unknown = set(grids) - set(names)
    if unknown:
        raise InputError(f"Smooth(grids=...) names {sorted(map(str, unknown))}, which are not "
                         f"leaves of the design; its leaves are {list(map(str, names))}")
    for name, size in zip(names, sizes):
        if name in grids and (name in reg.circular or grids[name][0] * grids[name][1] != size
                              or min(grids[name]) < 1):
            raise InputError(f"Smooth(grids=...) gives {name!r} the shape {grids[name]}: a 2-D "
                             f"leaf needs nx * ny = its {size} columns and is not circular")
    return [grids.get(name) for name in names]
