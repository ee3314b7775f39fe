"""A Poisson GLM with a NeMoS-like API whose design is any pytree of (T, k) arrays.

``GLM(regularizer="Ridge", regularizer_strength=0.1).fit(X, y)`` minimises

    mean_t[exp(eta_t) - y_t * eta_t] + penalty(coef),   eta = sum_leaf X_leaf @ coef_leaf + b

and returns ``coef_`` in the structure of ``X``. The intercept is never penalised. Strengths are a
scalar or a pytree matching the coefficients (per leaf a scalar, or for Ridge and Lasso an array
of the leaf's shape). GroupLasso puts one group on each leaf. The jitted solver is cached by the
design's shapes and the regularizer type, so refits with new strengths or data of the same shape
do not recompile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError
from .poisson import log_likelihood, pseudo_r2_mcfadden
from .regularizers import GroupLasso, Regularizer, get_regularizer
from .solvers import solve


@dataclass(frozen=True)
class GLMFit:
    """The result of one fit: coefficients in the design's structure plus solver diagnostics."""

    coef: Any
    intercept: jax.Array
    n_iter: int
    converged: bool
    residual: float
    objective: float


def fit_glm(X, y, regularizer="UnRegularized", strength=None, init=None, tol=1e-6, maxiter=100):
    """Fit the pytree GLM; pure apart from the jit cache."""
    reg = get_regularizer(regularizer)
    leaves, treedef = _design_leaves(X)
    y = _counts(y, leaves[0].shape[0])
    sizes = tuple(leaf.shape[1] for leaf in leaves)
    design = jnp.concatenate([*leaves, jnp.ones((y.shape[0], 1), leaves[0].dtype)], axis=1)
    weights = _flat_weights(reg, strength, treedef, sizes)
    theta0 = _flat_init(init, treedef, sizes, design.dtype)
    res = _solve_dense(design, y, theta0, weights, reg, _groups(sizes), tol, maxiter)
    coef = jax.tree_util.tree_unflatten(treedef, _split(res.theta[:-1], sizes))
    return GLMFit(
        coef=coef,
        intercept=res.theta[-1:],
        n_iter=int(res.n_iter),
        converged=bool(res.converged),
        residual=float(res.residual),
        objective=float(res.objective),
    )


class GLM:
    """NeMoS-style estimator: set ``regularizer`` and ``regularizer_strength``, then ``fit``."""

    def __init__(self, regularizer="UnRegularized", regularizer_strength=None, tol=1e-6,
                 maxiter=100):
        self.regularizer = get_regularizer(regularizer)
        self.regularizer_strength = regularizer_strength
        self.tol = tol
        self.maxiter = maxiter

    def fit(self, X, y, init_params=None):
        self.fit_ = fit_glm(X, y, self.regularizer, self.regularizer_strength, init_params,
                            self.tol, self.maxiter)
        self.coef_, self.intercept_ = self.fit_.coef, self.fit_.intercept
        return self

    def predict(self, X):
        """Expected spike count per sample."""
        leaves, treedef = _design_leaves(X)
        try:
            coefs = treedef.flatten_up_to(self.coef_)
        except (ValueError, TypeError) as err:
            raise InputError(f"X does not have the structure the model was fitted on: {err}")
        eta = sum(leaf @ c for leaf, c in zip(leaves, coefs)) + self.intercept_[0]
        return jnp.exp(eta)

    def score(self, X, y, score_type="log-likelihood"):
        """Mean log-likelihood (log y! included) or McFadden's pseudo-R2."""
        y = _counts(y, _design_leaves(X)[0][0].shape[0])
        ll = log_likelihood(y, self.predict(X))
        if score_type == "log-likelihood":
            return ll
        if score_type == "pseudo-r2-McFadden":
            return pseudo_r2_mcfadden(ll, log_likelihood(y, jnp.full_like(y, jnp.mean(y))))
        raise InputError(f"unknown score_type {score_type!r}")


@partial(jax.jit, static_argnames=("reg", "groups", "tol", "maxiter"))
def _solve_dense(design, y, theta0, weights, reg, groups, tol, maxiter):
    n = y.shape[0]

    def value(theta):
        eta = design @ theta
        return jnp.mean(jnp.exp(eta) - y * eta)

    def grad_hess(theta):
        mu = jnp.exp(design @ theta)
        return design.T @ (mu - y) / n, (design * mu[:, None]).T @ design / n

    scale = jnp.maximum(jnp.mean(y), 1e-3)
    return solve(value, grad_hess, theta0, reg, weights, groups, scale, tol, maxiter)


def _design_leaves(X):
    leaves, treedef = jax.tree_util.tree_flatten(X)
    if not leaves:
        raise InputError("the design has no predictors")
    arrays = [jnp.asarray(leaf, dtype=jnp.result_type(float)) for leaf in leaves]
    if any(a.ndim != 2 for a in arrays):
        raise InputError("every design leaf must be a 2-D (samples, features) array")
    if len({a.shape[0] for a in arrays}) != 1:
        raise InputError("design leaves have different numbers of samples")
    if not all(bool(jnp.all(jnp.isfinite(a))) for a in arrays):
        raise InputError("the design contains NaN or inf")
    return arrays, treedef


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
    if isinstance(reg, GroupLasso):
        if any(np.ndim(s) != 0 for s in per_leaf):
            raise InputError("GroupLasso takes one strength per leaf")
        return jnp.asarray([float(s) * np.sqrt(p) for s, p in zip(per_leaf, sizes)])
    try:
        coords = [jnp.broadcast_to(jnp.asarray(s, float), (p,)) for s, p in zip(per_leaf, sizes)]
    except ValueError as err:
        raise InputError(f"a strength leaf does not match its coefficient: {err}") from None
    return jnp.concatenate([*coords, jnp.zeros(1)])
