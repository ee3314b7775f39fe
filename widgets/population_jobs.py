"""The population ("Fit all units") of an ExplorerState: every unit fitted with the session's
settings, as a job (``widgets/jobs.py``) when asked for, and refitted after each of the unit's
refits once it exists; and each unit's shuffle significance ("Shuffle significance"), a job whose
result holds while the model's settings do. A mixin of :class:`~widgets.state.ExplorerState`,
which gives it ``jobs``, the encoding, the settings (``_settings``) and ``_fail``. No maths here:
the work is ``glm_core.population``'s and ``glm_core.shuffle``'s.
"""

from __future__ import annotations

from functools import partial

import panel as pn
import param

from glm_core import population, shuffle
from glm_core.errors import InputError

from .jobs import in_server


class PopulationJobs(param.Parameterized):
    """Every unit's fit, as a job, and kept following the unit's refits; their significance."""

    significance = param.Parameter(default=None, doc="The last shuffle significance (glm_core "
                                   "Significance), for the model of ``significance_key``.")
    significant_only = param.Boolean(default=False, label="significant units only",
                                     doc="The population table lists the units with shuffle "
                                     "p < 0.05 only (a view setting: no refit).")

    def update_population(self, cross_validate: bool = True):
        """Fit every unit of the session with the current settings (with ``cross_validate``,
        their held-out scores too)."""
        compute = self._population_job(cross_validate)
        if compute is not None:
            try:
                self._set_population(compute(None))
            except InputError as err:
                self.error = str(err)

    def fit_all_units(self):
        """:meth:`update_population` as a job ("Fit all units"), off the event loop."""
        compute = self._population_job(True)
        if compute is not None:
            self.jobs.run("Fit all units", compute, self._set_population, self._fail)

    def _population_job(self, cross_validate):
        """``compute(on_step) -> (cached grid, PopulationFit)`` on the current settings, or None
        when there is nothing to fit."""
        enc = self._encoding
        if enc is None:
            return None
        init, cached = self.population, self._population_grid
        counts = self.session.counts[self.session.valid]
        n = len(enc.behaviour_leaves)  # the population has no lagged leaves
        include, strengths = (values[:n] for values in self._settings())
        regularizer = self.regularizer

        def compute(on_step):
            grid = cached
            if grid is None or grid[0] is not enc.binnings or grid[1] != enc.grid.n_folds:
                grid = (enc.binnings, enc.grid.n_folds,
                        population.population_grid(enc.grid, counts))
                init_ = None
            else:
                init_ = init
            n_bins, circular, bases = population.leaf_design(enc)
            return grid, population.fit_population(
                grid[2], n_bins, include, strengths, regularizer, circular, cross_validate,
                init=init_, bases=bases, on_step=on_step)

        return compute

    def _set_population(self, result):
        self._population_grid, self.population = result

    def _follow_population(self):
        """Refit the population after the unit's refit, so that the unit's curves stay instant:
        its fits on the next tick, its held-out scores (slower) once 0.4 s pass without another
        change; with a 2-D map (seconds) both as a job. Updates overtaken by a newer change are
        skipped."""
        if not in_server():
            self.update_population()
            return
        if self._encoding is not None and self._encoding.pairs:
            # every unit's 2-D map takes seconds: off the event loop, superseded by a change
            compute = self._population_job(True)
            if compute is not None:
                self.jobs.run("Every unit's map", compute, self._set_population, self._fail)
            return
        self._population_version += 1
        version = self._population_version

        def update(cross_validate):
            if version == self._population_version:
                self.update_population(cross_validate)

        pn.state.curdoc.add_next_tick_callback(partial(update, False))
        pn.state.add_periodic_callback(partial(update, True), period=400, count=1)

    # --- shuffle significance ------------------------------------------------------------

    def run_significance(self, n_shuffles: int = shuffle.N_SHUFFLES):
        """Every unit's shuffle p-value and z-score at the current settings, as a job
        ("Shuffle significance": its progress, cancellable; a settings change drops it)."""
        enc, session = self._encoding, self.session
        if enc is None:
            return
        include, strengths = self._settings()
        regularizer, key = self.regularizer, self.model_key()
        n_bins, circular, bases = population.leaf_design(enc)

        def compute(on_step):
            return key, shuffle.shuffle_significance(
                enc.grid, session.counts, session.valid, session.bin_width, n_bins, include,
                strengths, regularizer, circular, bases, n_shuffles=n_shuffles, on_step=on_step)

        self.jobs.run("Shuffle significance", compute, self._set_significance, self._fail)

    def _set_significance(self, result):
        self._significance_key, self.significance = result

    def model_key(self) -> tuple:
        """What the population's scores depend on: the data's binning, bases and pairs, the
        folds, the included leaves, strengths and regularizer (not the selected unit)."""
        enc = self._encoding
        include, strengths = self._settings()
        return (id(enc.binnings), id(enc.bases), enc.pairs, enc.grid.n_folds, tuple(include),
                tuple(strengths), self.regularizer)

    def current_significance(self):
        """The significance of the current model, or None (never run, or the settings changed
        since)."""
        if self.significance is None or self._encoding is None:
            return None
        key = self._significance_key
        return self.significance if key == self.model_key() else None
