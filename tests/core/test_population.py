"""The population fit (every unit in one call) against per-unit fits, sklearn on the one-hot
design, an independent Skaggs computation; units without spikes; compile counts."""

import jax
import numpy as np
import pytest
from sklearn.linear_model import PoissonRegressor

from glm_core import explorer
from glm_core.basis import bspline
from glm_core.binned import cross_validate_grid, fit_bin_grid
from glm_core.linear_track import load_linear_track
from glm_core.population import fit_population, population_grid, skaggs_information
from glm_core.session import make_session
from glm_core.simulation import simulate_place_cells, simulate_session
from tests.compile_counts import CompileCounter
from tests.core import references as ref

N_BINS = [20, 2, 20]  # linear position, running direction, speed
INCLUDE = [True, True, False]


@pytest.fixture(scope="module")
def recording():
    session = load_linear_track()
    enc = explorer.encode(session, 0, N_BINS)
    return session, enc, population_grid(enc.grid, session.counts[session.valid])


def unit_grid(session, enc, u):
    return enc.grid.with_counts(session.counts[session.valid, u])


def spiking_units(session):
    return [u for u in range(len(session.unit_names))
            if session.counts[session.valid, u].sum() > 0]


def test_population_equals_per_unit_fits_and_cross_validation(recording):
    """All 31 units of the recording, Ridge: each unit's curves, intercept, pseudo-R2 and every
    fold's held-out score equal fit_bin_grid / cross_validate_grid on that unit alone. A fold
    whose training folds hold no spikes (a unit firing in one fold only) scores NaN here, where
    the single-unit score is meaningless (a model fitted to no spikes)."""
    session, enc, pop = recording
    strengths = [1e-3, 3e-3, 1e-2]
    fit = fit_population(pop, enc.n_bins, INCLUDE, strengths, "Ridge", enc.circular)
    units = spiking_units(session)
    assert len(units) >= 25
    for u in units:
        grid = unit_grid(session, enc, u)
        one = fit_bin_grid(grid, enc.n_bins, INCLUDE, strengths, "Ridge", circular=enc.circular)
        for v, n in enumerate(enc.n_bins):
            single = np.exp(one.intercept + one.weights[v, :n] + one.log_others_gain[v])
            single = np.where(one.active[v, :n], single, np.nan) / session.bin_width
            np.testing.assert_allclose(fit.tuning_curves(v, n, session.bin_width)[u], single,
                                       rtol=2e-4, err_msg=f"unit {u}, variable {v}")
        assert fit.intercept[u] == pytest.approx(one.intercept, abs=2e-5)
        assert fit.pseudo_r2[u] == pytest.approx(one.pseudo_r2, abs=1e-5)
        cv = cross_validate_grid(grid, enc.n_bins, INCLUDE, strengths, "Ridge",
                                 circular=enc.circular)
        trained = grid.n_spikes - grid.fold_spikes > 0
        np.testing.assert_allclose(fit.test_bits_per_spike[u][trained],
                                   cv.test_bits_per_spike[trained], atol=1e-4,
                                   err_msg=f"unit {u}")
        assert np.isnan(fit.test_bits_per_spike[u][~trained]).all()
        assert fit.converged[u] == (one.converged and (cv.converged.all() or not trained.all()))


@pytest.mark.parametrize("regularizer,strengths", [
    ("Smooth", [1e-2, 1e-2, 1e-2]), ("GroupLasso", [3e-3, 1e-3, 1e-3]),
    ("Lasso", [1e-4, 1e-4, 1e-4]), ("UnRegularized", [0.0] * 3)])
def test_population_curves_equal_per_unit_fits_for_every_regularizer(recording, regularizer,
                                                                      strengths):
    """Curves are identified for every penalty (a shift of a leaf against the intercept leaves
    them unchanged), so they must agree with the single-unit fits."""
    session, enc, pop = recording
    include = [True, False, False] if regularizer == "UnRegularized" else INCLUDE
    fit = fit_population(pop, enc.n_bins, include, strengths, regularizer, enc.circular,
                         cross_validate=False)
    for u in spiking_units(session)[::6]:
        one = fit_bin_grid(unit_grid(session, enc, u), enc.n_bins, include, strengths,
                           regularizer, circular=enc.circular)
        if not one.converged:  # e.g. UnRegularized with an empty bin: no finite optimum
            continue
        assert fit.converged[u]
        n = enc.n_bins[0]
        single = np.exp(one.intercept + one.weights[0, :n] + one.log_others_gain[0])
        single = np.where(one.active[0, :n], single, np.nan)
        np.testing.assert_allclose(  # a bin of near-zero rate is pinned down loosely
            fit.tuning_curves(0, n, 1.0)[u], single, rtol=5e-4, atol=1e-4 * np.nanmax(single),
            err_msg=f"unit {u}")


def test_population_with_a_spline_basis_matches_sklearn():
    """Linear position on 8 B-splines over 64 fine bins (np.histogram bins, basis from
    glm_core.basis, itself equal to NeMoS), running direction on 2 bins, Ridge: two units'
    coefficients, intercepts and drawn curves against sklearn (float64) on that dense design."""
    session = load_linear_track()
    enc = explorer.encode(session, 0, N_BINS, n_basis=[8, None, None])
    pop = population_grid(enc.grid, session.counts[session.valid])
    s = 3e-3
    fit = fit_population(pop, enc.n_bins, INCLUDE, [s] * 3, "Ridge", enc.circular,
                         cross_validate=False, bases=enc.bases)
    valid = session.valid
    fine, edges = ref.histogram_bins(session.variables[0].values[valid], 64)
    centres = (edges[:-1] + edges[1:]) / 2
    basis = bspline(centres, 8, (edges[0], edges[-1]))
    direction = ref.histogram_bins(session.variables[1].values[valid], 2)[0]
    X = np.hstack([ref.one_hot(fine, 64) @ basis, ref.one_hot(direction, 2)])
    for name in ("t10c18", "t1c20"):
        u = session.unit_names.index(name)
        sk = PoissonRegressor(alpha=s, solver="newton-cholesky", tol=1e-12, max_iter=1000)
        sk.fit(X, session.counts[valid, u].astype(float))
        np.testing.assert_allclose(fit.weights[u, 0, :8], sk.coef_[:8], atol=5e-5)
        np.testing.assert_allclose(fit.weights[u, 1, :2], sk.coef_[8:], atol=5e-5)
        assert fit.intercept[u] == pytest.approx(sk.intercept_, abs=5e-5)
        gain = np.log(np.mean(np.exp(X[:, 8:] @ sk.coef_[8:])))  # direction at its mean effect
        expected = np.exp(sk.intercept_ + basis @ sk.coef_[:8] + gain) / session.bin_width
        np.testing.assert_allclose(fit.tuning_curves(0, 64, session.bin_width)[u], expected,
                                   rtol=2e-4)


def test_population_matches_sklearn_on_the_one_hot_design(recording):
    """Two units against sklearn's PoissonRegressor (float64) on a design built from np.histogram
    bins: coefficients, intercept, and the held-out bits/spike of 10 folds of contiguous
    sections (section j of 50 in fold j mod 10), each fold refitted by sklearn."""
    session, enc, pop = recording
    s = 3e-3
    fit = fit_population(pop, enc.n_bins, INCLUDE, [s] * 3, "Ridge", enc.circular)
    valid = session.valid
    designs = [ref.one_hot(ref.histogram_bins(session.variables[v].values[valid], N_BINS[v])[0],
                           N_BINS[v]) for v in (0, 1)]
    X = np.hstack(designs)
    folds = np.zeros(X.shape[0], int)
    for j, section in enumerate(np.array_split(np.arange(X.shape[0]), 50)):
        folds[section] = j % 10
    for name in ("t10c18", "t1c20"):
        u = session.unit_names.index(name)
        y = session.counts[valid, u].astype(float)
        sk = PoissonRegressor(alpha=s, solver="newton-cholesky", tol=1e-12, max_iter=1000)
        sk.fit(X, y)
        np.testing.assert_allclose(fit.weights[u, 0, :20], sk.coef_[:20], atol=5e-5)
        np.testing.assert_allclose(fit.weights[u, 1, :2], sk.coef_[20:], atol=5e-5)
        assert fit.intercept[u] == pytest.approx(sk.intercept_, abs=5e-5)
        held_out = []
        for k in range(10):
            test = folds == k
            model = PoissonRegressor(alpha=s, solver="newton-cholesky", tol=1e-12,
                                     max_iter=1000).fit(X[~test], y[~test])
            mean_rate = np.full(test.sum(), y[~test].mean())
            gain = (ref.mean_log_likelihood(y[test], model.predict(X[test]))
                    - ref.mean_log_likelihood(y[test], mean_rate)) * test.sum()
            held_out.append(gain / y[test].sum() / np.log(2))
        np.testing.assert_allclose(fit.test_bits_per_spike[u], held_out, atol=2e-4)
        spikes = np.bincount(folds, y, 10)  # pooled: all folds' gains over all their spikes
        assert fit.held_out[u] == pytest.approx(np.sum(np.multiply(held_out, spikes))
                                                / spikes.sum(), abs=2e-4)


def skaggs_reference(position_bin, y, n_bins):
    """Skaggs information written out sample by sample (float64 numpy, bins visited only)."""
    occupancy = np.array([np.sum(position_bin == k) for k in range(n_bins)], float)
    spikes = np.array([y[position_bin == k].sum() for k in range(n_bins)], float)
    mean_rate = y.sum() / y.size
    total = 0.0
    for k in range(n_bins):
        if occupancy[k] > 0 and spikes[k] > 0:
            rate = spikes[k] / occupancy[k]
            total += occupancy[k] / y.size * rate / mean_rate * np.log2(rate / mean_rate)
    return total


def test_skaggs_information_of_every_unit_matches_the_formula(recording):
    session, enc, pop = recording
    fit = fit_population(pop, enc.n_bins, INCLUDE, [1e-3] * 3, "Ridge", enc.circular,
                         cross_validate=False)
    position_bin = ref.histogram_bins(session.variables[0].values[session.valid], N_BINS[0])[0]
    for u in spiking_units(session):
        y = session.counts[session.valid, u]
        assert fit.skaggs[u, 0] == pytest.approx(skaggs_reference(position_bin, y, 20),
                                                 rel=1e-9, abs=1e-12)


def test_skaggs_information_closed_forms():
    """All spikes in a bin holding half the time: 1 bit/spike; a rate following the occupancy:
    0; an unvisited bin is ignored; no spikes: NaN."""
    np.testing.assert_allclose(
        skaggs_information(np.array([1.0, 1.0, 2.0, 0.0]),
                           np.array([[0, 0, 4, 0], [1, 1, 2, 0], [0, 0, 0, 0]])),
        [1.0, 0.0, np.nan], atol=1e-12)


def test_units_without_spikes_are_reported_not_fitted(recording):
    """The recording has units without spikes in the running samples; a simulated session adds a
    silent unit and one whose spikes all fall in one fold. They are flagged, their scores NaN;
    the other units' fits are unaffected."""
    session, enc, pop = recording
    silent = [u for u in range(len(session.unit_names)) if u not in spiking_units(session)]
    assert silent
    fit = fit_population(pop, enc.n_bins, INCLUDE, [1e-3] * 3, "Ridge", enc.circular)
    for u in silent:
        assert not fit.has_spikes[u] and not fit.converged[u]
        assert np.isnan([fit.held_out[u], fit.pseudo_r2[u], *fit.skaggs[u]]).all()
        assert np.isnan(fit.tuning_curves(0, 20, session.bin_width)[u]).all()
    assert fit.converged[spiking_units(session)].all()

    sim = simulate_session(5_000, seed=1)
    counts = simulate_place_cells(sim, 2, seed=1).astype(float)
    one_fold = np.zeros(5_000)
    one_fold[:40] = 1  # the first section belongs to fold 0 alone
    counts = np.column_stack([counts, np.zeros(5_000), one_fold])
    sim = make_session(sim.bin_width, sim.variables, counts)
    enc = explorer.encode(sim, 0, [20, 10, 16])
    fit = fit_population(population_grid(enc.grid, counts), enc.n_bins, [True] * 3, [1e-2] * 3,
                         "Ridge", enc.circular)
    np.testing.assert_array_equal(fit.has_spikes, [True, True, False, True])
    assert np.isfinite(fit.held_out[:2]).all() and np.isnan(fit.held_out[2:]).all()
    assert np.isfinite(fit.pseudo_r2[[0, 1, 3]]).all()


def test_the_servers_warm_up_compiles_the_first_fit_all_units(fresh_process):
    """After warm_population (run by warm_up.py before the first visitor), a new session on the
    built-in recording fits all units with held-out scores, and then with another strength and
    regularizer settings within the warmed ones, compiling nothing."""
    from widgets.state import ExplorerState
    from widgets.vocabulary import RECORDING
    from widgets.warm import warm_population

    warm_population()
    state = ExplorerState(source=RECORDING)
    state.start()
    with CompileCounter() as counter:
        state.update_population()
        state.variables[0].log_strength = -1.0
    assert state.population is not None and np.isfinite(state.population.held_out).any()
    assert counter.count == 0


def test_strengths_units_and_bins_within_a_bucket_never_recompile():
    """After one fit (with held-out scores), new strengths, variables, bin counts and another
    unit count within the buckets (17..32 units, 1025..2048 cells, 9..16 bins) compile nothing.
    Caches are cleared first."""
    jax.clear_caches()
    session = simulate_session(20_000, seed=2)
    counts = simulate_place_cells(session, 31, seed=2)
    enc = explorer.encode(session, 0, [16, 10, 16])
    pop = population_grid(enc.grid, counts[session.valid][:, :20])
    first = fit_population(pop, enc.n_bins, [True] * 3, [1e-3] * 3, "Ridge", enc.circular)
    with CompileCounter() as counter:
        again = fit_population(pop, enc.n_bins, [True] * 3, [1e-1] * 3, "Ridge", enc.circular,
                               init=first)
        fit_population(pop, enc.n_bins, [True, False, True], [1e-2] * 3, "Ridge", enc.circular,
                       init=again)
        rebinned = explorer.with_bins(enc, session, 0, 14)
        more = population_grid(rebinned.grid, counts[session.valid])
        assert (more.slots, more.cells.shape) == (pop.slots, pop.cells.shape) == (16, (3, 2048))
        fit_population(more, rebinned.n_bins, [True] * 3, [1e-3] * 3, "Ridge", enc.circular)
    assert counter.count == 0


def test_sorted_map_orders_units_by_peak_and_normalises_rows():
    """Place cells with known centres come out ordered by centre, each row peaking at 1; a
    silent unit comes last, all NaN."""
    sim = simulate_session(50_000, seed=4)
    counts = np.column_stack([simulate_place_cells(sim, 6, seed=4), np.zeros(50_000, int)])
    enc = explorer.encode(sim, 0, [24, 10, 16])
    fit = fit_population(population_grid(enc.grid, counts), enc.n_bins, [True, False, False],
                         [1e-3] * 3, "Ridge", enc.circular, cross_validate=False)
    order, rows = fit.sorted_map(0, 24)
    rng = np.random.default_rng(4)  # the centres simulate_place_cells drew
    position = sim.variable("position").values
    centres = rng.uniform(*np.percentile(position, [5, 95]), 6)
    np.testing.assert_array_equal(order, [*np.argsort(centres), 6])
    np.testing.assert_allclose(np.nanmax(rows[:6], 1), 1.0)
    assert np.isnan(rows[6]).all()


def test_the_page_state_population_follows_refits_and_matches_the_unit_curve():
    """After "Fit all units", a slider change refits the population with the new settings: the
    selected unit's population curve equals the page's own curve, before and after; the table
    has a row per unit and marks the silent ones."""
    from widgets.population import population_table
    from widgets.state import ExplorerState
    from widgets.vocabulary import RECORDING

    state = ExplorerState(source=RECORDING)
    state.start()
    state.update_population()
    u = state.session.unit_names.index(state.unit)
    for log_strength in (None, -0.5):
        if log_strength is not None:
            state.variables[0].log_strength = log_strength
        page_curve = next(c for c in state.curves if c.name == "linear position").model
        n = state.encoding.n_bins[0]
        np.testing.assert_allclose(
            state.population.tuning_curves(0, n, state.session.bin_width)[u], page_curve,
            rtol=5e-4)
    state.variables[0].param.update(encoding="B-spline", n_basis=8)  # a basis: smooth curves
    page_curve = next(c for c in state.curves if c.name == "linear position").model
    assert page_curve.size == 64
    np.testing.assert_allclose(
        state.population.tuning_curves(0, 64, state.session.bin_width)[u], page_curve,
        rtol=5e-4)
    table = population_table(state, 0)
    assert list(table["unit"]) == list(state.session.unit_names)
    assert set(table.loc[table["spikes"] == 0, "status"]) == {"no spikes"}
