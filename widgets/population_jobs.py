"""The population ("Fit all units") of an ExplorerState: every unit fitted with the session's
settings, as a job (``widgets/jobs.py``) when asked for, and refitted after each of the unit's
refits once it exists. A mixin of :class:`~widgets.state.ExplorerState`, which gives it ``jobs``,
the encoding, the settings (``_settings``) and ``_fail``. No maths here: the work is
``glm_core.population``'s.
"""

from __future__ import annotations

from functools import partial

import panel as pn

from glm_core import population
from glm_core.errors import InputError

from .jobs import in_server


class PopulationJobs:
    """Every unit's fit, as a job, and kept following the unit's refits."""

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
        (with a message) when there is nothing to fit."""
        enc = self._encoding
        if enc is None:
            return None
        if enc.pairs:
            self.error = "The population view fits 1-D leaves only: untick '2-D map' first."
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
            return grid, population.fit_population(
                grid[2], enc.n_bins, include, strengths, regularizer, enc.circular,
                cross_validate, init=init_, bases=enc.bases)

        return compute

    def _set_population(self, result):
        self._population_grid, self.population = result

    def _follow_population(self):
        """Refit the population after the unit's refit, so that the unit's curves stay instant:
        its fits on the next tick, its held-out scores (slower) once 0.4 s pass without another
        change. Updates overtaken by a newer change are skipped."""
        if not in_server():
            self.update_population()
            return
        self._population_version += 1
        version = self._population_version

        def update(cross_validate):
            if version == self._population_version:
                self.update_population(cross_validate)

        pn.state.curdoc.add_next_tick_callback(partial(update, False))
        pn.state.add_periodic_callback(partial(update, True), period=400, count=1)
