"""Event trains in the file format: ``event:<name>`` entries (reward, stimulus, lick, ...).

- Binned form (NPZ key or CSV column): the number of events in each bin, T non-negative whole
  numbers, summed when bins are merged.
- Events form, NPZ: the event times in seconds, any number of them, counted in the session's bins
  like spikes (times outside the behaviour's span are left out).
- Events form, CSV (long format): a row whose ``event:<name>`` cell is filled is an event row:
  that many events (a whole number, usually 1) of that name at the row's ``time``. Its variable
  cells are ignored, as a spike row's are; a row cannot be both a spike and an event.

The session holds every train as counts per bin (``Session.events``).
"""

from __future__ import annotations

import numpy as np

from .binning import first_non_count, numbers_1d
from .errors import InputError

PREFIX = "event:"
MAX_PER_ROW = 1000  # events in one CSV row: more is a mistake (and would cost memory)
MAX_EVENTS = 10_000_000  # events in one CSV event column


def event_name(key: str) -> str:
    """The name of an ``event:<name>`` key, stripped; InputError if empty."""
    name = key[len(PREFIX):].strip()
    if not name:
        raise InputError(f"{key!r} is not a valid event name; use event:<name>")
    return name


def event_keys(arrays) -> dict[str, str]:
    """The ``event:`` keys of ``arrays`` by event name; InputError on an empty or repeated name."""
    keys = {}
    for key in arrays:
        if key.startswith(PREFIX):
            name = event_name(key)
            if name in keys:
                raise InputError(f"the event name {name!r} is given twice")
            keys[name] = key
    return keys


def binned_event_counts(key: str, values, n_bins: int, merge: int = 1) -> np.ndarray:
    """An ``event:`` entry of the binned form: ``n_bins`` counts, summed over blocks of ``merge``
    bins; InputError naming the first bin (the CSV data row) that is not a count."""
    counts = numbers_1d(key, values, "the number of events in each bin")
    if counts.shape != (n_bins,):
        raise InputError(f"{key!r} has {counts.size} values but the counts have {n_bins} bins; "
                         "in the binned form it holds the number of events in each bin")
    bad = first_non_count(counts)
    if bad is not None:
        row, value = bad
        raise InputError(f"{key!r} is {value} in row {row} (bin {row}); in the binned "
                         "form it holds the number of events in each bin (non-negative whole "
                         "numbers; event times belong to the events form)")
    n = n_bins // merge * merge
    return counts[:n].reshape(-1, merge).sum(axis=1)


def event_times(key: str, values) -> np.ndarray:
    """An ``event:`` entry of the NPZ events form: event times in seconds (finite)."""
    times = numbers_1d(key, values, "event times in seconds")
    if not np.all(np.isfinite(times)):
        raise InputError(f"{key!r} contains NaN or inf; it holds event times in seconds")
    return times


def count_in_bins(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Events per bin of ``edges`` (those outside are left out), as floats."""
    return np.histogram(times, edges)[0].astype(float)


def csv_event_times(columns: dict, is_spike: np.ndarray, label: str
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The event rows of a long-format CSV: each ``event:`` column as event times (a row's
    ``time`` repeated by its cell's count), and the (rows,) mask of event rows.

    InputError names the row of a count that is not a non-negative whole number, and a row that
    is both a spike and an event.
    """
    times = columns["time"]
    is_event = np.zeros(times.size, bool)
    trains = {}
    for name, key in event_keys(columns).items():
        cells = columns[key]
        filled = ~np.isnan(cells)
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(filled & ((cells < 0) | (cells != np.round(cells))
                                           | ~(cells <= MAX_PER_ROW)))
        if bad.size:
            raise InputError(f"{label}: {key!r} is {cells[bad[0]]:g} in data row {bad[0] + 1}; "
                             "an event cell holds how many events happen at the row's time "
                             f"(a whole number up to {MAX_PER_ROW}, usually 1)")
        both = np.flatnonzero(filled & is_spike)
        if both.size:
            raise InputError(f"{label}: data row {both[0] + 1} is both a spike (spike_unit) and "
                             f"an event ({key!r}); put them on separate rows")
        if cells[filled].sum() > MAX_EVENTS:
            raise InputError(f"{label}: {key!r} holds {cells[filled].sum():,.0f} events; the "
                             f"limit is {MAX_EVENTS:,}")
        trains[key] = np.repeat(times[filled], cells[filled].astype(np.int64))
        is_event |= filled
    return trains, is_event
