"""The explorer's bin-grid fit against independent float64 references on the same one-hot design:
sklearn's PoissonRegressor (Ridge), scipy optima (Lasso), the closed-form maximum likelihood (one
variable, no penalty), and for every regularizer the KKT residual, log-likelihood and pseudo-R2
recomputed with numpy/scipy from the returned coefficients.

The design is built from ``np.histogram`` bins, not from the explorer's encoding.
"""

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import PoissonRegressor

from glm_core import explorer
from glm_core._packed_newton import COMPACT
from glm_core.simulation import simulate_session
from tests.core import references as ref

N_BINS = [24, 8, 12]
KKT_TOL = 2e-6  # the solver stops below 1e-6 (float32); float64 recomputation adds round-off


@pytest.fixture(scope="module")
def problem():
    session = simulate_session(20_000, seed=3)
    valid = session.valid
    designs = [ref.one_hot(ref.histogram_bins(v.values[valid], n, v.circular)[0], n)
               for v, n in zip(session.variables, N_BINS)]
    y = session.unit_counts(0)[valid].astype(float)
    return session, explorer.encode(session, 0, N_BINS), designs, y


def coefficients(session, fit):
    coef = fit.coef(session.names, N_BINS)
    return [np.asarray(coef[name], float) for name in session.names]


def check_fit(fit, designs, coefs, y, regularizer, strengths):
    """Converged, optimal by an outside KKT check, and scored as scipy scores it."""
    assert fit.converged
    assert ref.kkt_residual(designs, coefs, fit.intercept, y, regularizer, strengths) < KKT_TOL
    rate = np.exp(ref.log_rate(designs, coefs, fit.intercept))
    np.testing.assert_allclose(fit.log_likelihood, ref.mean_log_likelihood(y, rate), rtol=1e-5)
    np.testing.assert_allclose(fit.pseudo_r2, ref.pseudo_r2(y, rate), rtol=1e-5)


def rebinned(problem, position_bins):
    """The explorer's encoding and the reference designs with position in ``position_bins``."""
    session, enc, designs, y = problem
    position = session.variables[0].values[session.valid]
    design = ref.one_hot(ref.histogram_bins(position, position_bins)[0], position_bins)
    return explorer.with_bins(enc, session, 0, position_bins), [design, *designs[1:]]


# 24 + 8 + 12 coefficients and the intercept fit the packed Newton system; 60 + 8 + 12 do not
PACKED_AND_FULL = pytest.mark.parametrize("position_bins", [24, 60])


@PACKED_AND_FULL
def test_ridge_matches_sklearn(problem, position_bins):
    """Per-variable strengths s_v: sklearn with alpha on columns scaled by sqrt(alpha / s_v)."""
    session, _, _, y = problem
    enc, designs = rebinned(problem, position_bins)
    n_bins = [position_bins, *N_BINS[1:]]
    assert (sum(n_bins) + 1 <= COMPACT) == (position_bins == 24)
    strengths = [1e-3, 1e-2, 3e-3]
    fit = explorer.fit(enc, [True] * 3, strengths, "Ridge")
    alpha = 1e-3
    scale = np.concatenate([np.full(n, np.sqrt(alpha / s)) for n, s in zip(n_bins, strengths)])
    sk = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(
        np.hstack(designs) * scale, y)
    coefs = [np.asarray(c, float) for c in fit.coef(session.names, n_bins).values()]
    np.testing.assert_allclose(np.concatenate(coefs), sk.coef_ * scale, atol=2e-5)
    np.testing.assert_allclose(fit.intercept, sk.intercept_, atol=2e-5)
    check_fit(fit, designs, coefs, y, "Ridge", strengths)


@PACKED_AND_FULL
def test_ridge_bands_are_the_float64_laplace_delta_method(problem, position_bins):
    """curve_se per bin: the float64 inverse of the summed penalised Hessian of the one-hot
    design, carried to log(curve) = b + w_v[k] + log G_v (G_v the others' mean effect)."""
    session, _, _, y = problem
    enc, designs = rebinned(problem, position_bins)
    n_bins = [position_bins, *N_BINS[1:]]
    strengths = [1e-3, 1e-2, 3e-3]
    fit = explorer.fit(enc, [True] * 3, strengths, "Ridge")
    coefs = [np.asarray(c, float) for c in fit.coef(session.names, n_bins).values()]
    A = np.hstack([*designs, np.ones((y.size, 1))])
    mu = np.exp(ref.log_rate(designs, coefs, fit.intercept))
    penalty = np.concatenate([np.full(n, s) for n, s in zip(n_bins, strengths)] + [[0.0]])
    cov = np.linalg.inv((A * mu[:, None]).T @ A + y.size * np.diag(penalty))
    stops = np.cumsum([0, *n_bins])
    for v, n in enumerate(n_bins):
        others = np.exp(sum(X @ c for u, (X, c) in enumerate(zip(designs, coefs)) if u != v))
        jac = np.zeros((n, A.shape[1]))
        jac[:, -1] = 1.0
        for u, X in enumerate(designs):
            jac[:, stops[u]:stops[u + 1]] = np.eye(n) if u == v else (others @ X) / others.sum()
        se = np.sqrt(np.einsum("si,ij,sj->s", jac, cov, jac))
        shown = fit.shown[v, :n]
        assert shown.sum() >= n - 1
        np.testing.assert_allclose(fit.curve_se[v, :n][shown], se[shown], rtol=2e-3)


def test_lasso_matches_scipy(problem):
    """Lasso as a smooth bound-constrained problem (w = u - v, u, v >= 0). Along a one-hot leaf
    shifted against the intercept the optimum can be a segment, so predictions and the objective
    are compared, not coefficients."""
    session, enc, designs, y = problem
    strengths = [1e-3, 5e-3, 1e-3]
    fit = explorer.fit(enc, [True] * 3, strengths, "Lasso")
    X = np.hstack(designs)
    s = np.concatenate([np.full(n, st) for n, st in zip(N_BINS, strengths)])
    p = X.shape[1]

    def f(z):
        w, b = z[:p] - z[p:2 * p], z[-1]
        eta = X @ w + b
        mu = np.exp(eta)
        g = np.append(X.T @ (mu - y), np.sum(mu - y)) / y.size
        value = np.mean(mu - y * eta) + s @ (z[:p] + z[p:2 * p])
        return value, np.concatenate([g[:p] + s, -g[:p] + s, g[p:]])

    z = minimize(f, np.zeros(2 * p + 1), jac=True, method="L-BFGS-B",
                 bounds=[(0, None)] * (2 * p) + [(None, None)],
                 options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20_000}).x
    coefs = coefficients(session, fit)
    ours = ref.objective(designs, coefs, fit.intercept, y, "Lasso", strengths)
    assert ours <= f(z)[0] + 1e-9
    np.testing.assert_allclose(ref.log_rate(designs, coefs, fit.intercept),
                               X @ (z[:p] - z[p:2 * p]) + z[-1], atol=2e-3)
    check_fit(fit, designs, coefs, y, "Lasso", strengths)


@pytest.mark.parametrize("strengths", [[1e-3, 2e-2, 1e-3], [1e-4, 1e-4, 1e-4]])
def test_group_lasso_is_optimal(problem, strengths):
    """The larger strengths zero the speed leaf (it has no effect in the simulation); optimality
    is certified by the float64 KKT residual, which covers the zero group's condition too."""
    session, enc, designs, y = problem
    fit = explorer.fit(enc, [True] * 3, strengths, "GroupLasso")
    coefs = coefficients(session, fit)
    check_fit(fit, designs, coefs, y, "GroupLasso", strengths)


def test_unregularized_single_variable_is_the_empirical_rate(problem):
    """Without a penalty, one one-hot variable's maximum-likelihood rate in each bin is that bin's
    spikes divided by its samples, in closed form."""
    session, enc, designs, y = problem
    fit = explorer.fit(enc, [False, False, True], [0.0] * 3, "UnRegularized")
    hd = designs[2]
    rate = np.exp(fit.intercept + fit.weights[2, : N_BINS[2]])
    np.testing.assert_allclose(rate, (hd.T @ y) / hd.sum(0), rtol=1e-4)
    check_fit(fit, designs[2:], [np.asarray(fit.weights[2, : N_BINS[2]], float)], y,
              "UnRegularized", [0.0])
    assert np.all(fit.weights[:2] == 0)  # excluded variables are out of the model


def test_excluded_variable_and_rebinning_are_optimal(problem):
    """After re-binning position to 40 bins with speed excluded, the fit is the float64 optimum
    of the design made of the included variables only."""
    session, enc, designs, y = problem
    enc = explorer.with_bins(enc, session, 0, 40)
    strengths = [1e-3, 1e-3, 1e-3]
    fit = explorer.fit(enc, [True, False, True], strengths, "Ridge")
    position = session.variables[0].values[session.valid]
    included = [ref.one_hot(ref.histogram_bins(position, 40)[0], 40), designs[2]]
    coefs = [fit.weights[0, :40], fit.weights[2, : N_BINS[2]]]
    check_fit(fit, included, coefs, y, "Ridge", [1e-3, 1e-3])


def test_a_weak_lasso_stops_at_its_optimum_in_few_iterations():
    """At the slider's left end, Lasso leaves a leaf almost free to shift against the intercept,
    a direction float32 cannot resolve to the usual 1e-6: the solver stops once the objective no
    longer falls, converged by the outside KKT check to 1e-4 of the mean count, in a few
    iterations (it used to run all 100 of them, each up to 500 inner sweeps, and fail)."""
    session, n_bins = simulate_session(10_000, seed=0), [20, 20, 16]
    valid = session.valid
    designs = [ref.one_hot(ref.histogram_bins(v.values[valid], n, v.circular)[0], n)
               for v, n in zip(session.variables, n_bins)]
    y = session.unit_counts(0)[valid].astype(float)
    strengths = [1e-6, 1e-3, 1e-3]
    fit = explorer.fit(explorer.encode(session, 0, n_bins), [True] * 3, strengths, "Lasso")
    assert fit.converged and fit.n_iter < 50
    coef = fit.coef(session.names, n_bins)
    coefs = [np.asarray(coef[name], float) for name in session.names]
    assert ref.kkt_residual(designs, coefs, fit.intercept, y, "Lasso", strengths) < 1e-4
