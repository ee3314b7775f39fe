"""The population's coupling matrix: entries equal explicit dense fits of the pair (the pytree GLM
on np.histogram one-hot leaves plus the driver's lagged counts: held-out gain over the same
samples without the coupling, and the full fit's filter), the simulation's true coupling is found
(cell A's entry from its driver, cell B, is the largest; A's twin C, which only shares A's place
field, adds little once position is in the model), and bad arguments are refused."""

import numpy as np
import pytest

from glm_core import GLM, cross_validate, explorer, lagged, raised_cosine_log
from glm_core.coupling_matrix import (
    COUPLING_BASIS,
    COUPLING_STRENGTH,
    COUPLING_WINDOW_S,
    MAX_UNITS,
    coupling_matrix,
    most_active,
)
from glm_core.errors import InputError
from glm_core.simulation import (
    CELL_A,
    CELL_B,
    CELL_C,
    simulate_history_session,
    simulate_session,
)
from tests.core import references as ref

N_BINS = [20, 8, 12]
INCLUDE = [True, False, True]  # position and head direction; speed has no effect
STRENGTH = 1e-3


@pytest.fixture(scope="module")
def problem():
    session = simulate_history_session(30_000, seed=1)
    enc = explorer.encode(session, 0, N_BINS, 10)
    steps = []
    matrix = coupling_matrix(session, enc, [0, 1, 2], INCLUDE, [STRENGTH] * 3, "Ridge",
                             on_step=lambda done, total: steps.append((done, total)))
    return session, matrix, steps


def dense_pair(session, target, driver):
    """(held-out gain, full fit's filter) of the coupling driver -> target, from the dense GLM."""
    window = round(COUPLING_WINDOW_S / session.bin_width)
    kernels = raised_cosine_log(COUPLING_BASIS, window)
    behaviour = {v.name: ref.one_hot(ref.histogram_bins(v.values, n, v.circular)[0], n)
                 for v, n, keep in zip(session.variables, N_BINS, INCLUDE) if keep}
    coupling = lagged(session.counts[:, driver], kernels)
    # the model without coupling drops the same first samples (a NaN row in a leaf)
    without = {k: np.where(np.isnan(coupling[:, :1]), np.nan, x) for k, x in behaviour.items()}
    y = session.counts[:, target].astype(float)
    strengths = {**{k: STRENGTH for k in behaviour}, "coupling": COUPLING_STRENGTH}
    with_cv = cross_validate(GLM("Ridge", strengths), {**behaviour, "coupling": coupling}, y, 10)
    base_cv = cross_validate(GLM("Ridge", {k: STRENGTH for k in behaviour}), without, y, 10)
    fit = GLM("Ridge", strengths).fit({**behaviour, "coupling": coupling}, y)
    return with_cv.pooled - base_cv.pooled, kernels @ np.asarray(fit.coef_["coupling"], float)


@pytest.mark.parametrize("target,driver", [(0, 1), (1, 0), (2, 0)])
def test_entries_equal_explicit_dense_fits(problem, target, driver):
    session, matrix, _ = problem
    gain, log_gain = dense_pair(session, target, driver)
    np.testing.assert_allclose(matrix.held_out_gain[target, driver], gain, atol=2e-4)
    top = int(np.argmax(np.abs(log_gain)))
    np.testing.assert_allclose(matrix.peak_gain[target, driver], np.exp(log_gain[top]),
                               rtol=2e-3)
    assert matrix.peak_lag_ms[target, driver] == pytest.approx(1e3 * session.bin_width * (top + 1))


def test_the_driver_of_the_driven_unit_is_found(problem):
    session, matrix, steps = problem
    a, b, c = (session.unit_names.index(name) for name in (CELL_A, CELL_B, CELL_C))
    assert matrix.units == session.unit_names
    off_diagonal = ~np.eye(3, dtype=bool)
    assert np.all(np.isnan(matrix.held_out_gain[~off_diagonal]))
    assert np.nanargmax(matrix.held_out_gain) == a * 3 + b  # row A (target), column B (driver)
    assert matrix.held_out_gain[a, b] > 0.05
    assert matrix.held_out_gain[a, c] < 0.2 * matrix.held_out_gain[a, b]
    assert matrix.peak_gain[a, b] > 1.5  # the true filter peaks at gain e at 30 ms
    assert steps[-1] == (9, 9) and [d for d, _ in steps] == list(range(1, 10))


def test_most_active_and_bad_arguments(problem):
    session, _, _ = problem
    spikes = session.counts.sum(0)
    top2 = most_active(session, 2)
    assert set(top2) == set(np.argsort(-spikes)[:2]) and list(top2) == sorted(top2)
    enc = explorer.encode(session, 0, N_BINS, 10)
    args = (INCLUDE, [STRENGTH] * 3)
    with pytest.raises(InputError, match="different units"):
        coupling_matrix(session, enc, [0, 0], *args)
    with pytest.raises(InputError, match=f"2 to {MAX_UNITS}"):
        coupling_matrix(session, enc, [1], *args)
    with pytest.raises(InputError, match="between 2 and"):
        coupling_matrix(session, enc, [0, 1], *args, window_s=0.01)
    single = simulate_session(2000, seed=0)
    assert len(single.unit_names) == 1
    with pytest.raises(InputError, match="at least two units"):
        coupling_matrix(single, explorer.encode(single, 0, N_BINS, 10), most_active(single),
                        *args)
