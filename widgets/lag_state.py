"""Lagged leaves in a session's state: spike history, coupling from other units, event kernels.

:class:`LagSettings` is one lagged leaf's row (include, window, basis count, log10 strength), as
``VariableSettings`` is a behavioural variable's. :class:`LagLeaves` is a mixin of
:class:`~widgets.state.ExplorerState`: its ``lags`` rows enter the encoding after the
behavioural leaves (``glm_core.lag_leaves.with_lags``) and the settings (``_settings``); an
include or strength change refits through the state's one refresh effect, a window or basis
change rebuilds the lagged rows first (the solvers keep their shapes: nothing recompiles). A
leaf the data cannot have (a window longer than the session or not a whole number of bins,
history of a unit without spikes, coupling of a unit to itself, too many leaves) is refused with
a message and the previous model stays. No maths here: everything numerical is glm_core's.
"""

from __future__ import annotations

from functools import partial

import panel as pn
import param

from glm_core.errors import InputError
from glm_core.lag_curves import filter_curves
from glm_core.lag_leaves import LAG_KINDS, MIN_LAG_BASIS, LagLeaf, with_lags
from glm_core.lagged_fit import LAG_BASIS, MAX_LAG_LEAVES

from .compiles import compile_off_loop, solver_compiles
from .jobs import in_server
from .vocabulary import HISTORY_SIMULATION

HISTORY, COUPLING, EVENT = LAG_KINDS
DEFAULT_WINDOW_MS = {HISTORY: 250.0, COUPLING: 250.0, EVENT: 500.0}
WINDOW_MS = (20.0, 1000.0)  # the window slider's range
LAG_KEYS = ("window_ms", "n_basis")  # a lagged leaf's settings that rebuild its rows
PREPARING_LAGS = "Preparing the lagged-leaf solver…"


def whole_bins(window_ms: float, bin_width: float) -> float:
    """``window_ms`` moved to the nearest whole number of bins (at least 2), in ms."""
    bin_ms = 1e3 * bin_width
    return round(max(2, round(float(window_ms) / bin_ms)) * bin_ms, 6)


class LagSettings(param.Parameterized):
    """How one lagged leaf enters the model: its ``kind`` (history, coupling, event) and
    ``source`` (None, a unit's name, an event train's name) are fixed; the rest are settings."""

    include = param.Boolean(default=True, doc="Use this lagged leaf in the model.")
    window_ms = param.Number(default=250.0, bounds=WINDOW_MS, step=10.0, label="window (ms)",
                             doc="How far back the leaf looks, a whole number of bins.")
    n_basis = param.Integer(default=LAG_BASIS, bounds=(MIN_LAG_BASIS, LAG_BASIS),
                            label="basis functions", doc="Raised-cosine lag basis functions.")
    log_strength = param.Number(default=-3.0, bounds=(-6.0, 0.0), step=0.1,
                                label="log10 strength", doc="Regularization strength (log10).")

    def __init__(self, kind: str, source: str | None = None, **params):
        if kind not in LAG_KINDS:
            raise InputError(f"a lagged leaf is one of {LAG_KINDS}, got {kind!r}")
        super().__init__(name=LagLeaf(kind, source).label(), **params)
        self.kind, self.source = kind, source

    def leaf(self) -> LagLeaf:
        """The glm_core leaf of these settings."""
        return LagLeaf(self.kind, self.source, self.window_ms / 1e3, self.n_basis)

    def settings(self) -> dict:
        """Everything that makes this row, as ``lag_row`` takes it back."""
        return dict(kind=self.kind, source=self.source, include=self.include,
                    window_ms=self.window_ms, n_basis=self.n_basis,
                    log_strength=self.log_strength)


def lag_row(settings: dict, bin_width: float) -> LagSettings:
    """A row from ``LagSettings.settings()``, its window moved to whole bins of ``bin_width``."""
    settings = dict(settings)
    kind, source = settings.pop("kind"), settings.pop("source", None)
    settings["window_ms"] = whole_bins(settings.get("window_ms", DEFAULT_WINDOW_MS[kind]),
                                       bin_width)
    return LagSettings(kind, source, **settings)


def lagged_rows(session, unit, encoding, specs) -> tuple[list, object, list[str]]:
    """The rows ``specs`` (``LagSettings.settings()`` dicts) that ``session`` can have, and the
    encoding with them; a notice for each one it cannot (on a worker thread: no page change).

    Returns:
        ``(rows, encoding, notices)``.
    """
    notices, rows = [], []
    for spec in specs:
        try:
            row = lag_row(spec, session.bin_width)
            if len(rows) == MAX_LAG_LEAVES:
                raise InputError(f"at most {MAX_LAG_LEAVES} lagged leaves")
            with_lags(encoding, session, [r.leaf() for r in (*rows, row)])
        except (InputError, ValueError) as err:
            name = LagLeaf(spec.get("kind"), spec.get("source")).label()
            notices.append(f"lagged leaf {name!r} does not apply to this data ({err})")
            continue
        rows.append(row)
    return rows, with_lags(encoding, session, [r.leaf() for r in rows]), notices


class LagLeaves(param.Parameterized):
    """The lagged leaves of an ExplorerState (which gives ``_encoding``, ``session``, ``unit``,
    ``jobs``, ``_refresh``, ``_no_refresh``, ``_update`` and ``_update_if``)."""

    lags = param.List(default=[], item_type=LagSettings, doc="The lagged leaves' rows.")
    filters = param.List(default=[], doc="FilterCurve per lagged leaf, from the last fit.")

    def __init__(self, **params):
        super().__init__(**params)
        self._lag_watchers = []

    def add_lag(self, kind: str, source: str | None = None, **settings) -> bool:
        """Add a lagged leaf (``settings``: its row's) and refit; False, with a message in
        ``error``, if the data cannot have it."""
        try:
            row = lag_row(dict(kind=kind, source=source, **settings), self.session.bin_width)
        except (InputError, ValueError) as err:
            self.error = str(err)
            return False
        return self._set_lags([*self.lags, row])

    def remove_lag(self, row: LagSettings) -> bool:
        """Take a lagged leaf out and refit."""
        return self._set_lags([r for r in self.lags if r is not row])

    def set_couplings(self, units) -> bool:
        """Exactly one coupling leaf from each of ``units`` (the coupling picker), keeping the
        settings of those already there; one refit."""
        units = list(units)
        kept = [r for r in self.lags if r.kind != COUPLING or r.source in units]
        have = {r.source for r in kept if r.kind == COUPLING}
        try:
            new = [lag_row(dict(kind=COUPLING, source=u), self.session.bin_width)
                   for u in units if u not in have]
        except InputError as err:
            self.error = str(err)
            return False
        return self._set_lags(kept + new)

    def _set_lags(self, rows) -> bool:
        if self._encoding is None:
            return False
        try:
            encoding = with_lags(self._encoding, self.session, [r.leaf() for r in rows])
        except InputError as err:
            self.error = str(err)
            return False
        self._take_lag_rows(rows)
        self._lag_encoding(encoding)
        return True

    def _take_lag_rows(self, rows):
        """Show ``rows`` and refit when their settings change."""
        for row, watchers in zip(self.lags, self._lag_watchers):
            for watcher in watchers:
                row.param.unwatch(watcher)
        self._lag_watchers = [(row.param.watch(self._refresh, ["include", "log_strength"]),
                               row.param.watch(self._relag, list(LAG_KEYS)))
                              for row in rows]
        with self._no_refresh():
            self.lags = list(rows)

    def _relag(self, *events):
        """A window or basis count changed: rebuild the lagged rows, or go back with a message."""
        if self._refresh_paused or self._encoding is None:
            return
        try:
            encoding = with_lags(self._encoding, self.session, self._lag_leaves())
        except InputError as err:
            with self._no_refresh():
                for event in events:
                    setattr(event.obj, event.name, event.old)
            self.error = str(err)
            return
        self._lag_encoding(encoding)

    def _lag_encoding(self, encoding):
        """Fit ``encoding`` (new lagged leaves): in a server whose solver for its shapes is not
        compiled yet, compile it off the event loop first, behind the busy overlay."""
        self.jobs.cancel()
        self._encoding, self._fit, self._cv = encoding, None, None
        if in_server() and not solver_compiles.ready(encoding, self.regularizer):
            self.busy, self.progress = True, PREPARING_LAGS
            pn.state.execute(partial(compile_off_loop, encoding, self.regularizer,
                                     partial(self._update_if, self.regularizer, set(), ())))
            return
        self._update(set(), ())

    def _lag_specs(self, keep_file_bins) -> list[dict]:
        """The lagged leaves a data set being loaded takes: a link's or lesson's, else those
        shown now; a newly chosen history simulation starts with the unit's history."""
        if "lags" in self.on_load:
            return list(self.on_load["lags"])
        specs = [row.settings() for row in self.lags]
        if keep_file_bins and self.source == HISTORY_SIMULATION and not specs:
            specs = [dict(kind=HISTORY)]
        return specs

    def _lag_leaves(self) -> list[LagLeaf]:
        return [row.leaf() for row in self.lags]

    def lags_in_model(self) -> list[LagSettings]:
        """The rows whose leaves the current encoding holds (none after a refused leaf)."""
        return list(self.lags) if self._encoding is not None and self._encoding.lags else []

    def _with_lag_rows(self, encoding):
        """``encoding`` with the current rows' lagged leaves."""
        return with_lags(encoding, self.session, self._lag_leaves()) if self.lags else encoding

    def _publish_filters(self, fit) -> dict:
        """Publish the lagged leaves' gain curves of ``fit``; returns its statistics."""
        self.filters = filter_curves(self.session, self._encoding, fit)
        n = getattr(fit, "n_dropped", 0)
        return {"samples dropped (lag windows)": n} if self._encoding.lags else {}
