"""Loaders: NPZ/CSV (binned and events forms), NWB, pynapple, the built-in recording, derived."""

import csv
import datetime
import io

import numpy as np
import pytest

from glm_core import derived
from glm_core.errors import InputError
from glm_core.linear_track import DEFAULT_UNIT, load_linear_track
from glm_core.loaders import (
    MAX_UPLOAD_BYTES,
    from_pynapple,
    load_csv,
    load_npz,
    load_nwb,
    load_upload,
)

RNG = np.random.default_rng(0)
T = 200
COUNTS = RNG.poisson(1.0, (T, 2))
POS = np.linspace(0, 100, T)
HD = np.mod(np.linspace(0, 6 * np.pi, T), 2 * np.pi) - np.pi


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def binned_arrays():
    return {
        "bin_width": 0.02,
        "count:a": COUNTS[:, 0],
        "count:b": COUNTS[:, 1],
        "var:pos[cm]": POS,
        "var:head direction[rad,circular]": HD,
    }


def events(n_spikes=300):
    spikes = np.sort(RNG.uniform(0, 10, n_spikes))
    units = RNG.integers(0, 3, n_spikes)
    t = np.arange(0, 10.001, 0.01)
    return spikes, units, t


def to_csv(header, rows) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows([header] + [["" if c is None else c for c in r] for r in rows])
    return text.getvalue().encode()


# --- binned form -------------------------------------------------------------------------------


def test_npz_binned_path_and_bytes(tmp_path):
    path = tmp_path / "b.npz"
    np.savez(path, **binned_arrays())
    for source in (path, path.read_bytes()):
        s = load_npz(source)
        assert s.bin_width == 0.02 and s.unit_names == ("a", "b")
        np.testing.assert_array_equal(s.counts, COUNTS)
        assert s.variable("pos").unit == "cm" and not s.variable("pos").circular
        hd = s.variable("head direction")
        assert hd.circular and hd.unit == "rad"
        np.testing.assert_allclose(hd.values, HD)


def test_npz_binned_valid_nan_and_merge():
    arrays = binned_arrays()
    arrays["valid"] = np.arange(T) % 10 != 0
    pos = POS.copy()
    pos[5] = np.nan
    arrays["var:pos[cm]"] = pos
    s = load_npz(npz_bytes(**arrays))
    assert s.n_dropped == 1 and s.n_valid == T - 20 - 1
    merged = load_npz(npz_bytes(**binned_arrays()), bin_width=0.04)
    assert merged.bin_width == pytest.approx(0.04) and merged.n_samples == T // 2
    np.testing.assert_array_equal(merged.counts, COUNTS.reshape(T // 2, 2, 2).sum(axis=1))
    # circular mean of two angles straddling the wrap point stays near pi, not 0
    arrays = binned_arrays()
    arrays["var:head direction[rad,circular]"] = np.tile([np.pi - 0.1, -np.pi + 0.1], T // 2)
    merged = load_npz(npz_bytes(**arrays), bin_width=0.04)
    np.testing.assert_allclose(np.abs(merged.variable("head direction").values), np.pi, atol=1e-9)
    with pytest.raises(InputError, match="whole multiple"):
        load_npz(npz_bytes(**binned_arrays()), bin_width=0.03)


def test_merged_bins_average_linear_variables():
    """README: a larger bin width merges bins, counts summed and variables averaged; a ragged
    tail that does not fill a merged bin is left out."""
    x = RNG.uniform(0, 10, T)
    arrays = {"bin_width": 0.02, "count:a": COUNTS[:, 0], "var:x[cm]": x}
    merged = load_npz(npz_bytes(**arrays), bin_width=0.06)
    n = T // 3
    np.testing.assert_allclose(merged.variable("x").values, x[: 3 * n].reshape(n, 3).mean(1),
                               rtol=1e-12)
    np.testing.assert_array_equal(merged.counts[:, 0], COUNTS[: 3 * n, 0].reshape(n, 3).sum(1))


def test_csv_binned():
    header = ["bin_width", "count:t1c2", "var:position[cm]", "var:head direction[rad,circular]"]
    rows = [[0.02 if i == 0 else None, COUNTS[i, 0], POS[i], HD[i]] for i in range(T)]
    rows[3][2] = None  # blank variable cell -> NaN -> dropped
    s = load_csv(to_csv(header, rows))
    assert s.bin_width == 0.02 and s.unit_names == ("t1c2",) and s.n_dropped == 1
    np.testing.assert_array_equal(s.counts[:, 0], COUNTS[:, 0])
    assert s.variable("head direction").circular
    np.testing.assert_allclose(s.variable("position").values[4:], POS[4:])


def test_binned_without_bin_width_uses_argument():
    arrays = binned_arrays()
    del arrays["bin_width"]
    assert load_npz(npz_bytes(**arrays), bin_width=0.05).bin_width == 0.05
    with pytest.raises(InputError, match="no bin_width"):
        load_npz(npz_bytes(**arrays))


# --- events form -------------------------------------------------------------------------------


def test_npz_events_binning_matches_histogram():
    spikes, units, t = events()
    x = np.sin(t)
    s = load_npz(
        npz_bytes(spike_times=spikes, spike_unit=units, var_t=t, **{"var:x[m]": x}), bin_width=0.1
    )
    edges = t[0] + 0.1 * np.arange(101)
    assert s.unit_names == ("0", "1", "2") and s.n_samples == 100
    for i in range(3):
        np.testing.assert_array_equal(s.counts[:, i], np.histogram(spikes[units == i], edges)[0])
    np.testing.assert_allclose(s.variable("x").values, np.sin(edges[:-1] + 0.05), atol=1e-4)


def test_circular_interpolation_across_wrap():
    t = np.array([0.0, 1.0, 2.0])
    angle = np.array([np.pi - 0.2, -np.pi + 0.2, -np.pi + 0.6])
    arrays = {"spike_times": [0.5], "spike_unit": ["u"], "var_t": t, "var:hd[circular]": angle}
    s = load_npz(npz_bytes(**arrays), bin_width=1.0)
    hd = s.variable("hd").values  # centres 0.5, 1.5
    assert np.angle(np.exp(1j * (hd[0] - np.pi))) == pytest.approx(0.0, abs=1e-9)
    assert hd[1] == pytest.approx(-np.pi + 0.4, abs=0.01)


def test_csv_events_long_format_and_natural_unit_order():
    spikes, units, t = events()
    names = np.array(["t1c10", "t1c2", "t2c1"])[units]
    rows = [[ti, None, np.cos(ti), ti % 6 - 3] for ti in t]
    rows += [[si, u, None, None] for si, u in zip(spikes, names)]
    header = ["time", "spike_unit", "var:speed[cm/s]", "var:angle[deg; circular]"]
    s = load_csv(to_csv(header, rows), bin_width=0.05)
    assert s.unit_names == ("t1c2", "t1c10", "t2c1")
    edges = t[0] + 0.05 * np.arange(s.n_samples + 1)
    np.testing.assert_array_equal(s.counts[:, 0], np.histogram(spikes[names == "t1c2"], edges)[0])
    assert s.variable("angle").circular and s.variable("angle").unit == "deg"
    assert s.variable("speed").unit == "cm/s"


def test_events_zero_spikes_and_spikes_outside_span():
    _, _, t = events()
    with pytest.raises(InputError, match="no spikes"):
        load_npz(npz_bytes(spike_times=np.zeros(0), spike_unit=np.zeros(0, int), var_t=t,
                           **{"var:x": t}))
    with pytest.raises(InputError, match="no spike falls"):
        load_npz(npz_bytes(spike_times=[100.0], spike_unit=[1], var_t=t, **{"var:x": t}))


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"count:a": [1, 2], "var:x": [1.0], "bin_width": 0.1}, "has 1 values"),
        ({"count:a": [1, 2], "count:b": [1], "var:x": [1.0, 2.0], "bin_width": 0.1}, "lengths"),
        ({"count:a": [1, 2]}, "no var:"),
        ({"count:a": [1, 2], "var:x": [1.0, 2.0], "bin_width": 0.1, "colour": [1]}, "unrecognised"),
        ({"count:a": [1.5, 2], "var:x": [1.0, 2.0], "bin_width": 0.1}, "whole numbers"),
        ({"count:a": ["a", "b"], "var:x": [1.0, 2.0], "bin_width": 0.1}, "numeric"),
        ({"count:a": [1, 2], "var:x": [np.nan, np.inf], "bin_width": 0.1}, "no valid samples"),
        ({"count:a": [1, 2], "var:x": [1.0, 2.0], "bin_width": -1.0}, "positive"),
        ({"x": [1]}, "neither"),
        ({"spike_times": [1.0], "spike_unit": [1, 2], "var_t": [0, 2], "var:x": [0, 1]}, "unit id"),
        ({"spike_times": [np.nan], "spike_unit": [1], "var_t": [0, 2], "var:x": [0, 1]}, "NaN"),
        ({"spike_times": [1.0], "spike_unit": [1], "var_t": [0, 2], "var:x": [0]}, "var_t has"),
        ({"spike_times": [1.0], "spike_unit": [1], "var_t": [0, 0.01], "var:x": [0, 1]}, "one bin"),
    ],
)
def test_npz_malformed(arrays, message):
    with pytest.raises(InputError, match=message):
        load_npz(npz_bytes(**arrays), bin_width=None)


def test_upload_dispatch_and_rejections(tmp_path):
    data = npz_bytes(**binned_arrays())
    session = load_upload("rec.NPZ", data)
    assert session.source == "rec.NPZ"
    with pytest.raises(InputError, match="unsupported file type"):
        load_upload("rec.mat", data)
    with pytest.raises(InputError, match="limit"):
        load_upload("rec.npz", b"\0" * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(InputError, match="not a readable .npz"):
        load_upload("rec.npz", data[: len(data) // 2])
    with pytest.raises(InputError, match="not a readable NWB"):
        load_upload("rec.nwb", data)
    with pytest.raises(InputError, match="UTF-8"):
        load_upload("rec.csv", b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="cannot read"):
        load_npz(tmp_path / "missing.npz")


# --- NWB and pynapple --------------------------------------------------------------------------


def write_nwb(path, spikes_by_unit, t, xy, hd_degrees):
    pynwb = pytest.importorskip("pynwb")
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    nwb = pynwb.NWBFile("test", "id", datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    for spikes in spikes_by_unit:
        nwb.add_unit(spike_times=spikes)
    module = nwb.create_processing_module("behavior", "behaviour")
    position, compass = Position(), CompassDirection()
    position.add_spatial_series(
        SpatialSeries(name="pos", data=xy, timestamps=t, reference_frame="arena", unit="cm")
    )
    compass.add_spatial_series(
        SpatialSeries(name="hd", data=hd_degrees, timestamps=t, reference_frame="north",
                      unit="degrees")
    )
    module.add(position)
    module.add(compass)
    with pynwb.NWBHDF5IO(str(path), "w") as writer:
        writer.write(nwb)


def test_nwb_round_trip(tmp_path):
    spikes, units, t = events()
    xy = np.column_stack([10 * t, np.ones_like(t)])
    trains = [spikes[units == i] for i in range(3)]
    write_nwb(tmp_path / "r.nwb", trains, t, xy, np.full(t.size, 270.0))
    s = load_nwb(tmp_path / "r.nwb", bin_width=0.1)
    assert s.names == ("x", "y", "head direction", "speed") and len(s.unit_names) == 3
    edges = t[0] + 0.1 * np.arange(s.n_samples + 1)
    np.testing.assert_array_equal(s.counts[:, 1], np.histogram(spikes[units == 1], edges)[0])
    np.testing.assert_allclose(s.variable("head direction").values, -np.pi / 2)
    assert s.variable("x").unit == "cm" and s.variable("head direction").circular
    np.testing.assert_allclose(s.variable("speed").values[10:-10], 10.0, rtol=1e-6)
    same = load_upload("r.nwb", (tmp_path / "r.nwb").read_bytes(), 0.1)
    np.testing.assert_array_equal(same.counts, s.counts)


def test_pynapple():
    nap = pytest.importorskip("pynapple")
    spikes, units, t = events()
    group = nap.TsGroup({i: nap.Ts(spikes[units == i]) for i in range(3)})
    xy = nap.TsdFrame(t=t, d=np.column_stack([t, -t]), columns=["x", "y"])
    hd = nap.Tsd(t=t, d=np.full(t.size, 3.0))
    s = from_pynapple(group, {"pos": xy, "hd": hd}, bin_width=0.1, circular=["hd"])
    assert s.names == ("pos x", "pos y", "hd") and s.variable("hd").circular
    edges = t[0] + 0.1 * np.arange(s.n_samples + 1)
    np.testing.assert_array_equal(s.counts[:, 2], np.histogram(spikes[units == 2], edges)[0])
    with pytest.raises(InputError, match="circular"):
        from_pynapple(group, {"hd": hd}, 0.1, circular=["nope"])
    with pytest.raises(InputError, match="TsGroup"):
        from_pynapple({"a": 1}, {"hd": hd}, 0.1)


# --- derived -----------------------------------------------------------------------------------


def test_derived():
    t = np.arange(100) * 0.1
    np.testing.assert_allclose(derived.speed(3 * t, 0.1), 3.0)
    np.testing.assert_allclose(derived.speed(np.column_stack([3 * t, 4 * t]), 0.1, smooth=0.3), 5.0)
    along = derived.linearize(1 + 2 * t, 5 - t)
    np.testing.assert_allclose(along, np.hypot(2, 1) * t, atol=1e-9)
    running = derived.running_mask([0.0, 5.0, np.nan], 1.0)
    np.testing.assert_array_equal(running, [False, True, False])
    with pytest.raises(InputError):
        derived.speed([1.0], 0.1)


# --- the built-in recording --------------------------------------------------------------------


@pytest.fixture(scope="module")
def track():
    return load_linear_track()


def test_linear_track_loads(track):
    assert len(track.unit_names) == 31 and track.bin_width == 0.025
    assert track.unit_names[27] == "t10c18" == DEFAULT_UNIT
    assert (track.unit_names[13], track.unit_names[20]) == ("t1c22", "t10c5")
    assert track.names == ("linear position", "running direction", "speed")
    assert track.variable("linear position").unit == "px"
    assert 0.3 * track.n_samples < track.n_valid < 0.7 * track.n_samples
    assert np.all(track.variable("speed").values[track.valid] > 10.0)


@pytest.mark.parametrize("unit", [27, 13, 20])
def test_linear_track_place_fields(track, unit):
    position = track.variable("linear position").values[track.valid]
    counts = track.unit_counts(unit)[track.valid]
    edges = np.linspace(position.min(), position.max(), 31)
    occupancy = np.histogram(position, edges)[0] * track.bin_width
    rate = np.histogram(position, edges, weights=counts)[0] / occupancy
    assert rate.max() > 6.0  # Hz
    assert rate.max() > 5 * np.median(rate)
    peak = int(np.argmax(rate))
    assert np.sum(rate > rate.max() / 2) <= 10  # a compact field, not a plateau
    assert 0 <= peak < 30


@pytest.mark.parametrize("cell, said", [(None, "blank"), (-1, "-1"), (1.5, "1.5")])
def test_a_bad_count_cell_is_named_by_its_row(cell, said):
    """Issue 18, item 12: "spike counts must be non-negative whole numbers" did not say where."""
    header = ["bin_width", "count:t1c2", "var:position[cm]"]
    rows = [[0.02 if i == 0 else None, COUNTS[i, 0], POS[i]] for i in range(T)]
    rows[41][1] = cell  # data row 42
    with pytest.raises(InputError, match=rf"count:t1c2 is {said} in row 42 \(bin 42\);.*whole"):
        load_csv(to_csv(header, rows))
    arrays = binned_arrays()
    arrays["count:b"] = np.where(np.arange(T) == 41, np.nan if cell is None else cell, COUNTS[:, 1])
    with pytest.raises(InputError, match=rf"count:b is {said} in row 42"):
        load_npz(npz_bytes(**arrays))
