"""Tuning curves as the user sees them: x at the bin centres, empirical rates as occupancy-
normalised histograms (both from ``np.histogram``, not the explorer's binning), and model rates
on the simulation's ground truth bin by bin."""

import numpy as np
import pytest

from glm_core import explorer, tuning
from glm_core.session import Variable, make_session
from glm_core.simulation import simulate_session

N_BINS = [20, 10, 16]


@pytest.fixture(scope="module")
def simulation():
    session = simulate_session(50_000, seed=3)
    enc = explorer.encode(session, 0, N_BINS)
    fit = explorer.fit(enc, [True] * 3, [1e-4] * 3, "Ridge")
    assert fit.converged
    return session, {c.name: c for c in tuning.tuning_curves(session, enc, fit)}


def histogram(variable, valid, weights, n_bins):
    span = (-np.pi, np.pi) if variable.circular else None
    return np.histogram(variable.values[valid], n_bins, span,
                        weights=None if weights is None else weights[valid])


@pytest.fixture(scope="module")
def masked():
    """The simulation with NaN positions and a validity mask: the histograms must use exactly
    the valid, finite samples."""
    base = simulate_session(8_000, seed=5)
    rng = np.random.default_rng(0)
    position = base.variables[0].values.copy()
    position[rng.choice(position.size, 300, replace=False)] = np.nan
    variables = (Variable("position", position, "a.u."),) + base.variables[1:]
    session = make_session(base.bin_width, variables, base.counts, valid=rng.random(8_000) > 0.2)
    enc = explorer.encode(session, 0, N_BINS)
    fit = explorer.fit(enc, [True] * 3, [1e-3] * 3, "Ridge")
    return session, tuning.tuning_curves(session, enc, fit)


def test_curves_sit_at_the_bin_centres(masked):
    session, curves = masked
    for curve, variable, n in zip(curves, session.variables, N_BINS):
        _, edges = histogram(variable, session.valid, None, n)
        np.testing.assert_allclose(curve.centres, 0.5 * (edges[:-1] + edges[1:]), rtol=0,
                                   atol=1e-9 * np.ptp(edges))


def test_empirical_rates_are_occupancy_normalised_histograms(masked):
    session, curves = masked
    counts = session.unit_counts(0)
    for curve, variable, n in zip(curves, session.variables, N_BINS):
        occupancy, _ = histogram(variable, session.valid, None, n)
        spikes, _ = histogram(variable, session.valid, counts, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = spikes / (occupancy * session.bin_width)
        # float32 totals; one sample in the wrong bin would be off by 1/occupancy >= 1e-4
        np.testing.assert_allclose(curve.empirical, np.where(occupancy > 0, expected, np.nan),
                                   rtol=1e-6)


def test_model_rates_follow_the_ground_truth(simulation):
    """Where a bin holds at least 200 spikes (relative standard error at most 7%), the model rate
    is within 20% of the true rate at the bin centre, and for the tuned variables the two
    correlate at 0.98 or more (speed has no effect: its true curve is flat). Half a bin off (the
    truth read at left edges) breaks both: 30-80% errors, correlations 0.85-0.92."""
    session, curves = simulation
    counts = session.unit_counts(0)
    for name, n in zip(session.names, N_BINS):
        curve = curves[name]
        spikes, _ = histogram(session.variable(name), session.valid, counts, n)
        well_sampled = spikes >= 200
        assert well_sampled.sum() >= 5
        model, truth = curve.model[well_sampled], curve.truth[well_sampled]
        assert np.max(np.abs(model / truth - 1)) < 0.2, name
        if name != "speed":
            assert np.corrcoef(model, truth)[0, 1] >= 0.98, name
