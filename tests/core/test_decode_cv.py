"""Cross-validated decoding (glm_core.decode_cv): every fold decoded with maps fitted without it,
against a float64 reference (sklearn fits of each fold's complement on a np.histogram one-hot
design, a scipy Poisson posterior window by window); the open-field population's ground truth
(median error bounds, the continuity prior lowers it), with the model's 2-D map (its joint leaf)
as well as a product grid of two 1-D variables; and the bad inputs."""

import dataclasses

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import poisson
from sklearn.linear_model import PoissonRegressor

from glm_core import explorer
from glm_core.decode_cv import decode_session, decode_windows, fold_maps
from glm_core.errors import InputError
from glm_core.open_field import simulate_open_field
from glm_core.population import fit_population, leaf_design, population_grid

from . import references as ref

HD, SPEED = 2, 3  # the open field's variables: x, y, head direction, speed
N_BINS = [10, 10, 8, 5]
FOLDS = 3
STRENGTH = 1e-2


def fitted(session, include, n_bins=N_BINS, folds=FOLDS, regularizer="Ridge",
           strengths=STRENGTH):
    enc = explorer.encode(session, 0, n_bins, folds)
    pop = population_grid(enc.grid, session.counts[session.valid])
    fit = fit_population(pop, enc.n_bins, include, [strengths] * len(n_bins), regularizer,
                         enc.circular, tol=1e-7)
    return enc, pop, fit


@pytest.fixture(scope="module")
def small():
    """6 units, T = 4000, head direction and speed in the model (Ridge), 3 folds."""
    session = simulate_open_field(4000, seed=2, n_units=6)
    return (session, *fitted(session, [False, False, True, True]))


def reference_decoding(session, window_bins):
    """Float64: per fold, sklearn fits of every unit on the other folds (one-hot head direction
    and speed from np.histogram bins, Ridge as alpha), rates per head-direction bin with speed at
    its training mean of exp(effect); windows of each contiguous section decoded by summing
    scipy's Poisson log pmf."""
    valid = session.valid
    hd = session.variables[HD].values[valid]
    hd_bin, hd_edges = ref.histogram_bins(hd, N_BINS[HD], circular=True)
    speed_bin, _ = ref.histogram_bins(session.variables[SPEED].values[valid], N_BINS[SPEED])
    X = np.hstack([ref.one_hot(hd_bin, N_BINS[HD]), ref.one_hot(speed_bin, N_BINS[SPEED])])
    n = X.shape[0]
    fold = np.zeros(n, int)
    sections = np.array_split(np.arange(n), 5 * FOLDS)
    for j, section in enumerate(sections):
        fold[section] = j % FOLDS
    counts = session.counts[valid].astype(float)
    centres = 0.5 * (hd_edges[:-1] + hd_edges[1:])
    posteriors, true = [], []
    for section in sections:
        k = fold[section[0]]
        train = fold != k
        rates = []
        for u in range(counts.shape[1]):
            model = PoissonRegressor(alpha=STRENGTH, solver="newton-cholesky", tol=1e-12,
                                     max_iter=1000).fit(X[train], counts[train, u])
            w_hd, w_speed = model.coef_[:N_BINS[HD]], model.coef_[N_BINS[HD]:]
            speed_gain = np.mean(np.exp(w_speed[speed_bin[train]]))
            rates.append(np.exp(model.intercept_ + w_hd) * speed_gain)  # per bin
        rates = np.array(rates)
        for start in range(section[0], section[-1] + 2 - window_bins, window_bins):
            window = slice(start, start + window_bins)
            y = counts[window].sum(0)
            log_post = np.array([poisson.logpmf(y, rates[:, s] * window_bins).sum()
                                 for s in range(N_BINS[HD])])
            posteriors.append(np.exp(log_post - logsumexp(log_post)))
            true.append(np.angle(np.mean(np.exp(1j * hd[window]))))
    posteriors, true = np.array(posteriors), np.array(true)
    decoded = centres[np.argmax(posteriors, 1)]
    error = np.abs(decoded - true)
    return posteriors, true, decoded, np.minimum(error, 2 * np.pi - error)


def test_cross_validated_decoding_matches_the_float64_reference(small):
    session, enc, pop, fit = small
    window_bins = 5
    decoding = decode_session(session, enc, fit, pop, "head direction",
                              window_bins * session.bin_width)
    posterior, true, decoded, error = reference_decoding(session, window_bins)
    assert decoding.window_bins == window_bins and decoding.posterior.shape == posterior.shape
    np.testing.assert_allclose(decoding.posterior, posterior, atol=2e-3)
    np.testing.assert_allclose(decoding.true[:, 0], true, atol=1e-9)
    np.testing.assert_allclose(decoding.decoded[:, 0], decoded, atol=1e-9)
    np.testing.assert_allclose(decoding.error, error, atol=1e-9)
    assert decoding.median_error == pytest.approx(np.median(error))
    assert decoding.unit == "rad" and decoding.circular


def test_error_against_units_and_exports(small):
    session, enc, pop, fit = small
    decoding = decode_session(session, enc, fit, pop, "head direction", 0.2)
    assert decoding.units_curve.tolist() == [1, 2, 3, 4, 6]
    assert decoding.units_error[-1] == pytest.approx(decoding.median_error)
    order = np.argsort(-fit.held_out, kind="stable")
    assert decoding.units == tuple(session.unit_names[u] for u in order)
    lines = decoding.to_csv().splitlines()
    assert lines[0] == ('"time_s","fold","true head direction","decoded head direction",'
                        '"error (rad)"')
    assert len(lines) == decoding.error.size + 1
    summary = decoding.summary()
    assert summary["median_error"] == decoding.median_error
    assert summary["prior"] == "flat" and summary["window_bins"] == 10


@pytest.fixture(scope="module")
def population():
    """The open field's population at the page's defaults: T = 20,000, 60 units, every
    variable in bins (20, 20, 16, 20), Smooth at 1e-3, 10 folds."""
    session = simulate_open_field(20_000, seed=0, n_units=60)
    return (session, *fitted(session, [True] * 4, [20, 20, 16, 20], 10, "Smooth", 1e-3))


def test_the_population_simulation_decodes_position_near_the_truth(population):
    """Measured at seed 0: median error 17.2 cm flat, 9.0 cm with the continuity prior (sigma 2
    bins per window) at 250 ms windows; head direction 0.16 rad."""
    session, enc, pop, fit = population
    flat = decode_session(session, enc, fit, pop, ("x", "y"), 0.25)
    memory = decode_session(session, enc, fit, pop, ("x", "y"), 0.25, sigma=2.0)
    assert flat.median_error < 21.0 and flat.unit == "cm"
    assert memory.median_error < 0.75 * flat.median_error
    assert memory.median_error < 11.0
    # the true position: errors are distances from it (a 100 cm box)
    assert np.all(flat.error <= np.hypot(100, 100))
    np.testing.assert_allclose(flat.error, np.hypot(*(flat.decoded - flat.true).T))
    heading = decode_session(session, enc, fit, pop, "head direction", 0.25)
    assert heading.median_error < 0.2
    # more units decode better: all 60 beat the best few
    assert flat.units_error[-1] < 0.5 * flat.units_error[0]


def test_bad_input_gets_a_clear_message(small):
    session, enc, pop, fit = small
    with pytest.raises(InputError, match="x is not in the model"):
        decode_session(session, enc, fit, pop, "x", 0.1)
    with pytest.raises(InputError, match="decode one variable or two"):
        decode_session(session, enc, fit, pop, "altitude", 0.1)
    with pytest.raises(InputError, match="shorter than a bin"):
        decode_session(session, enc, fit, pop, "head direction", 0.005)
    with pytest.raises(InputError, match="longer than a fold's shortest contiguous section"):
        decode_session(session, enc, fit, pop, "head direction", 10.0)
    no_cv = dataclasses.replace(fit, cv_theta=None)
    with pytest.raises(InputError, match="cross-validation"):
        decode_session(session, enc, no_cv, pop, "head direction", 0.1)


def test_units_without_spikes_are_left_out_and_named():
    session = simulate_open_field(4000, seed=2, n_units=6)
    counts = session.counts.copy()
    counts[:, [1, 3]] = 0
    silent = dataclasses.replace(session, counts=counts)
    enc, pop, fit = fitted(silent, [False, False, True, True])
    decoding = decode_session(silent, enc, fit, pop, "head direction", 0.1)
    assert set(decoding.units) == set(np.delete(silent.unit_names, [1, 3]))
    assert decoding.notes == tuple(f"{silent.unit_names[u]}: no spikes, left out" for u in (1, 3))
    counts[:, 2:] = 0
    alone = dataclasses.replace(session, counts=counts)
    enc, pop, fit = fitted(alone, [False, False, True, True])
    with pytest.raises(InputError, match="at least 2 units with spikes; this session has 1"):
        decode_session(alone, enc, fit, pop, "head direction", 0.1)


def test_the_open_field_population_keeps_its_first_four_units():
    four = simulate_open_field(3000, seed=1)
    many = simulate_open_field(3000, seed=1, n_units=12)
    np.testing.assert_array_equal(many.counts[:, :4], four.counts)
    assert many.unit_names[4:8] == ("place cell 5", "grid cell 6", "place cell 7",
                                    "head-direction cell 8")
    assert set(many.unit_truth) == set(many.unit_names)
    with pytest.raises(InputError, match="4 to 200 units"):
        simulate_open_field(3000, n_units=3)


MAP_BINS = [6, 5, 8, 5]  # x, y (the 2-D map), head direction, speed


@pytest.fixture(scope="module")
def small_map():
    """6 units, T = 4000, the 2-D map (x, y: 6 x 5) and head direction in the model (Ridge)."""
    session = simulate_open_field(4000, seed=3, n_units=6)
    enc = explorer.encode(session, 0, MAP_BINS, FOLDS, pairs=[(0, 1)])
    pop = population_grid(enc.grid, session.counts[session.valid])
    n_bins, circular, bases = leaf_design(enc)
    fit = fit_population(pop, n_bins, [True, True, False], [STRENGTH] * 3, "Ridge", circular,
                         tol=1e-7, bases=bases)
    return session, enc, pop, fit


def test_the_2d_map_decodes_with_its_joint_leaf_as_the_float64_reference(small_map):
    """The model's joint leaf: states are its 6 x 5 bins; sklearn fits every fold's complement
    on a one-hot joint-bin design (and head direction, at its training mean effect)."""
    session, enc, pop, fit = small_map
    window_bins = 5
    decoding = decode_session(session, enc, fit, pop, ("x", "y"), window_bins * session.bin_width)
    valid = session.valid
    x, y = (session.variables[v].values[valid] for v in (0, 1))
    x_bin, x_edges = ref.histogram_bins(x, MAP_BINS[0])
    y_bin, y_edges = ref.histogram_bins(y, MAP_BINS[1])
    hd_bin, _ = ref.histogram_bins(session.variables[HD].values[valid], MAP_BINS[HD], True)
    n_joint = MAP_BINS[0] * MAP_BINS[1]
    X = np.hstack([ref.one_hot(x_bin * MAP_BINS[1] + y_bin, n_joint),
                   ref.one_hot(hd_bin, MAP_BINS[HD])])
    fold = np.zeros(x.size, int)
    sections = np.array_split(np.arange(x.size), 5 * FOLDS)
    for j, section in enumerate(sections):
        fold[section] = j % FOLDS
    counts = session.counts[valid].astype(float)
    rates = []
    for k in range(FOLDS):
        train = fold != k
        per_unit = []
        for u in range(counts.shape[1]):
            model = PoissonRegressor(alpha=STRENGTH, solver="newton-cholesky", tol=1e-12,
                                     max_iter=1000).fit(X[train], counts[train, u])
            gain = np.mean(np.exp(model.coef_[n_joint:][hd_bin[train]]))
            per_unit.append(np.exp(model.intercept_ + model.coef_[:n_joint]) * gain)
        rates.append(np.array(per_unit))
    posterior, true = [], []
    for section in sections:
        lam = rates[fold[section[0]]] * window_bins  # (units, states) per window
        for start in range(section[0], section[-1] + 2 - window_bins, window_bins):
            window = slice(start, start + window_bins)
            log_post = poisson.logpmf(counts[window].sum(0)[:, None], lam).sum(0)
            posterior.append(np.exp(log_post - logsumexp(log_post)))
            true.append([x[window].mean(), y[window].mean()])
    posterior, true = np.array(posterior), np.array(true)
    centres = [0.5 * (e[:-1] + e[1:]) for e in (x_edges, y_edges)]
    mode = np.argmax(posterior, 1)
    decoded = np.stack([centres[0][mode // MAP_BINS[1]], centres[1][mode % MAP_BINS[1]]], 1)
    assert decoding.names == ("x", "y") and decoding.grid_shape == (6, 5)
    np.testing.assert_allclose(decoding.posterior, posterior, atol=2e-3)
    np.testing.assert_allclose(decoding.true, true, atol=1e-9)
    np.testing.assert_allclose(decoding.decoded, decoded, atol=1e-9)
    np.testing.assert_allclose(decoding.error, np.hypot(*(decoded - true).T), atol=1e-9)
    # the map's variables in the other order decode the same map
    swapped = decode_session(session, enc, fit, pop, ("y", "x"), window_bins * session.bin_width)
    np.testing.assert_array_equal(swapped.posterior, decoding.posterior)
    with pytest.raises(InputError, match="x is part of the model's 2-D map: decode the map"):
        decode_session(session, enc, fit, pop, "x", 0.1)
    with pytest.raises(InputError, match="speed is not in the model"):
        decode_session(session, enc, fit, pop, "speed", 0.1)


def test_the_open_fields_default_2d_map_decodes_near_the_truth():
    """The page's default model: the 20 x 20 map, head direction and speed (Smooth 1e-3, 10
    folds), 60 units, T = 20,000. Measured at seed 0: median error 9.5 cm flat, 6.1 cm with the
    continuity prior (sigma 2 bins per window) at 250 ms windows."""
    session = simulate_open_field(20_000, seed=0, n_units=60)
    enc = explorer.encode(session, 0, [20, 20, 16, 20], 10, pairs=[(0, 1)])
    pop = population_grid(enc.grid, session.counts[session.valid])
    n_bins, circular, bases = leaf_design(enc)
    fit = fit_population(pop, n_bins, [True] * 3, [1e-3] * 3, "Smooth", circular, bases=bases)
    maps = fold_maps(session, enc, fit, pop, ("x", "y"))
    flat = decode_windows(session, enc, maps, 0.25)
    memory = decode_windows(session, enc, maps, 0.25, sigma=2.0)
    assert flat.grid_shape == (20, 20) and flat.posterior.shape[1] == 400
    np.testing.assert_allclose(flat.error, np.hypot(*(flat.decoded - flat.true).T))
    assert flat.median_error < 12.0 and memory.median_error < 7.5
    assert memory.median_error < 0.75 * flat.median_error
    assert flat.units_error[-1] < 0.5 * flat.units_error[0]
