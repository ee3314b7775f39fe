"""B-spline bases against NeMoS 0.2.8, and the pytree GLM on B-spline leaves against float64
references (sklearn for Ridge, scipy for Smooth)."""

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import PoissonRegressor

from glm_core.basis import bspline, cyclic_bspline
from glm_core.errors import InputError
from glm_core.glm import GLM
from glm_core.regularizers import Smooth

nmo = pytest.importorskip("nemos")

BOUNDS = (-2.0, 3.0)
SHAPES = [(4, 4), (8, 4), (10, 3), (12, 2), (20, 4), (7, 5)]


def nemos_design(cls, x, n_basis, order, bounds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        basis = cls(n_basis, order=order, bounds=bounds)
        return np.asarray(basis.compute_features(x), float)


@pytest.mark.parametrize("n_basis,order", SHAPES + [(6, 1)])
def test_bspline_equals_nemos(n_basis, order):
    """Same knots (clamped, equally spaced, NeMoS's ulp above the upper bound), same columns,
    the bounds themselves included; NaN outside the bounds, as NeMoS."""
    rng = np.random.default_rng(n_basis * 10 + order)
    x = np.concatenate([np.linspace(*BOUNDS, 501), rng.uniform(*BOUNDS, 500), [-2.5, 3.5]])
    ours = bspline(x, n_basis, BOUNDS, order)
    theirs = nemos_design(nmo.basis.BSplineEval, x, n_basis, order, BOUNDS)
    assert ours.shape == (x.size, n_basis)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.isnan(ours[-2:]).all() and not np.isnan(ours[:-2]).any()
    np.testing.assert_allclose(ours[:-2].sum(1), 1.0, atol=1e-12)  # partition of unity


@pytest.mark.parametrize("n_basis,order", SHAPES)
def test_cyclic_bspline_equals_nemos_and_wraps(n_basis, order):
    rng = np.random.default_rng(n_basis * 10 + order)
    x = np.concatenate([np.linspace(*BOUNDS, 501), rng.uniform(*BOUNDS, 500)])
    ours = cyclic_bspline(x, n_basis, BOUNDS, order)
    theirs = nemos_design(nmo.basis.CyclicBSplineEval, x, n_basis, order, BOUNDS)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # periodic: a whole period further is the same sample; the two bounds are one point
    period = BOUNDS[1] - BOUNDS[0]
    np.testing.assert_allclose(cyclic_bspline(x + 2 * period, n_basis, BOUNDS, order), ours,
                               atol=1e-9)
    np.testing.assert_allclose(ours[0], ours[500], atol=1e-9)


def test_non_finite_samples_give_nan_rows():
    x = np.array([0.0, np.nan, np.inf, 1.0])
    for design in (bspline(x, 6, BOUNDS), cyclic_bspline(x, 6, BOUNDS)):
        np.testing.assert_array_equal(np.isnan(design).all(1), [False, True, True, False])


@pytest.mark.parametrize("call,match", [
    (lambda: bspline([0.0], 3, BOUNDS, 4), "too few for order 4"),
    (lambda: cyclic_bspline([0.0], 6, BOUNDS, 1), "order must be at least 2"),
    (lambda: bspline([0.0], 6, (1.0, 1.0)), "lo < hi"),
    (lambda: cyclic_bspline([0.0], 6, (0.0, np.inf)), "finite"),
])
def test_bad_basis_settings_raise_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


@pytest.fixture(scope="module")
def spline_data():
    """A place field and a head-direction tuning, expanded in B-spline leaves."""
    rng = np.random.default_rng(5)
    n = 4000
    x = rng.uniform(0.0, 1.0, n)
    angle = rng.uniform(-np.pi, np.pi, n)
    eta = -0.5 - (x - 0.6) ** 2 / 0.05 + 0.8 * np.cos(angle - 1.0)
    y = rng.poisson(np.exp(eta)).astype(float)
    X = {"x": bspline(x, 8, (0.0, 1.0)), "angle": cyclic_bspline(angle, 6, (-np.pi, np.pi))}
    return X, y


def test_glm_on_spline_leaves_matches_sklearn_ridge(spline_data):
    """Ridge with per-leaf strengths: sklearn with one alpha on columns scaled by
    sqrt(alpha / s_leaf)."""
    X, y = spline_data
    strengths = {"x": 1e-3, "angle": 1e-2}
    model = GLM("Ridge", strengths).fit(X, y)
    assert model.fit_.converged
    alpha = 1e-2
    scale = {k: np.sqrt(alpha / s) for k, s in strengths.items()}
    keys = ("x", "angle")
    sk = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(
        np.hstack([X[k] * scale[k] for k in keys]), y)
    np.testing.assert_allclose(model.coef_["x"], sk.coef_[:8] * scale["x"], atol=2e-5)
    np.testing.assert_allclose(model.coef_["angle"], sk.coef_[8:] * scale["angle"], atol=2e-5)
    np.testing.assert_allclose(model.intercept_[0], sk.intercept_, atol=2e-5)


def test_glm_on_spline_leaves_matches_scipy_smooth(spline_data):
    """Smooth on spline coefficients (differences of neighbouring coefficients, wrapped for the
    cyclic leaf) against Newton on the float64 objective written out here."""
    X, y = spline_data
    strengths = {"x": 3e-2, "angle": 1e-1}
    model = GLM(Smooth(circular={"angle"}), strengths).fit(X, y)
    assert model.fit_.converged

    def second_differences(n, circular):
        eye = np.eye(n)
        d = np.roll(eye, -1, axis=0) - eye if circular else np.diff(eye, axis=0)
        return d.T @ d + 1e-3 * eye

    A = np.hstack([X["x"], X["angle"], np.ones((y.size, 1))])
    W = np.zeros((15, 15))
    W[:8, :8] = strengths["x"] * second_differences(8, False)
    W[8:14, 8:14] = strengths["angle"] * second_differences(6, True)

    def f(theta):
        eta = A @ theta
        rate = np.exp(eta)
        value = np.mean(rate - y * eta) + 0.5 * theta @ W @ theta
        return value, A.T @ (rate - y) / y.size + W @ theta

    def hessian(theta):
        return (A * np.exp(A @ theta)[:, None]).T @ A / y.size + W

    # Newton (trust region): the shift of a leaf against the intercept is nearly flat, along
    # which quasi-Newton methods stop early.
    opt = minimize(f, np.zeros(15), jac=True, hess=hessian, method="trust-exact",
                   options={"gtol": 1e-12})
    assert opt.success
    # The log rate is tightly identified; the shift of a leaf against the intercept only by the
    # small ridge inside Smooth (B-splines sum to one), so float32 coefficients are looser there.
    np.testing.assert_allclose(np.log(model.predict(X)), A @ opt.x, atol=2e-5)
    np.testing.assert_allclose(model.coef_["x"], opt.x[:8], atol=2e-4)
    np.testing.assert_allclose(model.coef_["angle"], opt.x[8:14], atol=2e-4)
    np.testing.assert_allclose(model.intercept_[0], opt.x[14], atol=2e-4)
