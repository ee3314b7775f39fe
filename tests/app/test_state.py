"""The explorer state (param only, no browser): one refit effect, errors kept in the page."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.compile_counts import CompileCounter
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING, UPLOAD


def curve(state, name):
    return next(c for c in state.curves if c.name == name)


def started_state():
    s = ExplorerState(n_samples=5_000)
    s.start()
    assert s.error == ""
    return s


@pytest.fixture
def state():
    return started_state()


@pytest.fixture
def cold_state(fresh_process):
    """A started state whose solvers were compiled by its own start, not by earlier tests."""
    return started_state()


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_start_fits_every_variable(state):
    assert [c.name for c in state.curves] == ["position", "speed", "head direction"]
    assert state.stats["converged"] is True
    assert state.regularizer == "Smooth"  # the default: it interpolates unvisited bins
    for c in state.curves:
        assert np.isfinite(c.model).all()
    state.regularizer = "Ridge"
    for c in state.curves:  # a model rate exactly where the bin was visited
        np.testing.assert_array_equal(np.isfinite(c.model), np.isfinite(c.empirical))
        assert np.isfinite(c.model).sum() >= c.centres.size // 2


def test_controls_refit_without_recompiling(cold_state):
    state = cold_state
    before = curve(state, "position").model.copy()
    with CompileCounter() as counter:
        state.variables[0].log_strength = -0.5
        flattened = curve(state, "position").model
        state.variables[0].n_bins = 33
        state.variables[1].include = False
        for regularizer in ("Lasso", "UnRegularized", "Ridge", "GroupLasso"):
            state.regularizer = regularizer
            state.variables[0].include = False
            state.variables[0].include = True
        state.variables[2].log_strength = -5
    assert counter.count == 0
    assert np.ptp(flattened) < np.ptp(before)
    assert curve(state, "position").centres.shape == (33,)
    assert np.isnan(curve(state, "speed").model).all()  # excluded: no model curve
    assert state.stats["converged"] is True


def test_bad_upload_shows_a_message_and_the_app_keeps_working(state):
    state.source = UPLOAD
    assert "upload" in state.error
    state.upload = ("broken.npz", b"PK\x03\x04 not really a zip")
    assert state.error and "npz" in state.error.lower()
    state.upload = ("notes.txt", b"hello")
    assert ".txt" in state.error
    n = 400
    rng = np.random.default_rng(0)
    good = npz_bytes(bin_width=0.02, **{"count:a": rng.poisson(1.0, n),
                                        "var:x[cm]": rng.uniform(0, 10, n)})
    state.upload = ("good.npz", good)
    assert state.error == ""
    assert [c.name for c in state.curves] == ["x"]
    assert state.bin_width == pytest.approx(0.02)


@pytest.mark.parametrize("arrays,message", [
    ({"count:a": np.ones(50), "var:x": np.full(50, 3.0)}, "constant"),
    ({"count:a": np.zeros(50), "var:x": np.arange(50.0)}, "no spikes"),
    ({"count:a": np.ones(50), "var:x": np.full(50, np.nan)}, "no valid samples"),
])
def test_degenerate_uploads_are_explained(state, arrays, message):
    state.source = UPLOAD
    state.upload = ("bad.npz", npz_bytes(bin_width=0.02, **arrays))
    assert message in state.error
    state.source = "simulation"
    assert state.error == "" and len(state.curves) == 3


def test_nan_samples_are_dropped_and_counted(state):
    n = 600
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, n)
    x[:37] = np.nan
    state.source = UPLOAD
    state.upload = ("nan.npz", npz_bytes(bin_width=0.02, **{"count:a": rng.poisson(1.0, n),
                                                            "var:x": x}))
    assert state.error == ""
    assert state.stats["samples dropped (NaN/inf)"] == 37
    assert state.stats["samples used"] == n - 37


def test_recording_unit_change(cold_state):
    state = cold_state
    state.source = RECORDING
    assert state.unit == "t10c18" and "t1c22" in state.param.unit.objects
    first = curve(state, "linear position").model.copy()
    with CompileCounter() as counter:
        state.unit = "t1c22"
    assert counter.count == 0
    assert state.error == ""
    assert not np.allclose(first, curve(state, "linear position").model, equal_nan=True)


def test_sessions_are_independent():
    a, b = ExplorerState(n_samples=3_000), ExplorerState(n_samples=3_000)
    a.start()
    b.start()
    a.variables[0].n_bins = 10
    b.variables[0].n_bins = 40
    assert curve(a, "position").centres.size == 10
    assert curve(b, "position").centres.size == 40


def test_upload_without_a_bin_width_uses_the_sidebar_value(state):
    state.bin_width = 0.05
    rng = np.random.default_rng(2)
    state.source = UPLOAD
    state.upload = ("plain.npz", npz_bytes(**{"count:a": rng.poisson(1.0, 300),
                                              "var:x": rng.uniform(0, 1, 300)}))
    assert state.error == ""
    assert state.session.bin_width == pytest.approx(0.05)


def test_upload_binned_finer_than_the_slider_range_loads(state):
    rng = np.random.default_rng(3)
    state.source = UPLOAD
    state.upload = ("fine.npz", npz_bytes(bin_width=0.001, **{"count:a": rng.poisson(0.05, 5000),
                                                              "var:x": rng.uniform(0, 1, 5000)}))
    assert state.error == ""
    assert state.bin_width == pytest.approx(0.001)


def test_unregularized_fit_of_a_sparse_unit_explains_itself():
    state = ExplorerState(source=RECORDING)
    state.start()
    state.unit = "t1c2"  # a unit that is silent in many position bins
    state.regularizer = "UnRegularized"
    assert state.stats["converged"] is False
    assert "no finite estimate" in state.error
    state.regularizer = "Ridge"
    assert state.error == "" and state.stats["converged"] is True


def test_too_many_variables_are_refused_with_a_message(state):
    rng = np.random.default_rng(4)
    arrays = {f"var:v{i}": rng.uniform(0, 1, 200) for i in range(19)}
    state.source = UPLOAD
    state.upload = ("wide.npz", npz_bytes(bin_width=0.02, **{"count:a": rng.poisson(1, 200)},
                                          **arrays))
    assert "too many" in state.error
    assert [c.name for c in state.curves] == ["position", "speed", "head direction"]


_SHARED = {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 300), n_vars=st.integers(1, 4), kind=st.sampled_from(
    ["random", "constant", "nan", "inf", "silent", "negative"]), seed=st.integers(0, 99))
def test_any_binned_upload_leaves_the_page_working(n, n_vars, kind, seed):
    """Whatever a binned file holds, the state ends with curves for it when the file is valid
    by construction (finite varying variables, enough valid samples for the 20 default bins and
    for 5 contiguous sections per cross-validation fold, some spikes), else with a message; never
    an exception, and the app still refits afterwards."""
    state = _SHARED.setdefault("state", ExplorerState(n_samples=2_000))
    if state.session is None:
        state.start()
    rng = np.random.default_rng(seed)
    variables = {f"var:v{i}": rng.normal(size=n) for i in range(n_vars)}
    counts = rng.poisson(1.0, n).astype(float)
    if kind == "constant":
        variables["var:v0"] = np.full(n, 2.0)
    elif kind in ("nan", "inf"):
        variables["var:v0"][::2] = np.nan if kind == "nan" else np.inf
    elif kind == "silent":
        counts[:] = 0
    elif kind == "negative":
        counts[0] = -1
    state.source = UPLOAD
    state.upload = (f"case{seed}.npz", npz_bytes(bin_width=0.02, **{"count:a": counts},
                                                 **variables))
    event("message" if state.error else "fitted")
    finite = np.logical_and.reduce([np.isfinite(v) for v in variables.values()])
    needed = max(20, 5 * state.n_folds)
    valid = (kind in ("random", "nan", "inf") and finite.sum() >= needed
             and counts[finite].sum() > 0)
    if valid:
        assert state.error == ""
        assert [c.name for c in state.curves] == [f"v{i}" for i in range(n_vars)]
        assert state.stats["samples used"] == finite.sum()
    else:
        assert state.error
    state.regularizer = "Lasso" if state.regularizer == "Ridge" else "Ridge"
    state.source = "simulation"
    assert state.error == "" and len(state.curves) == 3
