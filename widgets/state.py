"""The explorer's state: one Parameterized per browser session, with a single refit effect.

Every user setting is a parameter. Any change runs :meth:`ExplorerState._refresh`, which redoes
only what the change invalidates (load the data, re-bin one variable, swap the unit, or just refit)
and publishes the results as parameters (``curves``, ``stats``, ``error``) that the views watch.
No maths here: everything numerical is a call into ``glm_core``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from contextlib import contextmanager, nullcontext
from functools import partial

import numpy as np
import panel as pn
import param

from glm_core import explorer, tuning
from glm_core.cell_table import JOINT_MAX_BINS
from glm_core.errors import InputError
from glm_core.lag_leaves import LagLeaf, with_lags
from glm_core.regularizers import REGULARIZERS
from glm_core.session import MAX_BIN_WIDTH, MIN_BIN_WIDTH
from glm_core.timing import Timer

from .carry import current_settings, follow_default_strength
from .compiles import compile_off_loop, prepare_off_loop, preparing_message, solver_compiles
from .coupling_jobs import CouplingJobs
from .decode_jobs import DecodeJobs
from .heldout_jobs import HeldOutJobs
from .jobs import Jobs, in_server
from .lag_state import LagLeaves, lag_row
from .loading import DataSets
from .population_jobs import PopulationJobs
from .scores import cv_statistics, fit_timing
from .shared import (
    FirstFit,
    shared_encodings,
    shared_first_fits,
)
from .vocabulary import (
    BINS,
    DATA_KEYS,
    ENCODING_KEYS,
    JOINT_KEYS,
    SIMULATION,
    SOURCES,
    UPLOAD,
    VariableSettings,
)

# The held-out score (one fit per fold) waits until the settings rest this long, so that a key
# press or drag pays only for the refit and the browser paints the curves without competing.
SCORE_DELAY_MS = 300


class ExplorerState(DataSets, HeldOutJobs, PopulationJobs, DecodeJobs, CouplingJobs,
                    LagLeaves, param.Parameterized):
    """Settings in, fit results out."""

    source = param.Selector(default=SIMULATION, objects=list(SOURCES))
    n_samples = param.Integer(default=20_000, bounds=(100, 2_000_000), label="samples (T)")
    seed = param.Integer(default=0, bounds=(0, 2**32 - 1))
    open_field_units = param.Integer(default=4, bounds=(4, 120), label="units (open field)",
                                     doc="Units of the open-field simulation: its first four, "
                                     "then place, grid and head-direction cells.")
    bin_width = param.Number(default=0.025, bounds=(MIN_BIN_WIDTH, MAX_BIN_WIDTH),
                             softbounds=(0.005, 1.0), step=0.005, label="bin width (s)",
                             doc="Time bin for recordings and uploads, in seconds.")
    upload = param.Parameter(default=None, doc="(filename, bytes) of an uploaded file.")
    unit = param.Selector(default=None, objects=[])
    regularizer = param.Selector(default="Smooth", objects=list(REGULARIZERS))
    n_folds = param.Integer(default=10, bounds=(2, 20), label="cross-validation folds")
    variables = param.List(default=[], item_type=VariableSettings)
    joint_map = param.Boolean(default=False, label="2-D map", doc="Pair the first two linear "
                              "variables (x and y in the open field) into one joint leaf.")
    joint_nx = param.Integer(default=20, bounds=(2, JOINT_MAX_BINS), label="2-D map: bins of x")
    joint_ny = param.Integer(default=20, bounds=(2, JOINT_MAX_BINS), label="2-D map: bins of y")
    joint_log_strength = param.Number(default=-4.0, bounds=(-6.0, 0.0), step=0.1,
                                      label="2-D map: log10 strength")
    maps = param.List(default=[], doc="TuningMap per joint leaf, from the last fit.")

    session = param.Parameter(default=None, doc="The loaded glm_core Session.")
    curves = param.List(default=[], doc="TuningCurve per variable, from the last fit.")
    stats = param.Dict(default={}, doc="Fit statistics of the last fit.")
    error = param.String(default="", doc="Message for the user; empty when all is well.")
    notice = param.String(default="", doc="What the last loaded data set could not keep of the "
                          "settings; cleared by the next change.")
    paths = param.Dict(default={}, doc="Per included variable: (log10 strengths, pooled "
                       "held-out score, its SE, current log10 strength) of its regularization "
                       "path.")
    selection = param.Parameter(default=None, doc="The last forward selection (glm_core "
                                "SelectionResult), variables by index.")
    busy = param.Boolean(default=True, doc="Loading data or compiling (True until the first fit).")
    progress = param.String(default="", doc="What is being read, while a data set loads.")
    on_load = param.Dict(default={}, doc="Settings the next loaded data set takes, e.g. from a "
                         "shared link: 'unit', and 'variables' (name -> its row's settings).")
    settled = param.Event(doc="Triggered once the settings rest after a fit: the held-out score "
                          "is then in the statistics.")
    population = param.Parameter(default=None, doc="Every unit's fit (glm_core PopulationFit) "
                                 "after 'Fit all units'; it then follows every refit.")
    show_bands = param.Boolean(default=True, label="show 95% bands",
                               doc="Shade the GLM curves' 95% bands (a view setting: no refit).")
    presentation = param.Boolean(default=False, label="presentation mode", doc="Large fonts and "
                                 "thick lines for a projector (a view setting: no refit).")

    def __init__(self, **params):
        super().__init__(**params)
        self._encoding = None
        self._fit = None
        self._row_watchers = []
        self._refresh_paused = False  # set while the state writes its own settings
        self._cv = None
        self._cv_fit_theta = None  # the full fit's theta when ``_cv`` was taken
        self._first_fit = None  # key of the shared first fit shown now, if it is one
        self._population_grid = None  # (binnings, folds, PopulationGrid) of the last population
        self._population_version = 0  # refits since start; a stale population update is skipped
        self._significance_key = None  # ``model_key()`` of ``significance``
        self._score_version = 0  # likewise for the held-out score
        self._reads = 0  # data sets requested; a read that is no longer the latest is dropped
        self._loading = False  # a data set is being read: settings for it wait in ``on_load``
        self.jobs = Jobs()  # long work (paths, Best strengths, selection, population) off the loop
        self.param.watch(self._refresh, [*DATA_KEYS, "unit", "regularizer", "n_folds",
                                         *JOINT_KEYS, "joint_log_strength"])

    def start(self):
        """Load the first data set and fit it, then compile every regularizer's solver for this
        data shape (once per process; in a server, on its background thread), so that later
        choices respond at once."""
        self._update(set(DATA_KEYS), ())
        if self._encoding is not None:
            solver_compiles.request(self._encoding)

    @contextmanager
    def _no_refresh(self):
        """Settings the state writes itself (a loaded data set's unit, Best strengths, a lesson)
        start no refit; the caller refits once. Unlike ``param.discard_events``, the widgets and
        views watching these settings still follow them."""
        self._refresh_paused = True
        try:
            yield
        finally:
            self._refresh_paused = False

    def _refresh(self, *events):
        if self._refresh_paused:
            return
        self.jobs.cancel()  # a running job's settings are gone: it is superseded
        changed = {e.name for e in events}
        if changed & set(DATA_KEYS) and not changed & {"source", "upload"} and not self.on_load:
            self.on_load = current_settings(self)  # T, seed or bin width: the same variables
        if changed & {*DATA_KEYS, "regularizer"} and in_server():
            # Slow work (loading, maybe compiling): show the busy overlay first, work on the
            # next tick. A data set is read on a worker thread, so other sessions keep working.
            self.busy = True
            if changed & set(DATA_KEYS):
                self.progress = (f"Reading {self.upload[0]}..." if self.source == UPLOAD
                                 and self.upload else f"Loading the {self.source}...")
                self._reads += 1
                self._loading = True
                pn.state.execute(partial(self._read_off_loop, self._reads, changed, events))
                return
            if self._encoding is not None and not solver_compiles.ready(self._encoding,
                                                                        self.regularizer):
                # compiled on a worker thread (or by the background one), then refit
                self.progress = preparing_message(self.regularizer)
                pn.state.execute(partial(compile_off_loop, self._encoding, self.regularizer,
                                         partial(self._update_if, self.regularizer, changed,
                                                 events)))
                return
            pn.state.add_periodic_callback(lambda: self._update(changed, events), period=20,
                                           count=1)
            return
        if changed & set(JOINT_KEYS) and in_server() and (not self.joint_map
                                                          or self.map_variables()):
            # a new layout: encoded and its solvers compiled on a worker thread, then refit
            self.busy, joint = True, (self.joint_map, self.joint_nx, self.joint_ny)
            self.progress = preparing_message("2-D map") if self.joint_map else ""
            encode = partial(self.encode, self.session, self.unit, self.variables,
                             self.joint_map)
            pn.state.execute(partial(prepare_off_loop, lambda: self._with_lag_rows(encode()),
                                     self.regularizer, partial(self._take_encoding, joint)))
            return
        self._update(changed, events)

    def _take_encoding(self, joint, encoding):
        """Refit with the ``encoding()`` built for the 2-D map settings ``joint``, unless they
        changed since (the newer change has its own)."""
        if joint != (self.joint_map, self.joint_nx, self.joint_ny):
            return
        try:
            self._encoding, self._fit, self._cv = encoding(), None, None
        except InputError as err:
            self.error, self.busy, self.progress = str(err), False, ""
            return
        self._update(set(), ())

    async def _read_off_loop(self, read, changed, events):
        """Read and encode data set number ``read`` and compile its solver on a thread (Panel
        runs this coroutine outside the document lock, so the progress message shows and other
        sessions run), then finish the update on this session's turn, unless a newer data set
        was asked for."""
        keep_file_bins = "upload" in changed or "source" in changed
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._prepare, keep_file_bins)
        await asyncio.wait([future])
        if read == self._reads and future.exception() is None:  # its solver, off the loop too
            await asyncio.wait([loop.run_in_executor(None, solver_compiles.compile,
                                                     future.result()[3], self.regularizer)])
        if read == self._reads:
            pn.state.execute(partial(self._update, changed, events, future.result), schedule=True)

    def _update_if(self, regularizer, changed, events):
        """The update after a compile for ``regularizer``, unless another was chosen since."""
        if regularizer == self.regularizer:
            self._update(changed, events)

    def _update(self, changed, events, prepared=None):
        """``prepared`` returns what :meth:`_prepare` returned (or raises its error)."""
        start = time.perf_counter()
        # A refit reaches the browser as one batched document change. (Not a data load: held
        # with an upload, the page was sent a reference to a model before the model.)
        with nullcontext() if changed & set(DATA_KEYS) else pn.io.hold():
            self._apply(changed, events, prepared)
        pn.state.log(f"update {1e3 * (time.perf_counter() - start):.1f} ms "
                     f"(solver {self.stats.get('refit time (ms)', 0):.1f} ms)", "debug")

    def _apply(self, changed, events, prepared):
        loads = bool(changed & set(DATA_KEYS))
        try:
            if loads:
                self._load(prepared() if prepared else
                           self._prepare("upload" in changed or "source" in changed))
            else:
                self.notice = ""
                self._reencode_changed(changed, events)
            self._refit()
        except InputError as err:
            self.error = str(err)
        finally:
            if loads:
                self.on_load = {}  # taken by this load (or lost with a failed one)
                self._loading = False
            self.busy = False
            self.progress = ""

    def _reencode_changed(self, changed, events):
        """Redo the encoding as far as the changed settings (not the data) invalidate it."""
        if "unit" in changed:
            with self._no_refresh():
                follow_default_strength(self.session, self.variables,
                                        next(e.old for e in events if e.name == "unit"), self.unit)
            try:
                self._encoding = explorer.with_unit(self._encoding, self.session, self.unit)
            except InputError as err:  # a lagged leaf this unit cannot have: no fit until it goes
                self._encoding = explorer.with_unit(with_lags(
                    self._encoding, self.session, ()), self.session, self.unit)
                self._clear_fit(str(err))
                raise
        elif "n_folds" in changed:
            self._encoding = explorer.with_folds(self._encoding, self.n_folds)
        elif changed & set(JOINT_KEYS):
            if self.joint_map and not self.map_variables():
                with self._no_refresh():
                    self.joint_map = False
                raise InputError("A 2-D map pairs two linear variables, and this data set "
                                 "has fewer than two: the map stays off.")
            self._encoding = self._with_lag_rows(self.encode(self.session, self.unit,
                                                             self.variables))
            self._fit = self._cv = None
        elif changed & set(ENCODING_KEYS):
            for event in events:
                if event.name in ENCODING_KEYS:
                    self._reencode(event.obj)

    def _reencode(self, row):
        """Encode one variable as its row says: one-hot bins, or a basis on fine bins."""
        v = self.variables.index(row)
        if any(v in pair for pair in self._encoding.pairs):
            if row.encoding != BINS:
                raise InputError(f"{row.name!r} is in the 2-D map, which is binned: untick "
                                 "'2-D map' to give it a basis")
            return  # its bins are the 2-D map's
        if row.encoding == BINS:
            self._encoding = explorer.with_bins(self._encoding, self.session, v, row.n_bins)
        else:
            self._encoding = explorer.with_basis(self._encoding, self.session, v, row.n_basis)
        self._fit = self._cv = None

    def _load(self, prepared):
        session, unit, rows, encoding, notices, lags = prepared
        for row, watcher in zip(self.variables, self._row_watchers):
            row.param.unwatch(watcher)
        self._row_watchers = [
            row.param.watch(self._refresh, ["include", "log_strength", *ENCODING_KEYS])
            for row in rows
        ]
        self._encoding, self._fit, self._cv = encoding, None, None
        self.notice = "; ".join(notices)
        with self._no_refresh():
            self.joint_map = bool(encoding.pairs)
            self.param.unit.objects = list(session.unit_names)
            self.unit = unit
            if self.source != SIMULATION:
                self.bin_width = session.bin_width
        self.session, self.variables = session, rows
        self._take_lag_rows(lags)

    @property
    def encoding(self):
        """The current glm_core Encoding (bins of every variable), or None before the first."""
        return self._encoding

    @property
    def fit(self):
        """The last glm_core BinnedFit, or None."""
        return self._fit

    @property
    def cv(self):
        """The last fit's cross-validation (glm_core CVResult, its fold fits), or None."""
        return self._cv

    def _first_fit_key(self, include, strengths):
        """The key of this fit in ``shared_first_fits``: a first fit (no warm start) of a
        shared encoding; None otherwise."""
        if self._fit is not None or not shared_encodings.holds(self._encoding):
            return None
        return (id(self._encoding), tuple(include), tuple(strengths), self.regularizer)

    def _refit(self):
        include, strengths = self._settings()
        init = None if self._fit is None else self._fit.theta
        key = self._first_fit_key(include, strengths)
        shared = shared_first_fits.get(key) if key else None
        try:
            with Timer() as timer:
                fit = shared.fit if shared else explorer.fit(self._encoding, include, strengths,
                                                             self.regularizer, init)
        except InputError as err:
            self._clear_fit(str(err))
            raise
        self._fit = fit
        session = self.session
        self.stats = {
            "data": session.source,
            "unit": self.unit,
            "log-likelihood": fit.log_likelihood,
            "pseudo-R2 (McFadden)": fit.pseudo_r2,
            "iterations": fit.n_iter,
            "converged": fit.converged,
            **fit_timing(shared is not None, timer),
            "samples used": session.n_valid,
            "samples dropped (NaN/inf)": session.n_dropped,
            **self._publish_filters(fit),
        }
        if shared is None:
            shared = FirstFit(self._encoding, fit,
                              tuple(tuning.tuning_curves(session, self._encoding, fit)),
                              tuple(tuning.tuning_maps(session, self._encoding, fit)))
            if key:
                shared_first_fits.put(key, shared)
        self._first_fit = key  # its held-out scores are shared too
        self.curves, self.maps = list(shared.curves), list(shared.maps)
        if in_server() and shared.cv is None:
            # the curves reach the screen first; the held-out score once they rest (a shared
            # first fit's score is known: the page then arrives complete, with no later patch)
            self._score_version += 1
            pn.state.add_periodic_callback(partial(self._settle, self._score_version),
                                           period=SCORE_DELAY_MS, count=1)
        else:
            self._settle(self._score_version)
        if self.population is not None:
            self._follow_population()
        self.error = "" if fit.converged else (
            f"The solver stopped after {fit.n_iter} iterations without converging "
            f"(residual {fit.residual:.2g}). "
            + ("Without a penalty a bin with no spikes has no finite estimate: choose Ridge, "
               "Lasso or GroupLasso." if self.regularizer == "UnRegularized"
               else "Try a larger regularization strength."))

    def _clear_fit(self, reason: str):
        """No fit of the current settings: the page and the exports show none (``reason``)."""
        self._fit = self._cv = self._first_fit = None
        self._score_version += 1  # a pending held-out score is of the old fit
        self.curves, self.maps, self.filters = [], [], []
        self.stats = {"data": self.session.source, "unit": self.unit, "fit": f"none: {reason}"}
        self.param.trigger("settled")

    def _fail(self, err):
        self.error = str(err)

    # --- held-out scores (paths, Best strengths, selection: ``HeldOutJobs``) -----------------

    def _settings(self):
        """Include flags and strengths per leaf of the encoding (a joint leaf is in the model
        when both its variables are, with the 2-D map's strength), the lagged leaves last."""
        logs = self._leaf_logs()
        return ([row.include if isinstance(leaf, LagLeaf) else
                 all(self.variables[v].include for v in leaf)
                 for leaf, row in zip(self._leaves(), self._leaf_rows())],
                [10.0**x for x in logs])

    def _leaves(self):
        return self._encoding.leaves if self._encoding is not None else tuple(
            (v,) for v in range(len(self.variables)))

    def _leaf_rows(self):
        """Per leaf its lagged leaf's row, None for a behavioural leaf."""
        lags = self.lags_in_model()
        return [None] * (len(self._leaves()) - len(lags)) + lags

    def _leaf_logs(self):
        return [row.log_strength if row is not None else self.joint_log_strength
                if len(leaf) == 2 else self.variables[leaf[0]].log_strength
                for leaf, row in zip(self._leaves(), self._leaf_rows())]

    def _settle(self, version):
        """Score the fit of refit number ``version`` and trigger ``settled`` (one document
        patch), unless a newer refit came since."""
        if version != self._score_version:
            return
        with pn.io.hold() if in_server() else nullcontext():
            self._score()
            self.param.trigger("settled")

    def _score(self):
        """Cross-validate the current model and add its held-out scores to the statistics."""
        include, strengths = self._settings()
        init, moved = ((self._cv.theta, (self._cv_fit_theta, self._fit.theta))
                       if self._cv is not None else (self._fit.theta, None))
        shared = shared_first_fits.get(self._first_fit) if self._first_fit else None
        try:
            cv = shared.cv if shared and shared.cv else explorer.cross_validate_encoding(
                self._encoding, include, strengths, self.regularizer, init, moved)
        except InputError as err:
            self.error = str(err)
            return
        if shared and not shared.cv:
            shared_first_fits.put(self._first_fit, dataclasses.replace(shared, cv=cv))
        self._cv, self._cv_fit_theta = cv, self._fit.theta
        stats = dict(self.stats)
        stats.update(cv_statistics(cv))
        stats["folds"] = f"{self._encoding.grid.n_folds} (contiguous sections)"
        if np.isnan(cv.test_bits_per_spike).any():
            stats["folds without spikes"] = int(np.isnan(cv.test_bits_per_spike).sum())
        self.stats = stats

    def apply_settings(self, settings: dict, variables: dict, unit=None, lags=None):
        """Set many things at once (a lesson): ``settings`` are parameters of this state,
        ``variables`` per variable name its row's settings, ``unit`` the unit, ``lags`` the
        lagged leaves (``LagSettings.settings()`` dicts; None: keep them); one refit. A new
        data set takes the rows, unit and lagged leaves when it has loaded; while one is
        being read (an earlier lesson's), it is read again for these settings."""
        reload = [key for key in DATA_KEYS if key in settings and self._loading]
        if reload or any(key in settings and settings[key] != getattr(self, key)
                         for key in DATA_KEYS):
            self.on_load = {"unit": unit, "variables": variables,
                            **({} if lags is None else {"lags": lags})}
            with self._no_refresh() if reload else nullcontext():
                self.param.update(**settings)
            if reload:
                self.param.trigger(*reload)
            return
        with self._no_refresh():
            self.param.update(**settings)
            for row in self.variables:
                row.param.update(variables.get(row.name, {}))
            if unit in self.param.unit.objects:
                self.unit = unit
        if lags is not None:
            self._take_lag_rows([lag_row(spec, self.session.bin_width) for spec in lags])
        self._encoding = self._with_lag_rows(self.encode(self.session, self.unit,
                                                         self.variables))
        self._fit = self._cv = None
        self._update(set(), ())

    def _set_rows(self, name, values):
        """Set one setting of every variable, then refit once."""
        with self._no_refresh():
            for row, value in zip(self.variables, values):
                setattr(row, name, value)
        self._update(set(), ())
