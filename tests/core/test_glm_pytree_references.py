"""The dense pytree GLM on a dict design whose keys are inserted out of sorted order
(``{"z": ..., "a": ...}``) with dict strengths, against float64 references (sklearn, scipy,
NeMoS). Coefficients are compared key by key, intercepts too, every fit must report
convergence, and its optimality is checked from outside by the float64 KKT residual."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import PoissonRegressor

from glm_core.glm import GLM
from tests.core import references as ref

KEYS = ("z", "a")  # insertion order; jax flattens dicts in sorted order
KKT_TOL = 2e-6


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 3000
    X = {"z": rng.normal(size=(n, 4)) * 0.4, "a": rng.normal(size=(n, 2)) * 0.4}
    eta = X["z"] @ [0.8, -0.5, 0.2, 0.0] + X["a"] @ [0.3, -0.2] - 0.8
    return X, rng.poisson(np.exp(eta)).astype(float)


def fitted(X, y, regularizer, strengths):
    """Our fit, checked for convergence and for optimality from outside."""
    model = GLM(regularizer, strengths).fit(X, y)
    assert set(model.coef_) == set(KEYS)
    coefs = [np.asarray(model.coef_[k], float) for k in KEYS]
    assert model.fit_.converged
    per_key = None if strengths is None else [strengths[k] for k in KEYS]
    designs = [X[k] for k in KEYS]
    assert ref.kkt_residual(designs, coefs, model.intercept_[0], y, regularizer,
                            per_key) < KKT_TOL
    return dict(zip(KEYS, coefs)), float(model.intercept_[0])


def test_ridge_matches_sklearn(data):
    """Strength s_k on leaf k: sklearn with alpha on its columns scaled by sqrt(alpha / s_k)."""
    X, y = data
    strengths = {"z": 0.3, "a": 0.01}
    coef, intercept = fitted(X, y, "Ridge", strengths)
    alpha = 0.1
    scale = {k: np.sqrt(alpha / strengths[k]) for k in KEYS}
    sk = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(
        np.hstack([X[k] * scale[k] for k in KEYS]), y)
    np.testing.assert_allclose(coef["z"], sk.coef_[:4] * scale["z"], atol=2e-5)
    np.testing.assert_allclose(coef["a"], sk.coef_[4:] * scale["a"], atol=2e-5)
    np.testing.assert_allclose(intercept, sk.intercept_, atol=2e-5)


def test_unregularized_matches_scipy(data):
    X, y = data
    A = np.hstack([X[k] for k in KEYS] + [np.ones((y.size, 1))])

    def f(theta):
        eta = A @ theta
        mu = np.exp(eta)
        return np.mean(mu - y * eta), A.T @ (mu - y) / y.size, (A * mu[:, None]).T @ A / y.size

    theta = minimize(lambda t: f(t)[:2], np.zeros(7), jac=True, hess=lambda t: f(t)[2],
                     method="trust-exact", options={"gtol": 1e-12}).x
    coef, intercept = fitted(X, y, "UnRegularized", None)
    np.testing.assert_allclose(coef["z"], theta[:4], atol=2e-5)
    np.testing.assert_allclose(coef["a"], theta[4:6], atol=2e-5)
    np.testing.assert_allclose(intercept, theta[6], atol=2e-5)


def test_lasso_matches_scipy(data):
    """Lasso as a smooth bound-constrained problem: w = u - v, u, v >= 0."""
    X, y = data
    strengths = {"z": 0.01, "a": 0.03}
    A = np.hstack([X[k] for k in KEYS])
    s = np.repeat([strengths[k] for k in KEYS], [X[k].shape[1] for k in KEYS])

    def f(z):
        w, b = z[:6] - z[6:12], z[12]
        eta = A @ w + b
        mu = np.exp(eta)
        g = A.T @ (mu - y) / y.size
        value = np.mean(mu - y * eta) + s @ (z[:6] + z[6:12])
        return value, np.concatenate([g + s, -g + s, [np.mean(mu - y)]])

    z = minimize(f, np.zeros(13), jac=True, method="L-BFGS-B",
                 bounds=[(0, None)] * 12 + [(None, None)],
                 options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000}).x
    coef, intercept = fitted(X, y, "Lasso", strengths)
    w = z[:6] - z[6:12]
    np.testing.assert_allclose(coef["z"], w[:4], atol=5e-5)
    np.testing.assert_allclose(coef["a"], w[4:], atol=5e-5)
    np.testing.assert_allclose(intercept, z[12], atol=5e-5)
    assert coef["z"][3] == 0  # the null coefficient is exactly zero


def test_group_lasso_matches_nemos(data):
    """NeMoS groups a FeaturePytree by leaf, with per-group strengths in sorted-key order. It
    stops loosely, so the tolerance comes from its own optimality residual: for an objective
    that is mu-strongly convex, a point whose subgradient has norm r lies within r / mu of the
    optimum."""
    nmo = pytest.importorskip("nemos")
    X, y = data
    strengths = {"z": 0.005, "a": 0.05}  # strong enough to zero "a", not "z"
    coef, intercept = fitted(X, y, "GroupLasso", strengths)
    assert np.all(coef["a"] == 0) and np.all(coef["z"] != 0)

    model = nmo.glm.GLM(regularizer="GroupLasso",
                        regularizer_strength=np.array([strengths[k] for k in sorted(KEYS)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(nmo.pytrees.FeaturePytree(**X), y)
    theirs = [np.asarray(model.coef_[k], float) for k in KEYS]
    their_intercept = float(np.ravel(model.intercept_)[0])
    designs = [X[k] for k in KEYS]
    r = ref.kkt_residual(designs, theirs, their_intercept, y, "GroupLasso",
                         [strengths[k] for k in KEYS]) * y.mean() * np.sqrt(7)
    A = np.hstack(designs + [np.ones((y.size, 1))])
    mu = np.exp(ref.log_rate(designs, theirs, their_intercept))
    convexity = np.linalg.eigvalsh((A * mu[:, None]).T @ A / y.size)[0]
    tol = r / convexity + 1e-5  # plus our own float32 stopping
    np.testing.assert_allclose(coef["z"], theirs[0], atol=tol)
    np.testing.assert_allclose(coef["a"], theirs[1], atol=tol)
    np.testing.assert_allclose(intercept, their_intercept, atol=tol)
    assert ref.objective(designs, [coef[k] for k in KEYS], intercept, y, "GroupLasso",
                         [strengths[k] for k in KEYS]) <= ref.objective(
        designs, theirs, their_intercept, y, "GroupLasso", [strengths[k] for k in KEYS]) + 1e-9
