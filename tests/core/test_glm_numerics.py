"""The dense pytree GLM against independent float64 references (sklearn, scipy, numpy FISTA)."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import poisson
from sklearn.linear_model import PoissonRegressor

from glm_core.errors import InputError
from glm_core.glm import GLM
from tests.core import references


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    n = 4000
    X = {"a": rng.normal(size=(n, 3)) * 0.5, "b": rng.normal(size=(n, 2)) * 0.5}
    eta = X["a"] @ [0.6, -0.4, 0.0] + X["b"] @ [0.05, 0.3] - 0.7
    return X, rng.poisson(np.exp(eta)).astype(float)


def stacked(X):
    return np.hstack([X["a"], X["b"]])


def smooth_objective(Xm, y, penalty_grad=None):
    """Float64 mean Poisson loss on [w, b] with its gradient."""

    def f(theta):
        eta = Xm @ theta[:-1] + theta[-1]
        mu = np.exp(eta)
        g = np.append(Xm.T @ (mu - y), np.sum(mu - y)) / y.size
        return np.mean(mu - y * eta), g

    return f


def flat(model):
    return np.concatenate([np.asarray(model.coef_["a"]), np.asarray(model.coef_["b"])])


def test_ridge_matches_sklearn(data):
    X, y = data
    for alpha in (1e-3, 0.1, 1.0):
        ours = GLM("Ridge", alpha).fit(X, y)
        ref = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10_000).fit(stacked(X), y)
        assert ours.fit_.converged
        np.testing.assert_allclose(flat(ours), ref.coef_, atol=2e-5)
        np.testing.assert_allclose(ours.intercept_[0], ref.intercept_, atol=2e-5)


def test_unregularized_matches_float64_newton(data):
    X, y = data
    Xm = stacked(X)
    ref = minimize(smooth_objective(Xm, y), np.zeros(6), jac=True, method="BFGS",
                   options={"gtol": 1e-12, "maxiter": 10_000}).x
    ours = GLM("UnRegularized").fit(X, y)
    assert ours.fit_.converged
    np.testing.assert_allclose(flat(ours), ref[:-1], atol=2e-5)
    np.testing.assert_allclose(ours.intercept_[0], ref[-1], atol=2e-5)


def test_lasso_matches_split_variable_reference(data):
    """Lasso as a smooth bound-constrained problem: w = u - v, u, v >= 0."""
    X, y = data
    Xm = stacked(X)
    s = 0.02
    loss = smooth_objective(Xm, y)

    def f(z):
        u, v, b = z[:5], z[5:10], z[10]
        val, g = loss(np.append(u - v, b))
        return val + s * np.sum(u + v), np.concatenate([g[:5] + s, -g[:5] + s, g[5:]])

    bounds = [(0, None)] * 10 + [(None, None)]
    z = minimize(f, np.zeros(11), jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000}).x
    ours = GLM("Lasso", s).fit(X, y)
    assert ours.fit_.converged
    np.testing.assert_allclose(flat(ours), z[:5] - z[5:10], atol=5e-5)
    assert np.count_nonzero(flat(ours) == 0) >= 1  # the null coefficient is exactly zero


def fista_group_lasso(Xm, y, groups, weights, iters=20_000):
    """Float64 numpy FISTA reference for the group lasso with an unpenalised intercept."""
    A = np.hstack([Xm, np.ones((y.size, 1))])
    step = y.size / (np.linalg.norm(A, 2) ** 2 * np.exp(1.5))
    theta = z = np.zeros(A.shape[1])
    t = 1.0
    for _ in range(iters):
        g = A.T @ (np.exp(A @ z) - y) / y.size
        new = z - step * g
        for (a, b), w in zip(groups, weights):
            norm = np.linalg.norm(new[a:b])
            new[a:b] *= max(0.0, 1 - step * w / norm) if norm > 0 else 0.0
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = new + (t - 1) / t_new * (new - theta)
        theta, t = new, t_new
    return theta


def test_group_lasso_matches_fista(data):
    X, y = data
    strengths = {"a": 0.01, "b": 0.05}
    ours = GLM("GroupLasso", strengths).fit(X, y)
    weights = [0.01 * np.sqrt(3), 0.05 * np.sqrt(2)]
    ref = fista_group_lasso(stacked(X), y, [(0, 3), (3, 5)], weights)
    assert ours.fit_.converged
    np.testing.assert_allclose(flat(ours), ref[:-1], atol=5e-5)
    np.testing.assert_allclose(ours.intercept_[0], ref[-1], atol=5e-5)


def test_group_lasso_zeroes_a_whole_leaf(data):
    X, y = data
    ours = GLM("GroupLasso", {"a": 0.001, "b": 0.2}).fit(X, y)
    assert np.all(np.asarray(ours.coef_["b"]) == 0)
    assert np.all(np.asarray(ours.coef_["a"]) != 0)


def test_per_leaf_ridge_strength_matches_rescaled_sklearn(data):
    """Strength s_j on column j equals strength alpha on the column scaled by sqrt(alpha/s_j)."""
    X, y = data
    strength = {"a": 0.3, "b": np.array([0.01, 1.0])}
    per_column = np.array([0.3, 0.3, 0.3, 0.01, 1.0])
    alpha = 0.1
    scale = np.sqrt(alpha / per_column)
    ref = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10_000).fit(stacked(X) * scale, y)
    ours = GLM("Ridge", strength).fit(X, y)
    assert ours.fit_.converged
    np.testing.assert_allclose(flat(ours), ref.coef_ * scale, atol=2e-5)


@pytest.mark.parametrize("regularizer,strength", [
    ("UnRegularized", None), ("Ridge", 0.05), ("Lasso", 0.01), ("GroupLasso", 0.01)])
def test_pytree_structures_agree(data, regularizer, strength):
    X, y = data
    as_dict = GLM(regularizer, strength).fit(X, y)
    as_list = GLM(regularizer, strength).fit([X["a"], X["b"]], y)
    as_tuple = GLM(regularizer, strength).fit((X["a"], X["b"]), y)
    nested = GLM(regularizer, strength).fit({"outer": {"a": X["a"]}, "b": [X["b"]]}, y)
    assert isinstance(as_list.coef_, list) and isinstance(as_tuple.coef_, tuple)
    assert set(nested.coef_) == {"outer", "b"} and set(nested.coef_["outer"]) == {"a"}
    for a, b in [(as_list.coef_[0], as_dict.coef_["a"]), (as_list.coef_[1], as_dict.coef_["b"]),
                 (as_tuple.coef_[1], as_dict.coef_["b"]),
                 (nested.coef_["outer"]["a"], as_dict.coef_["a"]),
                 (nested.coef_["b"][0], as_dict.coef_["b"])]:
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_converges_to_tolerance(data):
    """The solver's own residual, and the same optimality residual recomputed in float64 numpy
    from the returned coefficients (so a solver that under-reports its residual fails)."""
    X, y = data
    for reg, s in [("UnRegularized", None), ("Ridge", 0.1), ("Lasso", 0.01),
                   ("GroupLasso", 0.01)]:
        model = GLM(reg, s).fit(X, y)
        assert model.fit_.converged and model.fit_.residual <= 1e-6
        outside = references.kkt_residual([X["a"], X["b"]], [model.coef_["a"], model.coef_["b"]],
                                          model.intercept_[0], y, reg, [s or 0.0] * 2)
        assert outside <= 2e-6, reg


def test_score_log_likelihood_and_pseudo_r2(data):
    X, y = data
    model = GLM("Ridge", 0.01).fit(X, y)
    rate = np.asarray(model.predict(X), float)
    ll = poisson.logpmf(y, rate).mean()
    null = poisson.logpmf(y, y.mean()).mean()
    np.testing.assert_allclose(model.score(X, y), ll, rtol=1e-5)
    np.testing.assert_allclose(model.score(X, y, "pseudo-r2-McFadden"), 1 - ll / null, rtol=1e-4)


def test_bad_inputs_raise_input_error(data):
    X, y = data
    with pytest.raises(InputError):
        GLM("Ridge", 1.0).fit({"a": X["a"][:10]}, y)
    with pytest.raises(InputError):
        GLM("Ridge", 1.0).fit(X, -y)
    with pytest.raises(InputError):
        GLM("Ridge", {"a": 1.0}).fit(X, y)
    with pytest.raises(InputError):
        GLM("Elastic")
    with pytest.raises(InputError):
        GLM("Ridge", 1.0).fit({"a": np.full((y.size, 2), np.nan)}, y)
