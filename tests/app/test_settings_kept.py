"""Issue 18, items 1, 2 and 8 without a browser: a new T, seed or bin width keeps every setting
that still applies (and says which cannot be kept); a unit that cannot be fitted leaves no stale
fit behind, and the exports and code say so; a link with no variable included round-trips."""

import csv
import io
import json

import numpy as np

from glm_core import export
from widgets.carry import take_settings
from widgets.export import code_view, fit_record
from widgets.share import decode_query, encode_query
from widgets.state import ExplorerState
from widgets.vocabulary import CYCLIC_SPLINE, RECORDING, UPLOAD

from .test_state import npz_bytes


def rows(state):
    return {r.name: (r.include, r.n_bins, r.log_strength, r.encoding, r.n_basis)
            for r in state.variables}


def test_a_new_seed_or_t_keeps_every_variables_settings():
    state = ExplorerState(n_samples=5_000)
    state.start()
    position, speed, heading = state.variables
    position.param.update(n_bins=10, log_strength=-2.0)
    speed.include = False
    heading.param.update(encoding=CYCLIC_SPLINE, n_basis=8)
    state.regularizer = "Ridge"
    before = rows(state)
    for change in ({"seed": 1}, {"n_samples": 6_000}):
        state.param.update(**change)
        assert state.error == "" and state.notice == ""
        assert rows(state) == before, change
        assert state.regularizer == "Ridge"
        assert state.session.n_valid == state.n_samples  # the new data set is the one fitted
        assert [c.name for c in state.curves] == list(before)
        assert state.encoding.bases[2] is not None and state.encoding.bases[2].shape[1] == 8


def test_a_new_recording_bin_width_keeps_the_unit():
    state = ExplorerState(source=RECORDING)
    state.start()
    state.unit = "t4c10"
    state.variables[0].n_bins = 12
    state.bin_width = 0.05
    assert state.session.bin_width == 0.05
    assert state.unit == "t4c10" and state.stats["unit"] == "t4c10"
    assert state.variables[0].n_bins == 12 and state.notice == ""


def test_settings_the_new_data_cannot_take_are_named():
    state = ExplorerState(n_samples=5_000)
    state.start()
    rows_ = state.variables
    unit, notices = take_settings({"unit": "t4c10", "variables": {
        "position": {"n_bins": 999, "log_strength": -1.0}}}, state.session, rows_)
    assert unit == state.session.unit_names[0]
    assert rows_[0].log_strength == -1.0 and rows_[0].n_bins == 20
    assert len(notices) == 2
    assert "'t4c10'" in notices[0] and "999" in notices[1] and "position" in notices[1]


def assert_no_fit(state, unit):
    assert state.fit is None and state.curves == [] and state.maps == []
    assert state.stats["unit"] == unit and "no spikes" in state.stats["fit"]
    record = json.loads(export.record_json(fit_record(state)))
    assert record["unit"] == unit and record["fitted"] is False
    assert "no spikes" in record["reason"]
    table = list(csv.DictReader(io.StringIO(export.record_csv(fit_record(state)))))
    assert table == [{"unit": unit, "data_source": state.session.source, "fitted": "False",
                      "reason": state.error}]
    glm, _ = [pane.object for pane in code_view(state).objects]
    assert glm.startswith("No fit to reproduce") and "no spikes" in glm


def test_a_unit_without_spikes_exports_no_fit_not_the_previous_units():
    state = ExplorerState(source=RECORDING)
    state.start()
    state.unit = "t1c5"
    assert "no spikes" in state.error
    assert_no_fit(state, "t1c5")
    state.unit = "t4c10"  # back to a unit with spikes: fitted and exported again
    assert state.error == "" and state.fit is not None
    record = fit_record(state)
    assert record["fitted"] and record["unit"] == record["statistics"]["unit"] == "t4c10"


def test_an_upload_whose_first_unit_has_no_spikes_opens_on_a_unit_with_spikes():
    rng = np.random.default_rng(0)
    n = 4000
    track = np.cumsum(rng.normal(0, 1, n))
    data = npz_bytes(bin_width=0.02, **{"count:silent": np.zeros(n, int),
                                        "count:busy": rng.poisson(0.5, n),
                                        "var:track[cm]": track})
    state = ExplorerState()
    state.start()
    state.param.update(source=UPLOAD, upload=("two.npz", data))
    assert state.error == "" and state.unit == "busy"
    assert [c.name for c in state.curves] == ["track"] and fit_record(state)["unit"] == "busy"
    state.unit = "silent"  # the unit list and the curves belong to the same file
    assert_no_fit(state, "silent")


def test_a_link_with_no_variable_included_round_trips():
    state = ExplorerState(n_samples=5_000)
    state.start()
    for row in state.variables:
        row.include = False
    query = encode_query(state)
    assert query["include"] == "none"
    shared = decode_query(query)
    assert shared.notices == ()
    assert {name: row["include"] for name, row in shared.on_load["variables"].items()} == {
        row.name: False for row in state.variables}
    copy = ExplorerState(**shared.state, on_load=shared.on_load)
    copy.start()
    assert [r.include for r in copy.variables] == [False] * 3
