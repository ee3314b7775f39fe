"""Event trains in the file format (``event:<name>``): counts per bin in the binned form, times
in the events form (NPZ times, CSV event rows), against np.histogram of the same times; bad
event entries get a clear InputError."""

import csv
import io

import numpy as np
import pytest

from glm_core.errors import InputError
from glm_core.loaders import load_csv, load_npz
from glm_core.session import make_session

T = 60
RNG = np.random.default_rng(4)
COUNTS = RNG.poisson(1.0, T)
X = np.linspace(0.0, 1.0, T)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def to_csv(header, rows) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows([header] + [["" if c is None else c for c in r] for r in rows])
    return text.getvalue().encode()


def binned(**extra):
    return {"bin_width": 0.02, "count:a": COUNTS, "var:x": X, **extra}


def test_binned_npz_keeps_counts_per_bin_and_merges_them():
    rewards = np.zeros(T)
    rewards[[3, 4, 40]] = [1, 2, 1]
    session = load_npz(npz_bytes(**binned(**{"event:reward": rewards, "event:lick": COUNTS})))
    assert set(session.events) == {"reward", "lick"}
    np.testing.assert_array_equal(session.events["reward"], rewards)
    merged = load_npz(npz_bytes(**binned(**{"event:reward": rewards})), bin_width=0.06)
    np.testing.assert_array_equal(merged.events["reward"], rewards.reshape(-1, 3).sum(axis=1))
    assert load_npz(npz_bytes(**binned())).events == {}


def test_binned_csv_event_column():
    stim = (np.arange(T) % 7 == 0).astype(int)
    rows = [[0.02 if i == 0 else None, c, x, s] for i, (c, x, s) in enumerate(zip(COUNTS, X, stim))]
    session = load_csv(to_csv(["bin_width", "count:a", "var:x", "event: stimulus "], rows))
    np.testing.assert_array_equal(session.events["stimulus"], stim)


def test_npz_event_times_are_counted_in_the_session_bins():
    t = np.arange(0.0, 10.001, 0.01)
    spikes = np.sort(RNG.uniform(0, 10, 200))
    rewards = np.array([0.5, 0.51, 3.3, 9.999, 12.0, -1.0])
    session = load_npz(npz_bytes(spike_times=spikes, spike_unit=np.zeros(200, int), var_t=t,
                                 **{"var:x": np.sin(t), "event:reward": rewards}), bin_width=0.1)
    edges = t[0] + 0.1 * np.arange(session.n_samples + 1)
    np.testing.assert_array_equal(session.events["reward"], np.histogram(rewards, edges)[0])
    assert session.events["reward"].sum() == 4  # 12 s and -1 s are outside


def test_csv_event_rows_are_events_not_behaviour_samples():
    t = np.arange(0.0, 5.001, 0.05)
    spikes = np.sort(RNG.uniform(0, 5, 100))
    rows = [[ti, None, np.cos(ti), None] for ti in t]
    rows += [[si, "u1", None, None] for si in spikes]
    rewards = [(1.02, 1), (2.5, 2), (4.21, 1)]
    rows += [[ti, None, None, n] for ti, n in rewards]  # blank variable cells: not samples
    header = ["time", "spike_unit", "var:speed", "event:reward"]
    session = load_csv(to_csv(header, rows), bin_width=0.1)
    edges = t[0] + 0.1 * np.arange(session.n_samples + 1)
    expected = np.histogram([1.02, 2.5, 2.5, 4.21], edges)[0]
    np.testing.assert_array_equal(session.events["reward"], expected)
    assert session.n_dropped == 0  # no NaN variable from the event rows
    np.testing.assert_allclose(session.variable("speed").values, np.cos(edges[:-1] + 0.05),
                               atol=2e-3)


@pytest.mark.parametrize("events, message", [
    ({"event:reward": np.full(T, 0.5)}, r"'event:reward' is 0.5 in row 1 .*event times belong"),
    ({"event:reward": np.arange(T) * 0.37}, "number of events in each bin"),  # times, not counts
    ({"event:reward": -np.ones(T)}, "is -1 in row 1"),
    ({"event:reward": np.ones(T + 1)}, "has 61 values but the counts have 60 bins"),
    ({"event:reward": np.array(["a"] * T)}, "must hold the number of events"),
    ({"event:reward": np.ones((T, 2))}, "1-D"),
    ({"event:": np.ones(T)}, "not a valid event name"),
    ({"event:a": np.ones(T), "event: a": np.ones(T)}, "given twice"),
])
def test_a_binned_event_entry_that_is_not_counts_is_refused(events, message):
    with pytest.raises(InputError, match=message):
        load_npz(npz_bytes(**binned(**events)))


@pytest.mark.parametrize("times, message", [
    (np.array([1.0, np.nan]), "NaN or inf"),
    (np.array(["noon"]), "event times in seconds"),
    (np.ones((2, 2)), "1-D"),
])
def test_an_npz_event_entry_that_is_not_times_is_refused(times, message):
    t = np.arange(0.0, 2.0, 0.01)
    arrays = {"spike_times": [0.5], "spike_unit": [1], "var_t": t, "var:x": t,
              "event:reward": times}
    with pytest.raises(InputError, match=message):
        load_npz(npz_bytes(**arrays), bin_width=0.1)


@pytest.mark.parametrize("cell, message", [
    ("0.5", r"'event:reward' is 0.5 in data row 3"),
    ("-1", "is -1 in data row 3"),
    ("5000", "up to 1000"),
    ("soon", "not a number"),
])
def test_a_csv_event_cell_that_is_not_a_count_is_refused(cell, message):
    rows = [[0.0, None, 1.0, None], [1.0, None, 2.0, None], [0.5, None, None, cell],
            [0.4, "u", None, None]]
    with pytest.raises(InputError, match=message):
        load_csv(to_csv(["time", "spike_unit", "var:x", "event:reward"], rows), bin_width=0.1)


def test_a_csv_row_cannot_be_a_spike_and_an_event():
    rows = [[0.0, None, 1.0, None], [1.0, None, 2.0, None], [0.4, "u", None, 1]]
    with pytest.raises(InputError, match="data row 3 is both a spike"):
        load_csv(to_csv(["time", "spike_unit", "var:x", "event:reward"], rows), bin_width=0.1)


def test_make_session_validates_event_trains():
    from glm_core.session import Variable
    variables = [Variable("x", X)]
    with pytest.raises(InputError, match="event train 'r' holds 0.5 in bin 2"):
        make_session(0.02, variables, COUNTS, events={"r": np.r_[0.0, 0.5, np.zeros(T - 2)]})
    with pytest.raises(InputError, match="has 3 bins"):
        make_session(0.02, variables, COUNTS, events={"r": np.zeros(3)})


def test_implausibly_many_events_are_refused(monkeypatch):
    with pytest.raises(InputError, match="events in a bin of 0.02 s; at most 100"):
        load_npz(npz_bytes(**binned(**{"event:reward": np.full(T, 1e300)})))
    from glm_core import events
    monkeypatch.setattr(events, "MAX_EVENTS", 3)
    rows = [[0.0, None, 1.0, None], [1.0, None, 2.0, None], [0.4, "u", None, None],
            [0.5, None, None, 2], [0.6, None, None, 2]]
    with pytest.raises(InputError, match="holds 4 events; the limit is 3"):
        load_csv(to_csv(["time", "spike_unit", "var:x", "event:reward"], rows), bin_width=0.1)
