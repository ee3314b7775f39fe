"""Decoding of an ExplorerState: what the population says about the behaviour, cross-validated.

The settings of the Decode card (what to decode, the window, the prior) and its result, with the
job that computes it (``widgets/jobs.py``): it fits every unit first when the population is not
fitted with cross-validation on the current settings (as "Fit all units"), then decodes
(``glm_core.decode_cv``). The maps each fold is decoded with are made once per population fit
and target and kept: changing the window or the prior only decodes again; changing what is
decoded makes its maps from the same fits. A mixin of :class:`~widgets.state.ExplorerState`
(``jobs``, ``session``, ``population`` and ``PopulationJobs``). No maths here.
"""

from __future__ import annotations

from functools import partial

import param

from glm_core.decode_cv import decode_windows, fold_maps

FLAT, CONTINUITY = "flat", "continuity"  # the decoding priors


class DecodeJobs(param.Parameterized):
    """The Decode card's settings, its result and its job."""

    decode_target = param.Selector(default=None, objects=[], label="decode",
                                   doc="A variable, or the 2-D map (two variables' names).")
    decode_window_ms = param.Number(default=250.0, bounds=(1.0, 60_000.0), step=25.0,
                                    label="window (ms)", doc="Decoding window; rounded to a "
                                    "whole number of bins.")
    decode_prior = param.Selector(default=FLAT, objects=[FLAT, CONTINUITY], label="prior")
    decode_sigma = param.Number(default=2.0, bounds=(0.1, 50.0), step=0.5,
                                label="continuity sigma (bins per window)",
                                doc="SD of the state's random walk between windows, in bins.")
    decoding = param.Parameter(default=None, doc="The last decoding (glm_core Decoding).")
    decode_message = param.String(default="", doc="Why there is no decoding, or that the fits "
                                  "changed since it was made; empty when all is well.")

    def __init__(self, **params):
        super().__init__(**params)
        self._decoded_fit = None  # the PopulationFit the shown decoding used
        self._fold_maps = None  # (PopulationFit, target, FoldMaps) of the last decoding
        self._new_targets = False  # set while a new data set's targets are written
        self.param.watch(self._new_session, "session")
        self.param.watch(self._redecode, ["decode_target", "decode_window_ms", "decode_prior",
                                          "decode_sigma"])
        self.param.watch(self._population_changed, "population")

    def decode(self) -> None:
        """Decode the chosen target as a job ("Decoding"): every unit is fitted first unless the
        population is fitted with cross-validation on the current settings."""
        if self.session is None or self.decode_target is None:
            self.decode_message = "Load a data set first."
            return
        ready = self._population_ready()
        fit_units = None if ready else self._population_job(True)
        if not ready and fit_units is None:
            self.decode_message = self.error or "Nothing to fit yet."
            return
        cached, kept = (self._population_grid, self.population), self._fold_maps
        session, encoding, target = self.session, self._encoding, self.decode_target
        window_s = self.decode_window_ms / 1e3
        sigma = self.decode_sigma if self.decode_prior == CONTINUITY else None

        def compute(on_step):
            grid, fit = fit_units(on_step) if fit_units else cached
            if kept is not None and kept[0] is fit and kept[1] == target:
                maps = kept[2]
            else:
                maps = fold_maps(session, encoding, fit, grid[2], target)
            return (grid, fit, (fit, target, maps),
                    decode_windows(session, encoding, maps, window_s, sigma, on_step))

        self.jobs.run("Decoding", compute, partial(self._decoded, fit_units is not None),
                      self._decode_failed)

    def _population_ready(self) -> bool:
        grid, fit = self._population_grid, self.population
        return (fit is not None and fit.cv_theta is not None and grid is not None
                and self._encoding is not None and grid[0] is self._encoding.binnings
                and grid[1] == self._encoding.grid.n_folds)

    def _decoded(self, fitted: bool, result) -> None:
        grid, fit, maps, decoding = result
        self._decoded_fit, self._fold_maps = fit, maps
        if fitted:
            self._set_population((grid, fit))
        self.decoding, self.decode_message = decoding, ""

    def _decode_failed(self, err) -> None:
        self.decoding, self.decode_message = None, str(err)

    def _redecode(self, *_):
        """A changed setting decodes again, once something was decoded (or refused)."""
        if not self._new_targets and (self.decoding is not None or self.decode_message):
            self.decode()

    def _new_session(self, event) -> None:
        session = event.new
        pair = self.map_variables() if session is not None else None
        targets = {f"{pair[0]}, {pair[1]} (2-D map)": pair} if pair else {}  # the map first
        targets.update({v.name: v.name for v in session.variables} if session else {})
        self._decoded_fit = self._fold_maps = None
        self._new_targets = True  # a new data set: nothing decoded, nothing to redo
        try:
            self.param.decode_target.objects = targets
            self.decode_target = next(iter(targets.values()), None)
            self.decoding, self.decode_message = None, ""
        finally:
            self._new_targets = False

    def _population_changed(self, event) -> None:
        if self.decoding is not None and event.new is not self._decoded_fit:
            self.decode_message = ("The fits changed since this decoding: press Decode to "
                                   "update it.")

