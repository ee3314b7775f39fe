"""The model in time (glm_core.time_view): each sample's log rate under a bin-grid fit against the
fit's own effects, the cross-validated predicted rate against sklearn refits of each fold on the
np.histogram one-hot design (invalid samples in the session), the stretch's arithmetic, and the
simulation from a lagged fit against an explicit call of the sequential sampler with the fit's
history filter (a runaway history reported as capped bins)."""

import numpy as np
import pytest
from sklearn.linear_model import PoissonRegressor

from glm_core import GLM, LagLeaf, explorer, lagged, raised_cosine_log, with_lags
from glm_core._lag_problem import LAG_BASIS
from glm_core.crossval import fold_index
from glm_core.errors import InputError
from glm_core.model_in_time import simulate_from_fit, smooth_counts
from glm_core.session import Variable, make_session
from glm_core.simulation import CELL_A, simulate_history_session, simulate_session
from glm_core.time_view import sample_log_rates, stretch, time_view
from tests.core import references as ref

N_BINS = [12, 6, 8]


@pytest.fixture(scope="module")
def gappy():
    """The simulation with 5% of its samples invalid (NaN position), in runs."""
    sim = simulate_session(12_000, seed=5)
    position = sim.variables[0].values.copy()
    for start in np.random.default_rng(1).integers(0, 11_900, 12):
        position[start:start + 50] = np.nan
    variables = (Variable("position", position, sim.variables[0].unit), *sim.variables[1:])
    return make_session(bin_width=sim.bin_width, variables=variables, counts=sim.counts,
                        unit_names=sim.unit_names)


@pytest.mark.parametrize("n_basis,pairs", [([None, 5, None], ()), ([None, None, None], [(0, 1)])])
def test_sample_log_rates_equal_the_fits_effects(gappy, n_basis, pairs):
    """A basis (B @ c per slot) and a joint leaf (bx * ny + by), one variable excluded."""
    enc = explorer.encode(gappy, 0, N_BINS, 5, n_basis, pairs)
    include = [True] * (len(enc.leaves) - 1) + [False]
    fit = explorer.fit(enc, include, [1e-3] * len(enc.leaves), "Ridge")
    slots = [enc.grid.cell_slots[v][enc.grid.sample_cell] for v in range(len(enc.leaves))]
    expected = fit.intercept + sum(fit.effects[v][s] for v, s in enumerate(slots))
    np.testing.assert_allclose(sample_log_rates(enc, fit.theta), expected, atol=1e-5)
    some = np.array([3, 0, 4000, 11_000])
    np.testing.assert_allclose(sample_log_rates(enc, fit.theta, some), expected[some], atol=1e-5)


def test_predicted_rate_is_each_fold_predicted_by_its_sklearn_refit(gappy):
    """Ridge with one strength: sklearn's PoissonRegressor(alpha = strength) on the fold's
    training samples predicts its held-out samples; invalid samples have no prediction."""
    n_folds, strength = 4, 1e-3
    enc = explorer.encode(gappy, 0, N_BINS, n_folds)
    include, strengths = [True] * 3, [strength] * 3
    fit = explorer.fit(enc, include, strengths, "Ridge")
    cv = explorer.cross_validate_encoding(enc, include, strengths, "Ridge", fit.theta)
    view = time_view(gappy, enc, fit.theta, cv.theta, 0, gappy.n_samples)
    valid = gappy.valid
    assert not valid.all() and np.all(np.isnan(view.predicted_rate[~valid]))
    design = np.hstack([ref.one_hot(ref.histogram_bins(v.values[valid], n, v.circular)[0], n)
                        for v, n in zip(gappy.variables, N_BINS)])
    y = gappy.unit_counts(0)[valid].astype(float)
    fold = fold_index(y.size, n_folds)
    predicted = view.predicted_rate[valid] * gappy.bin_width
    for k in range(n_folds):
        sk = PoissonRegressor(alpha=strength, solver="newton-cholesky", tol=1e-12,
                              max_iter=1000).fit(design[fold != k], y[fold != k])
        np.testing.assert_allclose(predicted[fold == k], sk.predict(design[fold == k]),
                                   rtol=2e-4)
    np.testing.assert_array_equal(view.observed, gappy.unit_counts(0))
    np.testing.assert_allclose(view.observed_rate * gappy.bin_width,
                               smooth_counts(gappy.unit_counts(0), gappy.bin_width, 0.1))
    np.testing.assert_array_equal(np.isnan(view.behaviour["position"]), ~valid)


def test_without_cross_validation_there_is_no_predicted_rate(gappy):
    enc = explorer.encode(gappy, 0, N_BINS, 4)
    fit = explorer.fit(enc, [True] * 3, [1e-3] * 3, "Ridge")
    view = time_view(gappy, enc, fit.theta, None, 100, 600)
    assert view.predicted_rate.shape == (500,) and np.all(np.isnan(view.predicted_rate))
    np.testing.assert_allclose(view.time, np.arange(100, 600) * gappy.bin_width)
    assert view.simulated is None and not view.ran_away


def test_stretch_stays_inside_the_session(gappy):
    bw = gappy.bin_width
    assert stretch(gappy, 10.0, 20.0) == (round(10 / bw), round(30 / bw))
    assert stretch(gappy, -5.0, 2.0) == (0, round(2 / bw))
    assert stretch(gappy, 1e9, 2.0) == (gappy.n_samples - round(2 / bw), gappy.n_samples)
    assert stretch(gappy, 0.0, 1e9) == (0, gappy.n_samples)
    with pytest.raises(InputError, match="window"):
        stretch(gappy, 0.0, 0.0)


@pytest.fixture(scope="module")
def lag_fit():
    """Cell A of the history simulation: behaviour plus a history leaf (6 functions over
    250 ms), Ridge."""
    session = simulate_history_session(20_000, seed=1)
    enc = with_lags(explorer.encode(session, CELL_A, [20, 8, 12], 5), session,
                    [LagLeaf("history", None, 0.25, 6)])
    fit = explorer.fit(enc, [True, False, True, True], [1e-3] * 4, "Ridge")
    return session, enc, fit


def test_simulation_from_a_lagged_fit_is_the_sequential_sampler_with_its_history(lag_fit):
    session, enc, fit = lag_fit
    start, stop = 5000, 7000
    view = time_view(session, enc, fit.theta, None, start, stop, simulate_seed=3)
    theta = np.asarray(fit.theta, float)
    n_beh = sum(enc.grid.sizes)
    beta = theta[n_beh:n_beh + 6]
    rows = np.where(enc.lag.used[:, None], enc.lag.rows, np.nan).astype(float)
    eta = sample_log_rates(enc, theta) - rows[:, :6] @ beta
    history = fit.filters[0].log_gain
    np.testing.assert_allclose(enc.lag.kernels[0] @ beta, history, atol=1e-6)
    # every sample is valid here: the stretch is samples 5000..6999 with the observed past
    eta[:start] = 0.0
    expected = simulate_from_fit(eta[:stop], history, session.unit_counts(CELL_A)[:stop],
                                 session.bin_width, start=start, seed=3)
    np.testing.assert_array_equal(view.simulated, expected.counts)
    assert view.n_capped == expected.n_capped == 0 and view.simulated.sum() > 0


def test_a_self_exciting_history_runs_away_and_is_reported(lag_fit):
    session, enc, fit = lag_fit
    theta = np.asarray(fit.theta, float).copy()
    n_beh = sum(enc.grid.sizes)
    theta[n_beh:n_beh + LAG_BASIS] = 3.0  # every lag excites: each spike raises the rate
    view = time_view(session, enc, theta, None, 5000, 7000, simulate_seed=0)
    assert view.ran_away and view.n_capped > 1000
    assert view.simulated_rate.max() > 0.5 * view.cap_hz


def test_predicted_rate_of_a_lagged_fit_is_each_folds_dense_refit(lag_fit):
    """The lag columns' part of each sample's rate: the dense pytree GLM refitted on each fold's
    training samples (one-hot position and head direction, the lagged history) predicts its
    held-out samples; the first window's samples have no prediction."""
    session, enc, fit = lag_fit
    include, strengths = [True, False, True, True], [1e-3] * 4
    cv = explorer.cross_validate_encoding(enc, include, strengths, "Ridge", fit.theta)
    view = time_view(session, enc, fit.theta, cv.theta, 0, session.n_samples)
    X = {v.name: ref.one_hot(ref.histogram_bins(v.values, n, v.circular)[0], n)
         for v, n in zip(session.variables, [20, 8, 12]) if v.name != "speed"}
    X["history"] = lagged(session.unit_counts(CELL_A), raised_cosine_log(6, 25))
    y = session.unit_counts(CELL_A).astype(float)
    complete = ~np.isnan(X["history"][:, 0])
    assert np.all(np.isnan(view.predicted_rate[~complete]))
    fold = fold_index(y.size, 5)
    for k in range(5):
        train, test = complete & (fold != k), complete & (fold == k)
        refit = GLM("Ridge", 1e-3).fit({key: x[train] for key, x in X.items()}, y[train])
        expected = np.asarray(refit.predict({key: x[test] for key, x in X.items()}))
        np.testing.assert_allclose(view.predicted_rate[test] * session.bin_width, expected,
                                   rtol=2e-3)
