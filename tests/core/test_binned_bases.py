"""B-spline bases on the bin grid: the fit, its band, cross-validation and paths against the
same discretised design fitted densely (one-hot(fine bin) @ B, B from NeMoS at the fine bin
centres of ``np.histogram``), float64 scipy / sklearn optima, and compile counts."""

import warnings

import jax
import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.linear_model import PoissonRegressor

from glm_core import explorer, tuning
from glm_core.errors import InputError
from glm_core.glm import GLM
from glm_core.regularizers import Smooth
from glm_core.simulation import simulate_session
from tests.compile_counts import CompileCounter
from tests.core import references as ref
from tests.core.test_heldout import bits, fold_ids

nmo = pytest.importorskip("nemos")

FINE = 64
N_BINS, N_BASIS = [20, 8, 16], [10, None, 8]  # position B-spline, speed bins, cyclic heading


@pytest.fixture(scope="module")
def session():
    return simulate_session(6_000, seed=4)


@pytest.fixture(scope="module")
def enc(session):
    return explorer.encode(session, 0, N_BINS, n_basis=N_BASIS)


def reference_bases(session, n_basis=N_BASIS, n_bins=N_BINS):
    """Per variable: (bin of each valid sample, B at the bin centres): B from NeMoS on 64 fine
    bins for the basis variables, the identity for the others."""
    out = {}
    for var, k, n in zip(session.variables, n_basis, n_bins):
        index, edges = ref.histogram_bins(var.values[session.valid], n if k is None else FINE,
                                          var.circular)
        if k is None:
            out[var.name] = index, np.eye(n)
            continue
        cls = nmo.basis.CyclicBSplineEval if var.circular else nmo.basis.BSplineEval
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[var.name] = index, np.asarray(cls(k, bounds=(edges[0], edges[-1])).compute_features(
                0.5 * (edges[:-1] + edges[1:])), float)
    return out


def reference_designs(session, n_basis=N_BASIS, n_bins=N_BINS):
    """{name: one-hot(bin) @ B}: the discretised design the grid fit stands for."""
    return {name: ref.one_hot(index, basis.shape[0]) @ basis
            for name, (index, basis) in reference_bases(session, n_basis, n_bins).items()}


def regularizer(name):
    return Smooth(circular={"head direction"}) if name == "Smooth" else name


STRENGTHS = {"Ridge": [1e-3, 1e-2, 3e-3], "Smooth": [3e-2, 1e-1, 1e-1],
             "Lasso": [1e-3, 5e-3, 1e-3], "GroupLasso": [1e-3, 2e-2, 1e-3]}


COEF_ATOL = {"Ridge": 1e-5, "GroupLasso": 3e-5, "Smooth": 2e-4}


@pytest.mark.parametrize("name", list(STRENGTHS))
def test_grid_fit_with_bases_equals_dense_fit_of_the_discretised_design(session, enc, name):
    strengths = STRENGTHS[name]
    X = reference_designs(session)
    fit = explorer.fit(enc, [True] * 3, strengths, name)  # circularity comes from the data
    dense = GLM(regularizer(name), dict(zip(session.names, strengths))).fit(X, enc.counts)
    assert fit.converged and dense.fit_.converged
    assert enc.n_coef == (10, 8, 8)
    np.testing.assert_allclose(fit.objective, dense.fit_.objective, rtol=1e-6)
    coef = fit.coef(session.names, enc.n_coef)
    log_rate = fit.intercept + sum(X[n] @ coef[n].astype(float) for n in session.names)
    # both stop at a float32 residual of 1e-6 times the mean count; the proximal solvers'
    # inner tolerances leave a little more slack
    np.testing.assert_allclose(log_rate, np.log(dense.predict(X)),
                               atol=1e-5 if name in ("Ridge", "Smooth") else 3e-5)
    # Lasso's optimum can be a segment of shifts of a leaf against the intercept; Smooth pins
    # that shift only by its small ridge (B-splines sum to one), so float32 solutions agree to
    # 2e-4 there (as for Smooth on bins, tests/test_smooth.py).
    for n in session.names if name != "Lasso" else ():
        np.testing.assert_allclose(coef[n], dense.coef_[n], atol=COEF_ATOL[name], err_msg=n)
    if name != "Smooth":  # optimal in float64 (KKT), checked from outside
        designs = [X[n] for n in session.names]
        assert ref.kkt_residual(designs, [coef[n] for n in session.names], fit.intercept,
                                enc.counts, name, strengths) < 1e-5
    # the drawn effect of a basis variable: B @ coefficients at every fine bin
    for v, (n, (_, basis)) in enumerate(reference_bases(session).items()):
        np.testing.assert_allclose(fit.effects[v, : basis.shape[0]], basis @ coef[n], atol=1e-6)


def test_grid_fit_with_bases_equals_a_float64_ridge_optimum(session, enc):
    """sklearn's PoissonRegressor (float64, one alpha on columns scaled per leaf)."""
    strengths = STRENGTHS["Ridge"]
    X = reference_designs(session)
    fit = explorer.fit(enc, [True] * 3, strengths, "Ridge")
    alpha = 1e-2
    scale = [np.sqrt(alpha / s) for s in strengths]
    sk = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(
        np.hstack([X[n] * c for n, c in zip(session.names, scale)]), enc.counts)
    stops = np.cumsum([X[n].shape[1] for n in session.names])[:-1]
    for n, c, w in zip(session.names, scale, np.split(sk.coef_, stops)):
        np.testing.assert_allclose(fit.coef(session.names, enc.n_coef)[n], w * c, atol=1e-5)
    np.testing.assert_allclose(fit.intercept, sk.intercept_, atol=1e-5)


def test_smooth_basis_penalises_neighbouring_coefficients_wrapped_on_the_circle(session, enc):
    """Smooth on basis coefficients against scipy (Newton, float64) on the objective written out
    with explicit neighbour differences, the heading's last and first coefficients linked."""
    strengths = STRENGTHS["Smooth"]
    X = reference_designs(session)
    fit = explorer.fit(enc, [True] * 3, strengths, "Smooth")
    names = session.names
    A = np.hstack([X[n] for n in names] + [np.ones((enc.counts.size, 1))])
    y = enc.counts
    W = np.zeros((A.shape[1], A.shape[1]))
    start = 0
    for n, s, circular in zip(names, strengths, (False, False, True)):
        k = X[n].shape[1]
        pairs = [(i, i + 1) for i in range(k - 1)] + ([(k - 1, 0)] if circular else [])
        for a, b in pairs:
            d = np.zeros(A.shape[1])
            d[start + a], d[start + b] = -1.0, 1.0
            W += s * np.outer(d, d)
        W[start:start + k, start:start + k] += s * 1e-3 * np.eye(k)
        start += k

    def f(theta):
        eta = A @ theta
        rate = np.exp(eta)
        return (np.mean(rate - y * eta) + 0.5 * theta @ W @ theta,
                A.T @ (rate - y) / y.size + W @ theta)

    opt = minimize(f, np.zeros(A.shape[1]), jac=True, method="trust-exact",
                   hess=lambda t: (A * np.exp(A @ t)[:, None]).T @ A / y.size + W,
                   options={"gtol": 1e-12})
    theta = np.concatenate([fit.coef(names, enc.n_coef)[n] for n in names] + [[fit.intercept]])
    np.testing.assert_allclose(A @ theta, A @ opt.x, atol=1e-5)
    np.testing.assert_allclose(theta, opt.x, atol=2e-4)  # shifts: see COEF_ATOL


def test_band_of_a_basis_curve_is_the_float64_laplace_delta_method(session, enc):
    """curve_se at each fine bin: float64 inverse of the summed penalised Hessian of the dense
    discretised design, carried to log(curve) = b + B[s] c + log G (G the others' mean effect)."""
    strengths = STRENGTHS["Ridge"]
    names = session.names
    bases = reference_bases(session)
    X = reference_designs(session)
    fit = explorer.fit(enc, [True] * 3, strengths, "Ridge")
    coef = {n: fit.coef(names, enc.n_coef)[n].astype(float) for n in names}
    y = enc.counts
    A = np.hstack([X[n] for n in names] + [np.ones((y.size, 1))])
    theta = np.concatenate([coef[n] for n in names] + [[fit.intercept]])
    mu = np.exp(A @ theta)
    penalty = np.concatenate([np.full(X[n].shape[1], s) for n, s in zip(names, strengths)]
                             + [[0.0]])
    cov = np.linalg.inv((A * mu[:, None]).T @ A + y.size * np.diag(penalty))
    stops = np.cumsum([0] + [X[n].shape[1] for n in names])
    for v, n in enumerate(names):
        others = np.exp(sum(X[m] @ coef[m] for m in names if m != n))
        basis = bases[n][1]
        jac = np.zeros((basis.shape[0], A.shape[1]))
        jac[:, -1] = 1.0
        for u, m in enumerate(names):
            jac[:, stops[u]:stops[u + 1]] = basis if m == n else (others @ X[m]) / others.sum()
        se = np.sqrt(np.einsum("si,ij,sj->s", jac, cov, jac))
        shown = fit.shown[v, : basis.shape[0]]
        assert shown.all() if enc.bases[v] is not None else shown.sum() >= 6
        np.testing.assert_allclose(fit.curve_se[v, : se.size][shown], se[shown], rtol=2e-3,
                                   err_msg=n)


def test_cross_validation_and_path_with_bases_equal_sklearn_refits_per_fold(session):
    """Each fold's held-out and training bits/spike, and each point of a regularization path,
    equal sklearn refits on the discretised design (float64), fold by fold."""
    n_folds = 4
    enc = explorer.with_folds(explorer.encode(session, 0, N_BINS, n_basis=N_BASIS), n_folds)
    include = [True, False, True]
    X = reference_designs(session)
    y, fold = enc.counts, fold_ids(enc.counts.size, n_folds)

    def sklearn_scores(s_position, s_heading):
        """Per-leaf strengths: one alpha on columns scaled by sqrt(alpha / s_leaf)."""
        alpha = 1e-2
        design = np.hstack([X["position"] * np.sqrt(alpha / s_position),
                            X["head direction"] * np.sqrt(alpha / s_heading)])
        test, train = [], []
        for k in range(n_folds):
            tr, te = fold != k, fold == k
            model = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=1000,
                                     solver="newton-cholesky").fit(design[tr], y[tr])
            test.append(bits(y[te], model.predict(design[te]), y[tr].mean()))
            train.append(bits(y[tr], model.predict(design[tr]), y[tr].mean()))
        return np.array(test), np.array(train)

    cv = explorer.cross_validate_encoding(enc, include, [3e-3] * 3, "Ridge")
    test, train = sklearn_scores(3e-3, 3e-3)
    assert cv.converged.all()
    np.testing.assert_allclose(cv.test_bits_per_spike, test, atol=1e-4)
    np.testing.assert_allclose(cv.train_bits_per_spike, train, atol=1e-4)
    logs = [-4.0, -1.0]  # along the heading's strength, position's held at 1e-3
    for log_s, scores in zip(logs, explorer.path(enc, include, [1e-3] * 3, "Ridge", 2, logs)):
        np.testing.assert_allclose(scores.test_bits_per_spike,
                                   sklearn_scores(1e-3, 10.0**log_s)[0], atol=1e-4)


def test_switching_encoding_basis_count_and_strengths_never_recompiles(session):
    """After the app's warm-up (every regularizer's fit and cross-validation, on bins only),
    switching variables to a basis and back, changing the basis count, strengths, folds and
    paths compile nothing. Caches are cleared first."""
    jax.clear_caches()
    enc = explorer.encode(session, 0, N_BINS)
    explorer.warm_up(enc)
    grid = np.linspace(-5, -1, 3)
    explorer.path(enc, [True] * 3, [1e-3] * 3, "Ridge", 0, grid)
    with CompileCounter() as counter:
        prev = None
        for k in (4, 12, 20):
            enc = explorer.with_basis(enc, session, 0, k)
            enc = explorer.with_basis(enc, session, 2, k)
            for name in STRENGTHS:
                prev = explorer.fit(enc, [True] * 3, [10 ** -(k / 4)] * 3, name,
                                    None if name != "Ridge" else prev and prev.theta)
                explorer.cross_validate_encoding(enc, [True, False, True], [1e-3] * 3, name)
        explorer.path(enc, [True] * 3, [1e-3] * 3, "Ridge", 2, grid)
        curves = tuning.tuning_curves(session, enc, prev)
        enc = explorer.with_bins(enc, session, 0, 24)
        explorer.fit(enc, [True] * 3, [1e-3] * 3, "Lasso")
    assert counter.count == 0
    assert curves[0].smooth and curves[0].centres.size == FINE and not curves[1].smooth


def test_fewer_samples_than_basis_functions_is_an_input_error():
    small = simulate_session(12, seed=2)
    enc = explorer.encode(small, 0, [3, 3, 3], n_folds=2)
    with pytest.raises(InputError, match="14 basis functions but only 12 valid samples"):
        explorer.with_basis(enc, small, 0, 14)
    with pytest.raises(InputError, match="basis functions but only 12 valid samples"):
        explorer.encode(small, 0, [3, 3, 3], n_folds=2, n_basis=[None, None, 13])
    with pytest.raises(InputError, match="too few for order 4"):
        explorer.with_basis(enc, small, 0, 3)
