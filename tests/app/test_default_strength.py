"""Issue 18, item 13b: the default strength follows the unit's spikes per bin
(``glm_core.explorer.default_log_strength``), so low-rate cells are not over-smoothed at the
default, on the real linear-track recording and on a low-rate head-direction upload; the
simulation's default page keeps strength 1e-3 and its curves."""

import numpy as np
import pytest

from glm_core.explorer import default_log_strength
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING, UPLOAD

from .test_state import npz_bytes

# units of the real recording firing under 0.5 Hz over the run (81 to 210 spikes)
LOW_RATE_UNITS = ("t1c14", "t10c10", "t10c1", "t10c6")


def peak_ratio(curve) -> float:
    """The GLM curve's peak over the empirical rate's peak."""
    return float(np.nanmax(curve.model) / np.nanmax(curve.empirical))


@pytest.fixture(scope="module")
def recording():
    state = ExplorerState(source=RECORDING)
    state.start()
    return state


@pytest.mark.parametrize("unit", LOW_RATE_UNITS)
def test_low_rate_place_cells_keep_their_peak_at_the_default(recording, unit):
    state = recording
    state.unit = unit
    position, direction = state.variables[:2]
    direction.include = False  # the position curve is then the empirical rate's model
    try:
        ratio = peak_ratio(state.curves[0])
        assert 0.8 <= ratio <= 1.2, f"{unit}: GLM peak / empirical peak = {ratio:.2f}"
        assert position.log_strength == default_log_strength(state.session, unit) < -3.5
    finally:
        direction.include = True


def head_direction_upload(seed=0, n=90_000, bin_width=0.02):
    """Two head-direction cells on one random walk of the head: 'busy' (peak 20 Hz) first,
    then 'sparse' (1.7 Hz at its preferred direction, pi - 0.3, and 0.1 Hz away from it)."""
    rng = np.random.default_rng(seed)
    heading = np.angle(np.exp(1j * np.cumsum(rng.normal(0, 0.08, n))))

    def rate(peak, base, preferred, kappa=3.0):
        shape = np.exp(kappa * (np.cos(heading - preferred) - 1))
        return base + (peak - base) * shape

    sparse = rate(1.7, 0.1, np.pi - 0.3)
    return npz_bytes(**{"bin_width": bin_width,
                        "count:busy": rng.poisson(rate(20.0, 2.0, 0.5) * bin_width),
                        "count:sparse": rng.poisson(sparse * bin_width),
                        "var:head direction[rad,circular]": heading}), 1.7


def test_a_low_rate_head_direction_cell_keeps_its_peak():
    data, true_peak = head_direction_upload()
    state = ExplorerState(source=UPLOAD, upload=("hd.npz", data))
    state.start()
    assert state.unit == "busy" and state.error == ""
    heading = state.variables[0]
    assert heading.log_strength == default_log_strength(state.session, "busy")
    state.unit = "sparse"  # a strength at the old unit's default follows the new unit
    curve = state.curves[0]
    assert 0.8 <= peak_ratio(curve) <= 1.2, peak_ratio(curve)
    assert 0.8 <= np.nanmax(curve.model) / true_peak <= 1.2, np.nanmax(curve.model)
    assert heading.log_strength == default_log_strength(state.session, "sparse") < -3.5
    heading.log_strength = -2.0  # a strength the user set is kept for the next unit
    state.unit = "busy"
    assert heading.log_strength == -2.0


def test_the_simulations_default_page_keeps_1e_minus_3_and_its_curves():
    state = ExplorerState()
    state.start()
    assert [row.log_strength for row in state.variables] == [-3.0, -3.0, -3.0]
    assert [c.name for c in state.curves] == ["position", "speed", "head direction"]
    for curve in state.curves:
        assert np.isfinite(curve.model).all() and np.isfinite(curve.truth).all()
