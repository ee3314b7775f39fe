"""Lagged leaves of the explorer: spike history, coupling from another unit, event kernels.

A :class:`LagLeaf` names a source and its lag basis: ``history`` (the unit's own past counts),
``coupling`` (another unit's, ``source`` its name or index) or ``event`` (an event train given as
counts per bin, ``source`` its name in ``session.events`` or in an explicit mapping), through
``n_basis`` log-spaced raised cosines over ``window_s`` seconds (``basis.raised_cosine_log``;
row t sees lags 1 .. W, never its own bin). :func:`lag_rows` checks the leaves and builds the
lagged rows of a session's valid samples; ``explorer.with_lags`` adds them to an encoding, whose
``leaves`` are then the behavioural leaves followed by the lag leaves, and whose fits run on
``lagged_fit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ._lag_problem import LAG_BASIS, LAG_COLUMNS, MAX_LAG_LEAVES
from .basis import lagged, raised_cosine_log
from .errors import InputError
from .lagged_fit import lag_design
from .session import Session

LAG_KINDS = ("history", "coupling", "event")
MIN_LAG_BASIS = 2
MAX_WINDOW_BINS = 2000  # lags per window, at most (the lagged rows cost T x window x basis)


@dataclass(frozen=True)
class LagLeaf:
    """One lagged leaf: ``kind`` in ``LAG_KINDS``, its ``source`` (None for history; a unit's
    name or index for coupling; an event train's name for event), the window in seconds and the
    number of raised-cosine basis functions (``MIN_LAG_BASIS`` to ``LAG_BASIS``)."""

    kind: str
    source: str | int | None = None
    window_s: float = 0.25
    n_basis: int = LAG_BASIS

    def label(self, unit_names=()) -> str:
        """A readable name: "history", "coupling from B", "event reward"."""
        if self.kind == "history":
            return "history"
        source = self.source
        if self.kind == "coupling" and isinstance(source, (int, np.integer)) and (
                0 <= source < len(unit_names)):
            source = unit_names[source]
        return f"coupling from {source}" if self.kind == "coupling" else f"event {source}"


def event_trains(session: Session, events: Mapping | None) -> Mapping:
    """The event trains a session offers: ``events`` if given, else ``session.events`` if the
    session has them, else none."""
    if events is not None:
        return events
    return getattr(session, "events", None) or {}


def lag_rows(session: Session, unit, lags, events: Mapping | None = None):
    """Check the lag leaves of ``unit`` and build their lagged rows on the valid samples.

    Args:
        session: the session (its full counts: a valid sample's past may be an invalid one).
        unit: the fitted unit (name or index).
        lags: a sequence of :class:`LagLeaf`, at most ``MAX_LAG_LEAVES``.
        events: event trains by name ((T,) counts per bin); default ``session.events``.

    Returns:
        (rows (n_valid, LAG_COLUMNS) with NaN rows inside a window, used (n_valid,) bool,
        kernels per leaf). InputError with a clear message on a bad leaf.
    """
    lags = tuple(lags)
    if len(lags) > MAX_LAG_LEAVES:
        raise InputError(f"{len(lags)} lagged leaves are too many: keep at most "
                         f"{MAX_LAG_LEAVES} (history, couplings and events together)")
    keys = [(leaf.kind, leaf.source) for leaf in lags]
    if len(set(keys)) != len(keys):
        raise InputError("each lagged source may appear once")
    rows = np.zeros((session.n_valid, LAG_COLUMNS))
    used = np.ones(session.n_valid, bool)
    kernels = []
    for j, leaf in enumerate(lags):
        source = _source(session, unit, leaf, events)
        window = _window_bins(session, leaf)
        n_basis = int(leaf.n_basis)
        if not MIN_LAG_BASIS <= n_basis <= LAG_BASIS:
            raise InputError(f"a lag basis needs between {MIN_LAG_BASIS} and {LAG_BASIS} "
                             f"functions, got {n_basis}")
        k = raised_cosine_log(n_basis, window)
        block = lagged(source, k)[session.valid]
        used &= ~np.isnan(block).any(1)
        rows[:, j * LAG_BASIS:j * LAG_BASIS + n_basis] = block
        kernels.append(k)
    return rows, used, tuple(kernels)


def with_lags(enc, session: Session, lags, events: Mapping | None = None):
    """The same ``explorer.Encoding`` with these lagged leaves (``lag_leaves.LagLeaf``, at most
    ``MAX_LAG_LEAVES``; none: back to the bin grid) after its behavioural leaves. ``events``
    maps event names to (T,) counts per bin (default ``session.events``). InputError on a bad
    leaf (see :func:`lag_rows`)."""
    lags = tuple(lags)
    if not lags:  # the same object when it has none (shared encodings are known by identity)
        return enc if not enc.lags else replace(enc, lags=(), lag=None, events=None)
    rows, used, kernels = lag_rows(session, enc.unit, lags, events)
    return replace(enc, lags=lags, events=events, lag=lag_design(
        enc.grid, enc.counts, rows, used, kernels, session.bin_width))


def _window_bins(session, leaf) -> int:
    """The window in whole bins; InputError if it is not whole, too short or too long."""
    bins = float(leaf.window_s) / session.bin_width
    window = int(round(bins))
    if not np.isfinite(bins) or abs(bins - window) > 1e-6 * max(1.0, bins):
        raise InputError(f"a lag window of {leaf.window_s * 1e3:g} ms is not a whole number of "
                         f"{session.bin_width * 1e3:g} ms bins")
    if window >= session.n_samples:
        raise InputError(f"a lag window of {leaf.window_s:g} s is longer than the session "
                         f"({session.n_samples * session.bin_width:g} s)")
    if window < 2 or window > MAX_WINDOW_BINS:
        raise InputError(f"a lag window needs between 2 and {MAX_WINDOW_BINS} bins, got "
                         f"{window}")
    return window


def _source(session, unit, leaf, events) -> np.ndarray:
    """The (T,) train a leaf looks back on; InputError if it cannot be used."""
    if leaf.kind not in LAG_KINDS:
        raise InputError(f"a lagged leaf is one of {LAG_KINDS}, got {leaf.kind!r}")
    if leaf.kind == "event":
        trains = event_trains(session, events)
        if leaf.source not in trains:
            raise InputError(f"no event train named {leaf.source!r}; the session has "
                             f"{sorted(trains)}")
        train = np.asarray(trains[leaf.source], float)
        if train.shape != (session.n_samples,) or not np.all(np.isfinite(train)) or (
                train < 0).any():
            raise InputError(f"event train {leaf.source!r} must be {session.n_samples} "
                             "non-negative counts, one per bin")
        if not train.any():
            raise InputError(f"event train {leaf.source!r} has no events")
        return train
    if leaf.kind == "history":
        counts = session.unit_counts(unit)
        if not counts.any():
            raise InputError("this unit has no spikes: a history filter needs its past spikes")
        return counts
    if session.unit_name(leaf.source) == session.unit_name(unit):
        raise InputError("a unit's coupling to itself is its history: choose another unit, or "
                         "add a history leaf")
    counts = session.unit_counts(leaf.source)
    if not counts.any():
        raise InputError(f"unit {leaf.source!r} has no spikes: it cannot drive another unit")
    return counts
