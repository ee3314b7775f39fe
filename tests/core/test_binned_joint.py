"""Joint (2-D) leaves on the bin grid: the open-field grid cell's map, float64 references for the
objective with Ridge and with the 2-D Smooth penalty, GroupLasso on the whole leaf, compile
counts, limits and bad input."""

import numpy as np
import pytest
from scipy.optimize import minimize

from glm_core import explorer, tuning
from glm_core.errors import InputError
from glm_core.open_field import GRID_CELL, HD_CELL, PLACE_CELL, simulate_open_field
from glm_core.session import Variable, make_session
from tests.compile_counts import CompileCounter
from tests.core import references as ref

JOINT = [(0, 1)]  # x and y


@pytest.fixture(scope="module")
def session():
    return simulate_open_field(50_000, seed=1)


def test_joint_leaf_recovers_the_grid_cell_and_beats_separate_x_and_y(session):
    """The grid cell's rate is not an x effect plus a y effect: the 20 x 20 joint leaf follows
    the true map (correlation >= 0.9 over visited bins) and scores more held-out bits/spike than
    20 + 20 separate bins."""
    joint = explorer.encode(session, GRID_CELL, [20, 20, 16, 20], pairs=JOINT)
    strengths = [1e-4, 1e-3, 1e-3]
    fit = explorer.fit(joint, [True, True, False], strengths, "Smooth")
    (grid_map,) = tuning.tuning_maps(session, joint, fit)
    assert grid_map.model.shape == grid_map.truth.shape == (20, 20)
    seen = np.isfinite(grid_map.model)
    assert seen.sum() > 350
    assert np.corrcoef(grid_map.model[seen], grid_map.truth[seen])[0, 1] >= 0.9
    held_out = explorer.cross_validate_encoding(joint, [True, True, False], strengths,
                                                "Smooth").pooled
    separate = explorer.encode(session, GRID_CELL, [20, 20, 16, 20])
    apart = explorer.cross_validate_encoding(separate, [True, True, True, False],
                                             [1e-4, 1e-4, 1e-3, 1e-3], "Smooth").pooled
    assert held_out > apart + 0.1


def test_empirical_map_is_the_occupancy_normalised_rate_with_unvisited_bins_blank(session):
    enc = explorer.encode(session, PLACE_CELL, [20, 20, 16, 20], pairs=JOINT)
    fit = explorer.fit(enc, [True, False, False], [1e-4, 1e-3, 1e-3], "Ridge")
    (place,) = tuning.tuning_maps(session, enc, fit)
    x, y = session.variable("x").values, session.variable("y").values
    counts = session.unit_counts(PLACE_CELL)
    ix, _ = ref.histogram_bins(x, 20)
    iy, _ = ref.histogram_bins(y, 20)
    occ = np.zeros((20, 20))
    spk = np.zeros((20, 20))
    np.add.at(occ, (ix, iy), session.bin_width)
    np.add.at(spk, (ix, iy), counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(occ > 0, spk / occ, np.nan)
    np.testing.assert_allclose(place.empirical, expected, rtol=1e-9)
    np.testing.assert_array_equal(np.isnan(place.model), occ == 0)


def _dense(session, unit, nx, ny, n_dir):
    """Float64 designs from numpy histogram bins: joint one-hot of (x, y) (column bx * ny + by),
    one-hot of head direction, and the counts."""
    ix, _ = ref.histogram_bins(session.variable("x").values, nx)
    iy, _ = ref.histogram_bins(session.variable("y").values, ny)
    ih, _ = ref.histogram_bins(session.variable("head direction").values, n_dir, circular=True)
    return (ref.one_hot(ix * ny + iy, nx * ny), ref.one_hot(ih, n_dir),
            session.unit_counts(unit).astype(float))


def _float64_optimum(designs, y, penalty_matrices):
    """argmin of mean(exp(eta) - y eta) + 0.5 sum_l w_l' P_l w_l in float64 (scipy, exact
    gradient and Hessian)."""
    X = np.hstack([*designs, np.ones((y.size, 1))])
    P = np.zeros((X.shape[1], X.shape[1]))
    start = 0
    for m in penalty_matrices:
        P[start:start + m.shape[0], start:start + m.shape[0]] = m
        start += m.shape[0]

    def f(theta):
        eta = X @ theta
        return np.mean(np.exp(eta) - y * eta) + 0.5 * theta @ P @ theta

    def grad(theta):
        return X.T @ (np.exp(X @ theta) - y) / y.size + P @ theta

    def hess(theta):
        return (X * np.exp(X @ theta)[:, None]).T @ X / y.size + P

    res = minimize(f, np.zeros(X.shape[1]), jac=grad, hess=hess, method="trust-exact",
                   options={"gtol": 1e-12})
    return res.x, res.fun


def _difference_matrix_2d(nx, ny):
    """First differences between neighbouring bins of an nx x ny map (bin bx * ny + by): one row
    per horizontal and per vertical neighbour pair, built by enumerating the pairs."""
    rows = []
    for bx in range(nx):
        for by in range(ny):
            for ox, oy in ((1, 0), (0, 1)):
                if bx + ox < nx and by + oy < ny:
                    row = np.zeros(nx * ny)
                    row[bx * ny + by], row[(bx + ox) * ny + by + oy] = -1.0, 1.0
                    rows.append(row)
    return np.array(rows)


def _circular_difference_matrix(n):
    rows = []
    for k in range(n):
        row = np.zeros(n)
        row[k], row[(k + 1) % n] = -1.0, 1.0
        rows.append(row)
    return np.array(rows)


def test_joint_ridge_fit_equals_a_float64_dense_fit(session):
    """Ridge on a 7 x 5 joint leaf plus head direction: the grid fit's objective and coefficients
    equal scipy's float64 optimum of the same one-hot design."""
    nx, ny, n_dir, s = 7, 5, 8, [3e-3, 1e-3]
    enc = explorer.encode(session, GRID_CELL, [nx, ny, n_dir, 20], pairs=JOINT)
    fit = explorer.fit(enc, [True, True, False], s + [1e-3], "Ridge")
    joint, heading, y = _dense(session, GRID_CELL, nx, ny, n_dir)
    theta, objective = _float64_optimum(
        [joint, heading], y, [s[0] * np.eye(nx * ny), s[1] * np.eye(n_dir)])
    assert fit.converged
    np.testing.assert_allclose(fit.objective, objective, rtol=1e-5)
    np.testing.assert_allclose(fit.weights[0, : nx * ny], theta[: nx * ny], atol=2e-5)
    np.testing.assert_allclose(fit.weights[1, :n_dir], theta[nx * ny: -1], atol=2e-5)
    np.testing.assert_allclose(fit.intercept, theta[-1], atol=2e-5)


def test_smooth_penalises_neighbours_along_both_axes_of_a_joint_leaf(session):
    """Smooth's 2-D penalty is 0.5 s (||D w||^2 + 1e-3 ||w||^2) with D every horizontal and
    vertical neighbour difference of the map (numpy-built); with head direction's circular
    Smooth, the grid fit reaches scipy's float64 optimum."""
    nx, ny, n_dir, s = 6, 9, 8, [2e-3, 1e-3]
    enc = explorer.encode(session, PLACE_CELL, [nx, ny, n_dir, 20], pairs=JOINT)
    fit = explorer.fit(enc, [True, True, False], s + [1e-3], "Smooth")
    joint, heading, y = _dense(session, PLACE_CELL, nx, ny, n_dir)
    D, C = _difference_matrix_2d(nx, ny), _circular_difference_matrix(n_dir)
    assert D.shape[0] == nx * (ny - 1) + ny * (nx - 1)
    theta, objective = _float64_optimum(
        [joint, heading], y, [s[0] * (D.T @ D + 1e-3 * np.eye(nx * ny)),
                              s[1] * (C.T @ C + 1e-3 * np.eye(n_dir))])
    assert fit.converged
    np.testing.assert_allclose(fit.objective, objective, rtol=1e-5)
    # Smooth's ridge (1e-3 s) leaves the shift of a leaf against the intercept nearly flat:
    # compare each leaf's shape (its coefficients about their mean)
    for ours, theirs in ((fit.weights[0, : nx * ny], theta[: nx * ny]),
                         (fit.weights[1, :n_dir], theta[nx * ny: -1])):
        np.testing.assert_allclose(ours - ours.mean(), theirs - theirs.mean(), atol=5e-5)


def test_group_lasso_removes_the_joint_leaf_as_a_whole(session):
    """The head-direction cell has no spatial tuning: at a high strength GroupLasso zeroes every
    coefficient of the x-y leaf at once and keeps head direction; at a low one it keeps both."""
    enc = explorer.encode(session, HD_CELL, [10, 10, 16, 20], pairs=JOINT)
    high = explorer.fit(enc, [True, True, False], [3e-3, 1e-4, 1e-3], "GroupLasso")
    assert high.converged
    assert np.all(high.weights[0] == 0) and np.any(high.weights[1, :16] != 0)
    low = explorer.fit(enc, [True, True, False], [1e-6, 1e-6, 1e-3], "GroupLasso")
    assert np.count_nonzero(low.weights[0, :100]) == 100


def test_changes_within_a_pairing_never_recompile(session):
    """After warm-up, strengths, joint bin counts up to the maximum, includes, folds, the unit and
    the regularization path reuse the compiled solvers of the paired layout."""
    enc = explorer.encode(session, GRID_CELL, [20, 20, 16, 20], pairs=JOINT)
    explorer.warm_up(enc, ("Smooth", "Ridge"))
    grid = np.linspace(-5, -2, 3)
    explorer.path(enc, [True] * 3, [1e-3] * 3, "Ridge", 0, grid)
    with CompileCounter() as counter:
        prev = explorer.fit(enc, [True] * 3, [1e-4, 1e-2, 1e-3], "Smooth")
        for nx, ny in ((5, 20), (20, 3), (12, 12)):
            enc = explorer.with_bins(explorer.with_bins(enc, session, 0, nx), session, 1, ny)
            explorer.fit(enc, [True, False, True], [1e-5] * 3, "Smooth", init=prev.theta)
        enc = explorer.with_folds(explorer.with_unit(enc, session, PLACE_CELL), 5)
        explorer.fit(enc, [True] * 3, [1e-3] * 3, "Ridge")
        explorer.cross_validate_encoding(enc, [True] * 3, [1e-4] * 3, "Smooth")
        explorer.path(enc, [True, True, False], [1e-3] * 3, "Ridge", 1, grid + 0.5)
    assert counter.count == 0


def test_pairing_a_circular_variable_is_refused(session):
    with pytest.raises(InputError, match="circular"):
        explorer.encode(session, GRID_CELL, [20, 20, 16, 20], pairs=[(0, 2)])
    with pytest.raises(InputError, match="2-D leaf"):
        explorer.encode(session, GRID_CELL, [20, 20, 16, 20], pairs=[(0, 1), (1, 3)])
    with pytest.raises(InputError, match="between 1 and 20"):
        explorer.encode(session, GRID_CELL, [30, 20, 16, 20], pairs=JOINT)
    enc = explorer.encode(session, GRID_CELL, [20, 20, 16, 20], pairs=JOINT)
    with pytest.raises(InputError, match="2-D leaf"):
        explorer.with_basis(enc, session, 0, 8)


def test_five_variables_and_two_joint_leaves_fit(session):
    """The limits: five variables, x-y paired and speed paired with the distance to the nearest
    wall, both 20 x 20, plus head direction, on 50,000 samples; the grid cell's map still
    follows its truth."""
    x, y = session.variable("x").values, session.variable("y").values
    wall = np.minimum.reduce([x, y, 100 - x, 100 - y])
    five = make_session(session.bin_width,
                        (*session.variables, Variable("wall distance", wall, "cm")),
                        session.counts, session.unit_names, unit_truth=session.unit_truth)
    enc = explorer.encode(five, GRID_CELL, [20, 20, 16, 20, 20], pairs=[(0, 1), (3, 4)])
    assert enc.leaves == ((0, 1), (2,), (3, 4))
    fit = explorer.fit(enc, [True] * 3, [1e-4, 1e-3, 1e-4], "Smooth")
    assert fit.converged
    grid_map, speed_wall = tuning.tuning_maps(five, enc, fit)
    seen = np.isfinite(grid_map.model)
    assert np.corrcoef(grid_map.model[seen], grid_map.truth[seen])[0, 1] >= 0.9
    assert speed_wall.name == "speed × wall distance"
    cv = explorer.cross_validate_encoding(enc, [True] * 3, [1e-4, 1e-3, 1e-4], "Ridge")
    assert cv.converged.all() and np.isfinite(cv.pooled)
