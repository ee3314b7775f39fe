"""Shuffle significance (glm_core.shuffle) and the population's joint 2-D leaf: the statistic of
one shift against a direct single-unit cross-validation of the shifted train, tuned and untuned
simulated units, bad shifts, and every unit's 2-D map against the single-unit fit."""

import jax
import numpy as np
import pytest

from glm_core import explorer
from glm_core.errors import InputError
from glm_core.linear_track import load_linear_track
from glm_core.open_field import simulate_open_field
from glm_core.population import fit_population, leaf_design, population_grid
from glm_core.session import make_session
from glm_core.shuffle import Significance, shift_samples, shuffle_significance
from glm_core.simulation import simulate_place_cells, simulate_session
from tests.compile_counts import CompileCounter


def significance(session, n_bins, include, strengths, regularizer, **kwargs):
    enc = explorer.encode(session, 0, n_bins)
    design, circular, bases = leaf_design(enc)
    return shuffle_significance(enc.grid, session.counts, session.valid, session.bin_width,
                                design, include, strengths, regularizer, circular, bases,
                                **kwargs)


@pytest.mark.parametrize("regularizer", ["Smooth", "Ridge", "Lasso"])
def test_one_shift_equals_a_direct_cross_validation_of_the_shifted_train(regularizer):
    """The recording (valid samples: running only), linear position and running direction:
    each unit's null score for one shift of 100.4 s equals explorer.cross_validate_encoding of
    a session whose counts are rolled by that shift (the whole session's time bins), and the
    observed score equals the unshifted one. Smooth and Ridge run on the dense design, Lasso on
    the population solver."""
    session = load_linear_track()
    n_bins, include, strengths = [20, 2, 20], [True, True, False], [1e-2, 1e-3, 1e-3]
    shift_s = 100.4
    sig = significance(session, n_bins, include, strengths, regularizer, shifts_s=[shift_s])
    shift = int(round(shift_s / session.bin_width))
    rolled = make_session(session.bin_width, session.variables,
                          np.roll(session.counts, shift, axis=0), session.unit_names,
                          valid=session.valid)
    for u in (0, 5, 17, 30):
        for data, score in ((rolled, sig.null[u, 0]), (session, sig.observed[u])):
            enc = explorer.encode(data, u, n_bins)
            cv = explorer.cross_validate_encoding(enc, include, strengths, regularizer)
            if np.isnan(cv.pooled):
                assert np.isnan(score)
            else:
                assert score == pytest.approx(cv.pooled, abs=2e-4), f"unit {u}"


def test_tuned_units_are_significant_and_untuned_ones_are_not():
    """Simulated place cells beside untuned units (a constant 1 Hz Poisson train), position in
    20 bins, Smooth, 200 shifts: every place cell has p < 0.01 (the smallest p is 1/201), and at
    least 95% of the untuned units' p-values over 8 seeds are above 0.05 (their p is uniform:
    5% of them fall below by chance)."""
    untuned_p = []
    for seed in range(8):
        session = simulate_session(12_000, seed=seed, bin_width=0.025)  # 300 s
        rng = np.random.default_rng(100 + seed)
        counts = np.column_stack([simulate_place_cells(session, 3, seed=seed),
                                  rng.poisson(0.025, (12_000, 12))])
        session = make_session(session.bin_width, session.variables, counts)
        sig = significance(session, [20, 10, 16], [True, False, False], [1e-2] * 3, "Smooth")
        assert sig.null.shape == (15, 200)
        assert np.all(sig.shifts_s >= 20.0) and np.all(sig.shifts_s <= 280.0)
        np.testing.assert_array_less(sig.p_value[:3], 0.01)
        assert np.all(sig.z_score[:3] > 3)
        untuned_p.extend(sig.p_value[3:])
    assert np.mean(np.asarray(untuned_p) > 0.05) >= 0.95


def test_shifts_must_fit_in_the_session():
    """Shifts stay 20 s from either end: a 30 s session has none, a shift past the end is
    refused, and the drawn shifts lie in range."""
    with pytest.raises(InputError, match="too short"):
        shift_samples(1_500, 0.02)
    with pytest.raises(InputError, match="between 20 s and 80.0 s"):
        shift_samples(5_000, 0.02, shifts_s=[150.0])
    shifts = shift_samples(5_000, 0.02, n_shuffles=500, seed=3) * 0.02
    assert shifts.min() >= 20.0 and shifts.max() <= 80.0
    session = simulate_session(1_500, seed=0)
    with pytest.raises(InputError, match="too short"):
        significance(session, [10, 10, 8], [True] * 3, [1e-2] * 3, "Smooth")


def test_progress_reaches_the_total_and_may_cancel():
    session = simulate_session(6_000, seed=1)
    steps = []
    significance(session, [10, 10, 8], [True, False, True], [1e-2] * 3, "Smooth",
                 n_shuffles=300, on_step=lambda done, total: steps.append((done, total)))
    assert steps[-1] == (300, 300) and all(t == 300 for _, t in steps)

    class Stop(Exception):
        pass

    def stop(done, total):
        raise Stop

    with pytest.raises(Stop):
        significance(session, [10, 10, 8], [True, False, True], [1e-2] * 3, "Smooth",
                     on_step=stop)


def test_every_units_2d_map_equals_the_single_unit_fit():
    """The open field, x-y as one 20 x 20 leaf plus head direction, Smooth: each unit's
    population map (its curve on the joint leaf, the others at their mean) equals
    explorer.fit of that unit with the pair, to 1e-4 relative."""
    session = simulate_open_field(20_000, seed=3)
    enc = explorer.encode(session, 0, [20, 20, 16, 20], pairs=[(0, 1)])
    n_bins, circular, bases = leaf_design(enc)
    assert n_bins == ((20, 20), 16, 20)
    include, strengths = [True, True, False], [1e-3, 1e-2, 1e-2]
    pop = population_grid(enc.grid, session.counts[session.valid])
    fit = fit_population(pop, n_bins, include, strengths, "Smooth", circular,
                         cross_validate=False, bases=bases)
    maps = fit.tuning_curves(0, 400, session.bin_width)
    for u in range(len(session.unit_names)):
        one = explorer.fit(explorer.with_unit(enc, session, u), include, strengths, "Smooth")
        single = np.exp(one.intercept + one.weights[0, :400] + one.log_others_gain[0])
        np.testing.assert_allclose(maps[u], single / session.bin_width, rtol=1e-4,
                                   err_msg=f"unit {u}")
        assert fit.converged[u] and one.converged


def test_p_value_and_z_score_closed_forms():
    """p = (1 + #null >= observed) / (1 + shuffles), ties counted; z against the null's mean and
    (population) sd; a unit without a score, or a NaN null entry, as documented."""
    sig = Significance(observed=np.array([1.0, 3.0, np.nan, 1.0]),
                       null=np.array([[0.0, 1.0, 2.0, 0.5], [0.0, 1.0, 2.0, 0.5],
                                      [0.0, 1.0, 2.0, 0.5], [0.0, np.nan, 2.0, 0.5]]),
                       shifts_s=np.array([20.0, 30.0, 40.0, 50.0]))
    np.testing.assert_allclose(sig.p_value, [3 / 5, 1 / 5, np.nan, 2 / 5])
    null = np.array([0.0, 1.0, 2.0, 0.5])
    expected = (np.array([1.0, 3.0]) - null.mean()) / null.std()
    np.testing.assert_allclose(sig.z_score[:2], expected)
    assert np.isnan(sig.z_score[2])
    rest = np.array([0.0, 2.0, 0.5])
    assert sig.z_score[3] == pytest.approx((1.0 - rest.mean()) / rest.std())


def test_the_shuffle_kernel_compiles_once_per_model_whatever_the_seed_or_unit_count():
    """After the caches are cleared, a first significance run (60 units, position and head
    direction, Smooth, the dense design) compiles its kernel once, beside four transfers of new
    shapes to the device (cells, occupancy, the units' and a batch's spike tables); another
    seed, more shuffles and 57 units (the same bucket of 256 trains per batch) compile
    nothing."""
    jax.clear_caches()
    sim = simulate_session(8_000, seed=5, bin_width=0.025)
    counts = simulate_place_cells(sim, 60, seed=5)
    enc = explorer.encode(make_session(sim.bin_width, sim.variables, counts), 0, [20, 10, 16])
    n_bins, circular, bases = leaf_design(enc)

    def run(units, **kwargs):
        shuffle_significance(enc.grid, counts[:, :units], sim.valid, sim.bin_width, n_bins,
                             [True, False, True], [1e-2] * 3, "Smooth", circular, bases,
                             **kwargs)

    with CompileCounter() as first:
        run(60, n_shuffles=8)
    with CompileCounter() as again:
        run(60, n_shuffles=12, seed=1)
        run(57, n_shuffles=8, seed=2)
    assert (first.count, again.count) == (5, 0)
