"""Best strengths by evidence maximisation: against a float64 numpy/scipy Laplace evidence on the
dense one-hot design maximised by scipy.optimize, against the held-out optimum along the paths,
and compile counts."""

import numpy as np
import pytest
from scipy.optimize import minimize

from glm_core import explorer
from glm_core.errors import InputError
from glm_core.evidence import evidence_strengths
from glm_core.simulation import simulate_binned_truth, simulate_session
from tests.compile_counts import CompileCounter
from tests.core.references import one_hot


def prior_blocks(sizes, circular, regularizer):
    """K_v per variable (the penalty's Hessian per unit strength), built here from scratch."""
    blocks = []
    for p, wrap in zip(sizes, circular):
        if regularizer == "Ridge":
            blocks.append(np.eye(p))
            continue
        d = np.zeros((p if wrap else p - 1, p))
        for k in range(d.shape[0]):
            d[k, k], d[k, (k + 1) % p] = -1.0, 1.0
        blocks.append(d.T @ d + 1e-3 * np.eye(p))
    return blocks


def laplace_log_evidence(designs, y, log_s, blocks, start):
    """Float64 Laplace log evidence of NeMoS's mean objective with penalty 0.5 s_v w_v'K_v w_v:
    a Gaussian prior of precision n s_v K_v per variable, flat on the intercept."""
    X = np.hstack(designs + [np.ones((y.size, 1))])
    n, s = y.size, 10.0 ** np.asarray(log_s)
    prior = np.zeros((X.shape[1], X.shape[1]))
    a = 0
    for K, sv in zip(blocks, s):
        prior[a:a + K.shape[0], a:a + K.shape[0]] = sv * K
        a += K.shape[0]

    def f(w):
        eta = X @ w
        return np.mean(np.exp(eta) - y * eta) + 0.5 * w @ prior @ w

    def hess(w):
        return (X.T * np.exp(X @ w)) @ X / n + prior

    w = minimize(f, start, jac=lambda w: X.T @ (np.exp(X @ w) - y) / n + prior @ w, hess=hess,
                 method="trust-exact", options={"gtol": 1e-12}).x
    start[:] = w
    log_det_prior = sum(np.linalg.slogdet(n * sv * K)[1] for K, sv in zip(blocks, s))
    return -n * f(w) + 0.5 * log_det_prior - 0.5 * np.linalg.slogdet(n * hess(w))[1]


@pytest.mark.parametrize("regularizer,seed", [("Ridge", 0), ("Ridge", 2), ("Smooth", 1)])
def test_evidence_maximum_equals_scipy_on_the_dense_design(regularizer, seed):
    s = simulate_binned_truth(3_000, seed)
    enc = explorer.encode(s, 0, [10, 6, 8])
    designs = [one_hot(enc.indices[:, v], n) for v, n in enumerate(enc.n_bins)]
    assert all(d.sum(0).min() > 0 for d in designs)  # every bin occupied: all active
    y = enc.counts.astype(float)
    blocks = prior_blocks(enc.n_bins, enc.circular, regularizer)
    start = np.zeros(sum(enc.n_bins) + 1)
    ref = minimize(lambda ls: -laplace_log_evidence(designs, y, ls, blocks, start), [-3.0] * 3,
                   method="L-BFGS-B", bounds=[(-6.0, 0.0)] * 3).x
    ours = evidence_strengths(enc.grid, enc.n_bins, [True] * 3, [-3.0] * 3, regularizer,
                              circular=enc.circular)
    np.testing.assert_allclose(ours, ref, atol=0.03)


def test_excluded_variables_keep_their_strength_and_bounds_hold():
    s = simulate_binned_truth(3_000, 0)
    enc = explorer.encode(s, 0, [10, 6, 8])
    out = evidence_strengths(enc.grid, enc.n_bins, [True, False, True], [-3.0, -4.5, -3.0],
                             "Ridge", bounds=(-2.5, 0.0))
    assert out[1] == -4.5
    assert np.all((out[[0, 2]] >= -2.5) & (out[[0, 2]] <= 0.0))
    assert out[0] == pytest.approx(-2.5)  # the unbounded optimum (about -2.8) lies below


@pytest.mark.parametrize("regularizer", ["Ridge", "Smooth"])
def test_best_strengths_score_as_well_as_the_best_point_of_every_path(regularizer):
    """Held out, the evidence's strengths are within 0.005 bits/spike of the best point on each
    variable's path (25 strengths, the others held at the evidence's values)."""
    s = simulate_binned_truth(10_000, 3)
    enc = explorer.encode(s, 0, [20, 6, 16])
    include, grid = [True, False, True], np.linspace(-6.0, 0.0, 25)
    logs = explorer.best_strengths(enc, include, [-3.0] * 3, regularizer, grid)
    strengths = [10.0**x for x in logs]
    held_out = explorer.cross_validate_encoding(enc, include, strengths, regularizer).pooled
    for v in (0, 2):
        best = max(c.pooled for c in explorer.path(enc, include, strengths, regularizer, v, grid))
        assert held_out >= best - 0.005, (v, held_out, best)
    start = explorer.cross_validate_encoding(enc, include, [1e-3] * 3, regularizer).pooled
    assert held_out > start


def test_lasso_is_refused_and_best_strengths_falls_back_to_the_paths():
    s = simulate_binned_truth(3_000, 0)
    enc = explorer.encode(s, 0, [10, 6, 8])
    with pytest.raises(InputError, match="Ridge or Smooth"):
        evidence_strengths(enc.grid, enc.n_bins, [True] * 3, [-3.0] * 3, "Lasso")
    grid = np.linspace(-4.0, -2.0, 3)
    logs = explorer.best_strengths(enc, [True, False, False], [-3.0] * 3, "Lasso", grid,
                                   rounds=1)
    assert logs[0] in grid and logs[1:] == [-3.0, -3.0]


def test_evidence_changes_never_recompile():
    session = simulate_session(6_000, seed=4)
    enc = explorer.encode(session, 0, [12, 5, 8])
    evidence_strengths(enc.grid, enc.n_bins, [True] * 3, [-3.0] * 3, "Ridge")
    evidence_strengths(enc.grid, enc.n_bins, [True] * 3, [-3.0] * 3, "Smooth")
    with CompileCounter() as counter:
        for folds in (3, 20):
            enc = explorer.with_folds(enc, folds)
            evidence_strengths(enc.grid, enc.n_bins, [True, False, True], [-2.0] * 3, "Smooth",
                               circular=enc.circular)
        enc = explorer.with_bins(explorer.with_unit(enc, session, 0), session, 0, 30)
        explorer.best_strengths(enc, [True, True, False], [-4.0] * 3, "Ridge",
                                np.linspace(-6.0, 0.0, 25))
    assert counter.count == 0
