"""The coupling matrix of an ExplorerState's session, as a job (``widgets/jobs.py``): every
coupling between the most active units on top of the session's behavioural model, computed on
request ("Coupling matrix" in the population card). A mixin of
:class:`~widgets.state.ExplorerState`, which gives it ``jobs``, the encoding, the settings
(``_settings``) and ``_fail``. No maths here: the work is ``glm_core.coupling_matrix``'s.
"""

from __future__ import annotations

import param

from glm_core.coupling_matrix import coupling_matrix, most_active


class CouplingJobs(param.Parameterized):
    """The coupling matrix, as a job; ``coupling`` holds the last one with its session."""

    coupling = param.Parameter(default=None, doc="(session, glm_core CouplingMatrix) of the last "
                               "'Coupling matrix', or None.")

    def compute_coupling(self):
        """Score the couplings between the session's most active units (at most
        ``MAX_UNITS``) with the current behavioural model, as a job; its progress shows in the
        page, and Cancel or any settings change drops it."""
        enc, session = self._encoding, self.session
        if enc is None:
            return
        include, strengths = self._settings()
        n = len(enc.behaviour_leaves)  # the matrix is on top of the behavioural model
        include, strengths = include[:n], strengths[:n]
        regularizer = self.regularizer
        units = most_active(session)

        def compute(on_step):
            return session, coupling_matrix(session, enc, units, include, strengths,
                                            regularizer, on_step=on_step)

        self.jobs.run("Coupling matrix", compute, self._set_coupling, self._fail)

    def _set_coupling(self, result):
        self.coupling = result
