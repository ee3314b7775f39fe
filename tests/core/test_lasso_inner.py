"""Lasso's inner problem (the proximal Newton step's quadratic, ``Lasso.solve_quadratic``) on
coupled one-hot leaves plus an intercept: a few sweeps, each ended by an exact solve on the
support it found, reach scipy's float64 minimiser (issue 17: plain coordinate sweeps crawl along
the directions the coupled leaves leave flat, which made Lasso's Best strengths slow)."""

import jax.numpy as jnp
import numpy as np
from scipy.optimize import minimize

from glm_core.regularizers import Lasso

SIZES = (8, 8, 6)


def quadratic():
    """H = X'WX/n of a one-hot design of three correlated variables and an intercept (each
    group's block diagonal), a linear term, and per-coordinate L1 weights (none on the
    intercept)."""
    rng = np.random.default_rng(7)
    n = 4_000
    a = rng.integers(0, SIZES[0], n)
    b = np.where(rng.random(n) < 0.9, a, rng.integers(0, SIZES[1], n))  # mostly a's bin
    c = (a + b + rng.integers(0, 2, n)) % SIZES[2]
    x = np.concatenate([np.eye(s)[v] for s, v in zip(SIZES, (a, b, c))] + [np.ones((n, 1))], 1)
    w = rng.uniform(0.05, 0.3, n)
    hess = x.T @ (w[:, None] * x) / n
    linear = x.T @ (w * (0.5 * rng.standard_normal(n) + np.log(2 + x[:, :3].sum(1)))) / n
    weights = np.concatenate([np.full(sum(SIZES), 2e-4), [0.0]])
    return hess, linear, weights


def objective(z, hess, linear, weights):
    return 0.5 * z @ hess @ z - linear @ z + np.sum(weights * np.abs(z))


def scipy_minimum(hess, linear, weights):
    """Float64 reference: z = u - v with u, v >= 0, a smooth bound-constrained problem."""
    p = linear.size

    def f(uv):
        z = uv[:p] - uv[p:]
        g = hess @ z - linear
        return (0.5 * z @ hess @ z - linear @ z + weights @ (uv[:p] + uv[p:]),
                np.concatenate([g + weights, -g + weights]))

    res = minimize(f, np.zeros(2 * p), jac=True, method="L-BFGS-B",
                   bounds=[(0, None)] * (2 * p), options={"ftol": 1e-15, "gtol": 1e-12,
                                                         "maxiter": 20_000})
    return res.x[:p] - res.x[p:]


def test_a_few_sweeps_reach_the_minimiser():
    hess, linear, weights = quadratic()
    starts = np.cumsum((0, *SIZES))
    groups = tuple((int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
    reference = scipy_minimum(hess, linear, weights)
    z = Lasso().solve_quadratic(jnp.asarray(hess, jnp.float32), jnp.asarray(linear, jnp.float32),
                                jnp.zeros(linear.size, jnp.float32),
                                jnp.asarray(weights, jnp.float32), groups, 0.0, 4, True)
    z = np.asarray(z, float)
    best = objective(reference, hess, linear, weights)
    # four sweeps: within float32 reach of the minimum (without the support solves, 2e-5 off)
    assert objective(z, hess, linear, weights) - best <= 1e-5 * abs(best)
