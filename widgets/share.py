"""Shareable links: every setting of the explorer in the page's URL query string.

The query (see the README, "Share and export") holds the data source, T, seed, bin width, unit,
regularizer, folds and, in the data set's variable order, each variable's bins, log10 strength,
encoding and number of basis functions, with the included variables by name (``none``
for none), then the lagged leaves (``lags=history;coupling:cell B``) with, per leaf, its
include, window (ms), basis count and log10 strength::

    ?source=simulation&T=20000&seed=0&unit=simulated+unit&regularizer=Ridge&folds=10
     &include=position,head+direction&bins=20,20,16&log_strength=-3,-3,-2.5
     &encoding=B-spline,bins,bins&n_basis=10,10,10

:func:`encode_query` writes it from a state; :func:`decode_query` reads one back, checking every
value against the data set it names, and replaces what does not fit (unknown, out of range, wrong
count, junk) by the default with a notice. :class:`ShareLink` keeps a served session's URL and
state in step through Panel's ``pn.state.location.sync``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import panel as pn
import param

from glm_core.cell_table import MAX_BINS
from glm_core.errors import InputError
from glm_core.lagged_fit import MAX_LAG_LEAVES
from glm_core.regularizers import REGULARIZERS

from .lag_state import COUPLING, EVENT, HISTORY, WINDOW_MS, LagSettings
from .shared import (
    shared_history_simulation,
    shared_open_field,
    shared_recording,
    shared_simulation,
)
from .state import ExplorerState
from .vocabulary import (
    BINS,
    BUILT_IN,
    CYCLIC_SPLINE,
    HISTORY_SIMULATION,
    LINK_KEYS,
    OPEN_FIELD,
    SIMULATED,
    SIMULATION,
    SPLINE,
    UPLOAD,
    VariableSettings,
)

SOURCES = {key: source for source, key in LINK_KEYS.items()}  # a link's source -> data source
KEYS = ("source", "T", "seed", "n_units", "bin_width", "unit", "regularizer", "folds",
        "include", "bins", "log_strength", "encoding", "n_basis", "map_bins", "map_log_strength",
        "lags", "lag_include", "lag_window", "lag_basis", "lag_log_strength")
LAG_SEPARATOR = ";"  # between the lagged leaves of ``lags=`` (a unit's name may hold a comma)
RECORDING_BIN_WIDTH = (0.005, 1.0)  # s: the recording's bin widths (finer ones: GBs of bins)
MAX_SEED = ExplorerState.param.seed.bounds[1]
NO_VARIABLE = "none"  # the include= of a model without any variable (an empty value is lost)


@dataclass(frozen=True)
class SharedSettings:
    """A decoded query: ``state`` are ExplorerState parameters, ``on_load`` the settings its data
    set takes when it loads (ExplorerState.on_load), ``notices`` what was replaced and why."""

    state: dict
    on_load: dict
    notices: tuple[str, ...]


def encode_query(state: ExplorerState) -> dict[str, str]:
    """The query of ``state``'s current settings (values as text). T and seed apply to the
    simulations, n_units to the open field, bin_width to the recording; all are always written,
    as are the 2-D map's bins and log10 strength (used where the data set has the map)."""
    return dict(
        source=LINK_KEYS[state.source], T=str(state.n_samples), seed=str(state.seed),
        n_units=str(state.open_field_units),
        bin_width=repr(float(state.bin_width)), unit=str(state.unit),
        regularizer=state.regularizer, folds=str(state.n_folds),
        include=",".join(row.name for row in state.variables if row.include) or NO_VARIABLE,
        bins=",".join(str(row.n_bins) for row in state.variables),
        log_strength=",".join(repr(round(float(row.log_strength), 6)) for row in state.variables),
        encoding=",".join(row.encoding for row in state.variables),
        n_basis=",".join(str(row.n_basis) for row in state.variables),
        map_bins=f"{state.joint_nx},{state.joint_ny}",
        map_log_strength=repr(round(float(state.joint_log_strength), 6)),
        **lag_query(state.lags))


def lag_query(rows) -> dict[str, str]:
    """The lagged leaves' keys: ``lags`` (history, coupling:<unit>, event:<train>, separated by
    ``;``; ``none`` for none), then per leaf its include (1 or 0), window (ms), basis count and
    log10 strength."""
    return dict(
        lags=LAG_SEPARATOR.join(
            r.kind if r.source is None else f"{r.kind}:{r.source}" for r in rows) or NO_VARIABLE,
        lag_include=",".join("1" if r.include else "0" for r in rows),
        lag_window=",".join(f"{r.window_ms:g}" for r in rows),
        lag_basis=",".join(str(r.n_basis) for r in rows),
        lag_log_strength=",".join(repr(round(float(r.log_strength), 6)) for r in rows))


def load_shared(source: str, n_samples: int, seed: int, bin_width: float, n_units: int):
    """The built-in data set a link names (the server's shared copies)."""
    if source == SIMULATION:
        return shared_simulation(n_samples, seed)
    if source == OPEN_FIELD:
        return shared_open_field(n_samples, seed, n_units=n_units)
    if source == HISTORY_SIMULATION:
        return shared_history_simulation(n_samples, seed)
    return shared_recording(bin_width)


def decode_query(query: dict, load: Callable = load_shared) -> SharedSettings:
    """Settings from a query (values as text or as Panel parses them); ``load(source, n_samples,
    seed, bin_width, n_units)`` returns the data set, whose units and variables the rest is checked
    against. Missing keys keep their defaults silently; bad ones with a notice."""
    values = {key: str(value) for key, value in query.items() if key in KEYS}
    defaults = ExplorerState.param
    notices = []

    def take(key, parse, default, rule):
        if key not in values:
            return default
        try:
            return parse(values[key])
        except (ValueError, TypeError):
            notices.append(f"{key}={values[key]!r:.60} ({rule}): {_default_text(default)} is "
                           "used instead")
            return default

    keys = [LINK_KEYS[built_in] for built_in in BUILT_IN]
    source = take("source", lambda s: _member(s, keys), LINK_KEYS[SIMULATION],
                  "one of " + ", ".join(keys))
    if values.get("source") == LINK_KEYS[UPLOAD]:
        notices[-1] = ("source=upload: an uploaded file cannot be shared by a link; the "
                       "simulation is shown instead (upload the file again)")
    state = {"source": SOURCES[source]}
    if state["source"] in SIMULATED:
        state["n_samples"] = take("T", lambda s: _integer(s, *defaults.n_samples.bounds),
                                  defaults.n_samples.default, "whole number, 100 to 2,000,000")
        state["seed"] = take("seed", lambda s: _integer(s, 0, MAX_SEED), defaults.seed.default,
                             f"whole number, 0 to {MAX_SEED}")
        if state["source"] == OPEN_FIELD:
            low, high = defaults.open_field_units.bounds
            state["open_field_units"] = take(
                "n_units", lambda s: _integer(s, low, high), defaults.open_field_units.default,
                f"whole number, {low} to {high}")
    else:
        state["bin_width"] = take("bin_width", lambda s: _number(s, *RECORDING_BIN_WIDTH),
                                  defaults.bin_width.default, "seconds, 0.005 to 1")
    state["regularizer"] = take("regularizer", lambda s: _member(s, REGULARIZERS),
                                defaults.regularizer.default, "one of " + ", ".join(REGULARIZERS))
    state["n_folds"] = take("folds", lambda s: _integer(s, *defaults.n_folds.bounds),
                            defaults.n_folds.default, "whole number, 2 to 20")
    low, high = defaults.joint_nx.bounds
    map_bins = take("map_bins", lambda s: _per_variable(s, 2, lambda b: _integer(b, low, high)),
                    None, f"two whole numbers, {low} to {high}")
    if map_bins is not None:
        state["joint_nx"], state["joint_ny"] = map_bins
    map_log = take("map_log_strength", lambda s: _number(s, -6.0, 0.0), None, "a number, -6 to 0")
    if map_log is not None:
        state["joint_log_strength"] = map_log
    try:
        session = load(state["source"], state.get("n_samples"), state.get("seed"),
                       state.get("bin_width"), state.get("open_field_units"))
    except InputError as err:  # the state reads it again and shows the message
        return SharedSettings(state, {}, (*notices, str(err)))
    on_load = {}
    unit = take("unit", lambda s: _member(s, session.unit_names), None,
                "a unit of this data set")
    if unit is not None:
        on_load["unit"] = unit
    names, n = session.names, len(session.names)
    include = take("include", lambda s: _names(s, names), None,
                   "names of this data set's variables: " + ", ".join(names))
    bins = take("bins", lambda s: _per_variable(s, n, lambda b: _integer(b, 2, MAX_BINS)), None,
                f"{n} whole numbers, 2 to {MAX_BINS}")
    logs = take("log_strength", lambda s: _per_variable(s, n, lambda x: _number(x, -6.0, 0.0)),
                None, f"{n} numbers, -6 to 0")
    spline = [CYCLIC_SPLINE if var.circular else SPLINE for var in session.variables]
    encodings = take("encoding", lambda s: _encodings(s, spline), None, "per variable: bins, or "
                     + ", ".join(f"{b} for {a}" for a, b in zip(names, spline)))
    low, high = VariableSettings.param.n_basis.bounds
    n_basis = take("n_basis", lambda s: _per_variable(s, n, lambda b: _integer(b, low, high)),
                   None, f"{n} whole numbers, {low} to {high}")
    rows = {name: {} for name in names}
    for v, name in enumerate(names):
        for key, values_ in (("include", include), ("n_bins", bins), ("log_strength", logs),
                             ("encoding", encodings), ("n_basis", n_basis)):
            if values_ is not None:
                rows[name][key] = name in include if key == "include" else values_[v]
    on_load["variables"] = {name: row for name, row in rows.items() if row}
    lags = take("lags", lambda s: _lag_leaves(s, session), None,
                f"at most {MAX_LAG_LEAVES} of history, coupling:<unit>, event:<event train>, "
                "separated by ;")
    if lags == []:  # none: the other lag keys are empty
        on_load["lags"] = []
    elif lags is not None:
        n_lags, low, high = len(lags), *LagSettings.param.n_basis.bounds
        columns = {
            "include": take("lag_include", lambda s: _per_variable(s, n_lags, _flag), None,
                            f"{n_lags} of 1 or 0"),
            "window_ms": take("lag_window", lambda s: _per_variable(
                s, n_lags, lambda x: _number(x, *WINDOW_MS)), None,
                f"{n_lags} windows in ms, {WINDOW_MS[0]:g} to {WINDOW_MS[1]:g}"),
            "n_basis": take("lag_basis", lambda s: _per_variable(
                s, n_lags, lambda b: _integer(b, low, high)), None,
                f"{n_lags} whole numbers, {low} to {high}"),
            "log_strength": take("lag_log_strength", lambda s: _per_variable(
                s, n_lags, lambda x: _number(x, -6.0, 0.0)), None, f"{n_lags} numbers, -6 to 0"),
        }
        on_load["lags"] = [{"kind": kind, "source": source,
                            **{key: values[j] for key, values in columns.items()
                               if values is not None}}
                           for j, (kind, source) in enumerate(lags)]
    return SharedSettings(state, on_load, tuple(notices))


class ShareQuery(param.Parameterized):
    """The query string's values, as ``pn.state.location.sync`` reads and writes them."""

    source = param.Parameter()
    T = param.Parameter()
    seed = param.Parameter()
    n_units = param.Parameter()
    bin_width = param.Parameter()
    unit = param.Parameter()
    regularizer = param.Parameter()
    folds = param.Parameter()
    include = param.Parameter()
    bins = param.Parameter()
    log_strength = param.Parameter()
    encoding = param.Parameter()
    n_basis = param.Parameter()
    map_bins = param.Parameter()
    map_log_strength = param.Parameter()
    lags = param.Parameter()
    lag_include = param.Parameter()
    lag_window = param.Parameter()
    lag_basis = param.Parameter()
    lag_log_strength = param.Parameter()


class ShareLink:
    """A served session's URL: read once at the start (``location.sync`` brings its values into
    a :class:`ShareQuery`), then rewritten with every refit (``curves``), in the same document
    patch as the new curves, so that a link copied at any time holds the settings shown."""

    def __init__(self, location=None):
        self.query = ShareQuery()
        self.location = location or pn.state.location
        self.location.sync(self.query, list(KEYS))  # the URL's values into self.query
        given = {key: getattr(self.query, key) for key in KEYS}
        self.settings = decode_query({k: v for k, v in given.items() if v is not None})
        self.notice = pn.pane.Alert(
            "**This link's settings could not all be used.** " + "; ".join(self.settings.notices),
            alert_type="warning", visible=bool(self.settings.notices),
            sizing_mode="stretch_width", css_classes=["share-notice"])

    def new_state(self) -> ExplorerState:
        """An ExplorerState with the link's settings, its URL following every fit."""
        state = ExplorerState(**self.settings.state, on_load=self.settings.on_load)
        # written with each refit (in its document patch), not only after the held-out score;
        # again with the score, in case the browser's own query came back in between
        state.param.watch(lambda _: self._write(state), ["curves", "settled"])
        # A fit made while the page is built is written once the browser has the page (the
        # browser's own URL would otherwise win).
        pn.state.onload(lambda: self._write(state))
        return state

    def _write(self, state: ExplorerState) -> None:
        # Every key, each time: the browser may have sent back its own (older) query, and a
        # synced parameter that did not change would not be written again.
        if state.variables:
            self.location.update_query(**encode_query(state))


def _default_text(default) -> str:
    return "the data set's default" if default is None else f"{default!r}"


def _member(text: str, options):
    if text not in options:
        raise ValueError(text)
    return text


def _integer(text: str, low: int, high: int) -> int:
    number = float(text)
    if not number.is_integer() or not low <= number <= high:
        raise ValueError(text)
    return int(number)


def _number(text: str, low: float, high: float) -> float:
    number = float(text)
    if not low <= number <= high:  # NaN fails too
        raise ValueError(text)
    return number


def _names(text: str, names) -> set[str]:
    if text.strip() in ("", NO_VARIABLE) and NO_VARIABLE not in names:
        return set()
    chosen = {name.strip() for name in text.split(",")}
    if not chosen <= set(names):
        raise ValueError(text)
    return chosen


def _per_variable(text: str, n: int, parse) -> list:
    parts = text.split(",")
    if len(parts) != n:
        raise ValueError(text)
    return [parse(part.strip()) for part in parts]


def _flag(text: str) -> bool:
    if text not in ("1", "0"):
        raise ValueError(text)
    return text == "1"


def _lag_leaves(text: str, session) -> list[tuple]:
    """(kind, source) of each lagged leaf of ``lags=``, checked against ``session``."""
    if text.strip() in ("", NO_VARIABLE):
        return []
    leaves = []
    for part in text.split(LAG_SEPARATOR):
        kind, _, source = part.strip().partition(":")
        if kind == HISTORY and not source:
            leaves.append((kind, None))
        elif (kind, source in session.unit_names, source in session.events) in (
                (COUPLING, True, False), (COUPLING, True, True), (EVENT, False, True),
                (EVENT, True, True)):
            leaves.append((kind, source))
        else:
            raise ValueError(text)
    if len(leaves) > MAX_LAG_LEAVES or len(set(leaves)) != len(leaves):
        raise ValueError(text)
    return leaves


def _encodings(text: str, splines) -> list[str]:
    """One encoding per variable: bins, or that variable's spline (``splines[v]``)."""
    parts = _per_variable(text, len(splines), str)
    if any(e not in (BINS, spline) for e, spline in zip(parts, splines)):
        raise ValueError(text)
    return parts
