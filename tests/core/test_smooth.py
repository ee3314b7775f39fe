"""Smooth, the roughness penalty: against a float64 scipy minimisation of the penalty written as
explicit sums over neighbouring coefficients; wrap-around on circular leaves; no recompiles."""

import numpy as np
import pytest
from scipy.optimize import minimize

from glm_core.errors import InputError
from glm_core.glm import GLM
from glm_core.regularizers import REGULARIZERS, Smooth, grid_roughness, roughness
from tests.compile_counts import CompileCounter

RIDGE = 1e-3  # the ridge, relative to each leaf's strength


def neighbour_pairs(n, circular):
    """(k, k + 1) for every neighbouring pair, and (n - 1, 0) on a circle."""
    pairs = [(k, k + 1) for k in range(n - 1)]
    return pairs + [(n - 1, 0)] if circular else pairs


def grid_neighbour_pairs(nx, ny):
    """Neighbouring cells (flattened as bx * ny + by) of an (nx, ny) grid, along x and along y."""
    along_x = [(i * ny + j, (i + 1) * ny + j) for i in range(nx - 1) for j in range(ny)]
    along_y = [(i * ny + j, i * ny + j + 1) for i in range(nx) for j in range(ny - 1)]
    return along_x + along_y


def explicit_penalty(coef, strength, circular, grids=None):
    """0.5 s sum (w[b] - w[a])^2 over neighbours + 0.5 s 1e-3 sum w^2, per leaf; and gradient.
    ``grids`` maps 2-D leaves to their (nx, ny): neighbours along both axes."""
    grids = grids or {}
    value, grad = 0.0, {}
    for key, w in coef.items():
        s, g = strength[key], RIDGE * strength[key] * w
        value += 0.5 * s * RIDGE * np.sum(w**2)
        pairs = (grid_neighbour_pairs(*grids[key]) if key in grids
                 else neighbour_pairs(w.size, key in circular))
        for a, b in pairs:
            value += 0.5 * s * (w[b] - w[a]) ** 2
            g[b] += s * (w[b] - w[a])
            g[a] -= s * (w[b] - w[a])
        grad[key] = g
    return value, grad


def reference_fit(X, y, strength, circular, train=None, grids=None):
    """Float64 BFGS on the mean Poisson loss over the ``train`` samples + the explicit penalty.
    Returns (coef dict, intercept)."""
    keys = list(X)
    train = np.ones(y.size, bool) if train is None else train
    Xt = {k: np.asarray(X[k], float)[train] for k in keys}
    yt = y[train]
    stops = np.cumsum([Xt[k].shape[1] for k in keys])

    def unpack(theta):
        return {k: w for k, w in zip(keys, np.split(theta[:-1], stops[:-1]))}, theta[-1]

    def f(theta):
        coef, b = unpack(theta)
        eta = sum(Xt[k] @ coef[k] for k in keys) + b
        mu = np.exp(eta)
        pen, pen_grad = explicit_penalty(coef, strength, circular, grids)
        grad = [(Xt[k].T @ (mu - yt)) / yt.size + pen_grad[k] for k in keys]
        return np.mean(mu - yt * eta) + pen, np.append(np.concatenate(grad), np.mean(mu - yt))

    theta = minimize(f, np.zeros(stops[-1] + 1), jac=True, method="BFGS",
                     options={"gtol": 1e-11, "maxiter": 20_000}).x
    return unpack(theta)


def circle_data(seed=0, n=6000, bins=(7, 12)):
    """A linear leaf 'x' and a circular leaf 'angle' whose tuning jumps between its first and
    last bins, which are neighbours on the circle."""
    rng = np.random.default_rng(seed)
    ix, ia = rng.integers(0, bins[0], n), rng.integers(0, bins[1], n)
    tuning = np.linspace(-0.8, 0.8, bins[1])  # lowest at bin 0, highest at the last bin
    y = rng.poisson(np.exp(0.4 * np.sin(ix) + tuning[ia] - 0.3)).astype(float)
    return {"x": np.eye(bins[0])[ix], "angle": np.eye(bins[1])[ia]}, y


@pytest.mark.parametrize("circular", [frozenset(), frozenset({"angle"})])
def test_smooth_matches_explicit_float64_reference(circular):
    X, y = circle_data()
    strength = {"x": 0.03, "angle": 0.1}
    ours = GLM(Smooth(circular=circular), strength).fit(X, y)
    coef, intercept = reference_fit(X, y, strength, circular)
    assert ours.fit_.converged
    for key in X:
        np.testing.assert_allclose(ours.coef_[key], coef[key], atol=2e-4)
    np.testing.assert_allclose(ours.intercept_[0], intercept, atol=2e-4)
    eta_ref = sum(X[k] @ coef[k] for k in X) + intercept
    np.testing.assert_allclose(np.log(ours.predict(X)), eta_ref, atol=2e-5)


def test_wrap_around_pulls_the_ends_of_a_circular_leaf_together():
    """With 'angle' circular, its first and last coefficients are neighbours and are pulled
    together; the linear leaf is unaffected by the choice."""
    X, y = circle_data()
    strength = {"x": 0.03, "angle": 0.1}
    linear = GLM("Smooth", strength).fit(X, y).coef_
    circular = GLM(Smooth(circular="angle"), strength).fit(X, y).coef_
    gap_linear = abs(linear["angle"][0] - linear["angle"][-1])
    gap_circular = abs(circular["angle"][0] - circular["angle"][-1])
    assert gap_circular < 0.6 * gap_linear
    np.testing.assert_allclose(circular["x"], linear["x"], atol=0.02)


@pytest.mark.parametrize("n", [1, 2, 3, 8])
@pytest.mark.parametrize("circular", [False, True])
def test_roughness_is_the_sum_of_squared_neighbour_differences(n, circular):
    w = np.random.default_rng(n).normal(size=n)
    explicit = sum((w[b] - w[a]) ** 2 for a, b in neighbour_pairs(n, circular))
    np.testing.assert_allclose(w @ roughness(n, circular) @ w, explicit, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (3, 1), (4, 5)])
def test_grid_roughness_is_the_sum_of_squared_differences_along_both_axes(shape):
    w = np.random.default_rng(sum(shape)).normal(size=shape[0] * shape[1])
    explicit = sum((w[b] - w[a]) ** 2 for a, b in grid_neighbour_pairs(*shape))
    np.testing.assert_allclose(w @ grid_roughness(*shape) @ w, explicit, rtol=1e-12, atol=1e-14)


def map_data(seed=0, n=8000, shape=(5, 4)):
    """A 2-D leaf 'map' (one-hot of the joint cell bx * ny + by) whose tuning is a ridge along
    x, and a 1-D leaf 'x'."""
    rng = np.random.default_rng(seed)
    bx, by, ix = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n), rng.integers(0, 6, n)
    y = rng.poisson(np.exp(np.cos(bx) - 0.2 * by + 0.3 * np.sin(ix) - 0.5)).astype(float)
    return {"map": np.eye(shape[0] * shape[1])[bx * shape[1] + by], "x": np.eye(6)[ix]}, y


def test_smooth_on_a_2d_leaf_matches_explicit_float64_reference():
    """With ``grids``, a 2-D leaf's cells are smoothed towards their neighbours along x and
    along y (the flattened order alone would link (bx, ny - 1) to (bx + 1, 0) and miss x)."""
    X, y = map_data()
    strength, grids = {"map": 0.02, "x": 0.05}, {"map": (5, 4)}
    ours = GLM(Smooth(grids=grids), strength).fit(X, y)
    coef, intercept = reference_fit(X, y, strength, frozenset(), grids=grids)
    assert ours.fit_.converged
    for key in X:
        np.testing.assert_allclose(ours.coef_[key], coef[key], atol=2e-4)
    np.testing.assert_allclose(ours.intercept_[0], intercept, atol=2e-4)
    flat = reference_fit(X, y, strength, frozenset())[0]["map"]  # 1-D roughness: different
    assert np.max(np.abs(flat - coef["map"])) > 10 * 2e-4


def test_bad_grids_raise_input_error():
    X, y = map_data(n=500)
    with pytest.raises(InputError, match=r"grids=.*not leaves of the design"):
        GLM(Smooth(grids={"place": (5, 4)}), 1e-2).fit(X, y)
    with pytest.raises(InputError, match="nx \\* ny = its 20 columns"):
        GLM(Smooth(grids={"map": (4, 4)}), 1e-2).fit(X, y)


def test_new_strengths_do_not_recompile():
    X, y = circle_data(n=2000)
    reg = Smooth(circular={"angle"})
    GLM(reg, 1e-2).fit(X, y)
    with CompileCounter() as counter:
        for strength in (1e-4, {"x": 1.0, "angle": 1e-3}, 0.3):
            GLM(reg, strength).fit(X, y)
    assert counter.count == 0


def test_smooth_is_a_named_regularizer_and_bad_settings_raise_input_error():
    assert isinstance(REGULARIZERS["Smooth"](), Smooth)
    X, y = circle_data(n=500)
    with pytest.raises(InputError, match="not leaves of the design.*'angle'"):
        GLM(Smooth(circular={"direction"}), 1e-2).fit(X, y)
    with pytest.raises(InputError, match="Smooth takes one strength per leaf"):
        GLM("Smooth", {"x": np.ones(7), "angle": 1.0}).fit(X, y)
