"""The held-out score's buttons as jobs (``widgets/jobs.py``): regularization paths, Best
strengths, forward selection. A mixin of :class:`~widgets.state.ExplorerState`, which gives it
``jobs``, the settings (``_settings``, ``_leaf_logs``, ``_leaves``, ``_leaf_rows``), ``_set_rows``
and ``_fail``.
No maths here: the work is ``glm_core.explorer``'s.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from glm_core import explorer

PATH_POINTS = np.linspace(-6.0, 0.0, 25)  # log10 strengths of a regularization path


class HeldOutJobs:
    """Paths, Best strengths and forward selection of an ExplorerState, each as a job."""

    def update_paths(self):
        """Held-out bits/spike along each included variable's strength slider (a job)."""
        paths, logs = self._paths_job(), self._leaf_logs()
        self.jobs.run("Regularization paths", lambda on_step: paths(logs, on_step),
                      self._set_paths, self._fail)

    def _paths_job(self):
        """``paths(logs, on_step, first=0, total=None)``: per included leaf, (log10 strengths,
        held-out mean, SE, its log10 strength in ``logs``) along its path, the other leaves at
        ``logs``; ``on_step`` counts from ``first`` to ``total`` (default: this job's points,
        ``paths.points``)."""
        include, _ = self._settings()
        enc, regularizer, names = self._encoding, self.regularizer, [r.name for r in self.variables]
        init = None if self._cv is None else self._cv.theta
        leaves = [leaf for leaf, keep in enumerate(include) if keep]

        def paths(logs, on_step, first=0, total=None):
            out, total = {}, total or paths.points
            for k, leaf in enumerate(leaves):
                done = first + k * len(PATH_POINTS)
                scores = explorer.path(enc, include, [10.0**x for x in logs], regularizer, leaf,
                                       PATH_POINTS, init, lambda i, _: on_step(done + i, total))
                out[enc.leaf_name(leaf, names)] = (
                    PATH_POINTS, np.array([s.pooled for s in scores]),
                    np.array([s.pooled_se for s in scores]), logs[leaf])
            return out

        paths.points = len(leaves) * len(PATH_POINTS)
        return paths

    def _set_paths(self, paths):
        self.paths = paths

    def best_strengths(self):
        """Move every included variable's strength slider to its optimum (a job): the Laplace
        evidence's maximum for Ridge and Smooth, else coordinate ascent of the held-out score
        along the paths (two sweeps); see ``explorer.best_strengths``. Then draw the paths."""
        if self.regularizer == "UnRegularized":
            self.error = "UnRegularized has no strength to choose: pick a penalty first"
            return
        include, _ = self._settings()
        enc, regularizer, start = self._encoding, self.regularizer, self._leaf_logs()
        init = None if self._cv is None else self._cv.theta
        paths = self._paths_job()

        def compute(on_step):
            found = [0]  # points the search scored

            def searched(done, planned):
                found[0] = done
                on_step(done, planned + paths.points)

            logs = explorer.best_strengths(enc, include, start, regularizer, PATH_POINTS,
                                           init=init, on_step=searched)
            logs = [round(x, 2) for x in logs]
            return logs, paths(logs, on_step, found[0], found[0] + paths.points)

        self.jobs.run("Best strengths", compute, self._set_best, self._fail)

    def _set_best(self, result):
        logs, paths = result
        rows = [r.log_strength for r in self.variables]
        joint = self.joint_log_strength
        for leaf, lag, value in zip(self._leaves(), self._leaf_rows(), logs):
            if lag is not None:
                with self._no_refresh():
                    lag.log_strength = value
            elif len(leaf) == 2:
                joint = value
            else:
                rows[leaf[0]] = value
        with self._no_refresh():
            self.joint_log_strength = joint
        self._set_rows("log_strength", rows)
        self.paths = paths

    def select_variables(self):
        """Forward selection of variables by held-out score (Wilcoxon across folds), a job."""
        _, strengths = self._settings()
        enc, regularizer = self._encoding, self.regularizer
        self.jobs.run("Which variables matter?",
                      lambda on_step: explorer.forward_select_encoding(
                          enc, strengths, regularizer, on_step=on_step),
                      partial(setattr, self, "selection"), self._fail)

    def apply_selection(self):
        """Include exactly the selected variables."""
        if self.selection is None or not self.selection.selected:
            return
        selected, lags = set(self.selection.selected), self._leaf_rows()
        chosen = {v for leaf in selected if lags[leaf] is None for v in self._leaves()[leaf]}
        with self._no_refresh():
            for leaf, lag in enumerate(lags):
                if lag is not None:
                    lag.include = leaf in selected
        self._set_rows("include", [v in chosen for v in range(len(self.variables))])
