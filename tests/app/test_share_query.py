"""Shareable links without a browser: a state's query, decoded into a fresh state, fits the same
curves; every bad or stale value falls back to its default with a notice naming it."""

import numpy as np
import pytest

from widgets.share import SharedSettings, decode_query, encode_query
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING, SIMULATION


def fitted_state(**settings) -> ExplorerState:
    state = ExplorerState(**settings)
    state.start()
    assert state.error == "" and state.curves
    return state


def state_from(shared: SharedSettings) -> ExplorerState:
    return fitted_state(**shared.state, on_load=shared.on_load)


def model_curves(state):
    return {c.name: (c.centres, c.model) for c in state.curves}


def test_a_query_rebuilds_the_same_fit_in_a_fresh_state():
    state = fitted_state(n_samples=4000, seed=5, regularizer="Lasso", n_folds=4)
    position, speed, direction = state.variables
    speed.include = False
    position.n_bins, direction.n_bins = 12, 9
    position.log_strength, direction.log_strength = -2.3, -4.1
    query = encode_query(state)
    assert query["include"] == "position,head direction"
    assert query["bins"].split(",") == ["12", "20", "9"]

    shared = decode_query(query)
    assert shared.notices == ()
    copy = state_from(shared)
    assert (copy.source, copy.n_samples, copy.seed, copy.regularizer, copy.n_folds) == (
        SIMULATION, 4000, 5, "Lasso", 4)
    assert [(r.include, r.n_bins, r.log_strength) for r in copy.variables] == [
        (True, 12, -2.3), (False, 20, speed.log_strength), (True, 9, -4.1)]
    for name, (x, rate) in model_curves(state).items():  # warm start vs cold: solver tolerance
        np.testing.assert_array_equal(model_curves(copy)[name][0], x)
        np.testing.assert_allclose(model_curves(copy)[name][1], rate, rtol=2e-5)
    assert encode_query(copy) == query


def test_the_recordings_query_keeps_its_bin_width_unit_and_rows():
    query = {"source": "recording", "bin_width": "0.05", "unit": "t1c4",
             "include": "linear position,speed", "bins": "30,2,8", "log_strength": "-2,-3,-1"}
    shared = decode_query(query)
    assert shared.notices == ()
    state = state_from(shared)
    assert (state.source, state.bin_width, state.unit) == (RECORDING, 0.05, "t1c4")
    assert [(r.name, r.include, r.n_bins) for r in state.variables] == [
        ("linear position", True, 30), ("running direction", False, 2), ("speed", True, 8)]
    assert {k: v for k, v in encode_query(state).items() if k in query} == {
        **query, "bin_width": "0.05", "log_strength": "-2.0,-3.0,-1.0"}


def test_a_query_keeps_each_variables_basis():
    """A B-spline position and a cyclic B-spline head direction come back as bases with the same
    curves (a link that dropped them would refit bins: a jagged 20-point curve)."""
    state = fitted_state(n_samples=4000, seed=2, n_folds=4)
    position, _, direction = state.variables
    position.param.update(encoding="B-spline", n_basis=8)
    direction.param.update(encoding="cyclic B-spline", n_basis=6)
    query = encode_query(state)
    assert query["encoding"] == "B-spline,bins,cyclic B-spline"
    assert query["n_basis"] == "8,10,6"
    copy = state_from(decode_query(query))
    assert [(r.encoding, r.n_basis) for r in copy.variables] == [
        ("B-spline", 8), ("bins", 10), ("cyclic B-spline", 6)]
    curves = model_curves(copy)
    assert len(curves["position"][0]) >= 50
    for name, (x, rate) in model_curves(state).items():
        np.testing.assert_array_equal(curves[name][0], x)
        np.testing.assert_allclose(curves[name][1], rate, rtol=2e-5)


def test_an_open_field_link_keeps_the_2d_map():
    """The open-field source with its map's bins and strength comes back with the same map (a
    link that lost them would show the default 20 x 20 map, or the line simulation)."""
    from widgets.vocabulary import OPEN_FIELD

    state = fitted_state(source=OPEN_FIELD, n_samples=20_000, seed=3, n_folds=4)
    state.param.update(joint_nx=12, joint_ny=10, joint_log_strength=-3.0)
    assert state.error == "" and state.maps
    query = encode_query(state)
    assert (query["source"], query["map_bins"], query["map_log_strength"]) == (
        "open-field", "12,10", "-3.0")
    shared = decode_query(query)
    assert shared.notices == ()
    copy = state_from(shared)
    assert copy.source == OPEN_FIELD and (copy.n_samples, copy.seed) == (20_000, 3)
    (original,), (again,) = state.maps, copy.maps
    assert again.model.shape == original.model.shape == (12, 10)
    np.testing.assert_allclose(again.model, original.model, rtol=1e-4)


def test_an_open_field_link_keeps_its_unit_count():
    """A unit past the first four (a 60-unit open field's place cell) comes back from a link,
    with the same unit count (a link without it would load 4 units and refuse the unit)."""
    from widgets.vocabulary import OPEN_FIELD

    state = fitted_state(source=OPEN_FIELD, n_samples=4000, seed=1, n_folds=4,
                         open_field_units=60)
    state.unit = state.session.unit_names[40]
    query = encode_query(state)
    assert query["n_units"] == "60" and query["unit"] == state.session.unit_names[40]
    shared = decode_query(query)
    assert shared.notices == ()
    copy = state_from(shared)
    assert copy.open_field_units == 60 and len(copy.session.unit_names) == 60
    assert copy.unit == state.unit
    assert encode_query(copy) == query


DEFAULTS = decode_query({})
BAD = [  # (query, the key its notice names, what decodes to the default)
    ({"unit": "junk"}, "unit", lambda s: "unit" not in s.on_load),
    ({"bins": "20,20"}, "bins", lambda s: not any("n_bins" in r for r in s.on_load["variables"]
                                                  .values())),
    ({"bins": "20,999,16"}, "bins", lambda s: s.on_load["variables"] == {}),
    ({"bins": "20,1,16"}, "bins", lambda s: s.on_load["variables"] == {}),
    ({"log_strength": "a,b,c"}, "log_strength", lambda s: s.on_load["variables"] == {}),
    ({"log_strength": "-3,nan,-3"}, "log_strength", lambda s: s.on_load["variables"] == {}),
    ({"log_strength": "-3,5,-3"}, "log_strength", lambda s: s.on_load["variables"] == {}),
    ({"include": "position,nose"}, "include", lambda s: s.on_load["variables"] == {}),
    ({"encoding": "bins,bins,B-spline"}, "encoding",  # head direction's spline is cyclic
     lambda s: s.on_load["variables"] == {}),
    ({"encoding": "B-spline,bins"}, "encoding", lambda s: s.on_load["variables"] == {}),
    ({"n_basis": "10,3,10"}, "n_basis", lambda s: s.on_load["variables"] == {}),
    ({"T": "-5"}, "T", lambda s: s.state["n_samples"] == 20_000),
    ({"T": "abc"}, "T", lambda s: s.state["n_samples"] == 20_000),
    ({"T": [1, 2]}, "T", lambda s: s.state["n_samples"] == 20_000),  # Panel parses "[1,2]"
    ({"seed": "1.5"}, "seed", lambda s: s.state["seed"] == 0),
    ({"regularizer": "Elastic"}, "regularizer", lambda s: s.state["regularizer"] == "Smooth"),
    ({"folds": "1"}, "folds", lambda s: s.state["n_folds"] == 10),
    ({"folds": True}, "folds", lambda s: s.state["n_folds"] == 10),
    ({"source": "somewhere"}, "source", lambda s: s.state["source"] == SIMULATION),
    ({"source": "upload"}, "upload", lambda s: s.state["source"] == SIMULATION),
    ({"source": "open-field", "n_units": "500"}, "n_units",
     lambda s: s.state["open_field_units"] == 4),
    ({"source": "recording", "bin_width": "1e-9"}, "bin_width",
     lambda s: s.state["bin_width"] == 0.025),
]


@pytest.mark.parametrize("query,key,is_default", BAD, ids=[str(b[0]) for b in BAD])
def test_a_bad_value_falls_back_to_its_default_with_a_notice(query, key, is_default):
    good = {"regularizer": "Lasso", "folds": "5"}
    good = {k: v for k, v in good.items() if k not in query}
    shared = decode_query({**good, **query})
    assert len(shared.notices) == 1 and key in shared.notices[0], shared.notices
    assert is_default(shared)
    for name, value in good.items():  # the good values are kept
        assert str(shared.state[{"folds": "n_folds"}.get(name, name)]) == value
    state_from(shared)  # and the page fits


def test_an_empty_query_gives_the_defaults_silently():
    assert DEFAULTS.notices == ()
    assert DEFAULTS.state == {"source": SIMULATION, "n_samples": 20_000, "seed": 0,
                              "regularizer": "Smooth", "n_folds": 10}
    assert DEFAULTS.on_load == {"variables": {}}
