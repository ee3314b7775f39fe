"""Reading a data set and encoding it, for :class:`~widgets.state.ExplorerState`: the selected
source's session (shared between tabs where it is built in), its variable rows, unit and encoding
(with the lagged leaves the settings ask for). A mixin: the state gives the settings
(``source``, ``n_samples``, ``seed``, ``open_field_units``, ``bin_width``, ``upload``,
``on_load``, the 2-D map's, ``n_folds``) and ``_lag_specs``. No page change here, so
:meth:`DataSets._prepare` may run on a worker thread. No maths: the work is ``glm_core``'s.
"""

from __future__ import annotations

from glm_core import explorer
from glm_core.cell_table import max_bins_for
from glm_core.errors import InputError
from glm_core.loaders import load_upload

from .carry import take_settings
from .lag_state import lagged_rows
from .shared import (
    shared_encodings,
    shared_history_simulation,
    shared_open_field,
    shared_recording,
    shared_simulation,
)
from .vocabulary import (
    BINS,
    HISTORY_SIMULATION,
    OPEN_FIELD,
    RECORDING,
    SIMULATION,
    UPLOAD,
    VariableSettings,
)


class DataSets:
    """The selected data set, read and encoded as the settings say."""

    def _prepare(self, keep_file_bins):
        """The selected data set, its default unit, variable rows and encoding; no page change,
        so it may run on a thread."""
        session = self._read_session(keep_file_bins)
        # a newly chosen data source starts with its 2-D map if it is the open field
        joint_map = self.source == OPEN_FIELD if keep_file_bins else self.joint_map
        max_bins = max_bins_for(len(session.variables))
        rows = [VariableSettings(v, max_bins) for v in session.variables]
        unit, notices = take_settings(self.on_load, session, rows)
        if self.source == UPLOAD:
            encoding = self.encode(session, unit, rows, joint_map)
        else:
            key = (self.source, self.n_samples, self.seed, self.open_field_units,
                   session.bin_width, unit, joint_map,
                   self.joint_nx, self.joint_ny, self.n_folds,
                   *((r.n_bins, r.encoding, r.n_basis) for r in rows))
            encoding = shared_encodings.get(key) or shared_encodings.put(
                key, self.encode(session, unit, rows, joint_map))
        lags, encoding, lag_notices = lagged_rows(session, unit, encoding,
                                                  self._lag_specs(keep_file_bins))
        return session, unit, rows, encoding, notices + lag_notices, lags

    def encode(self, session, unit, rows, joint_map=None):
        """Encode every variable as its row says: one-hot bins, or a basis on fine bins; with
        ``joint_map``, the first two linear variables as one joint leaf."""
        pairs = self._pairs(session, self.joint_map if joint_map is None else joint_map)
        n_bins = [r.n_bins for r in rows]
        for pair in pairs:
            n_bins[pair[0]], n_bins[pair[1]] = self.joint_nx, self.joint_ny
        return explorer.encode(session, unit, n_bins, self.n_folds,
                               [None if r.encoding == BINS else r.n_basis for r in rows], pairs)

    def map_variables(self) -> tuple[str, str] | None:
        """Names of the two variables the 2-D map pairs (the first two linear ones), or None
        when the data set has fewer than two."""
        pairs = self._pairs(self.session, True) if self.session is not None else []
        return tuple(self.session.variables[v].name for v in pairs[0]) if pairs else None

    @staticmethod
    def _pairs(session, joint_map):
        linear = [v for v, var in enumerate(session.variables) if not var.circular]
        return [tuple(linear[:2])] if joint_map and len(linear) >= 2 else []

    def _read_session(self, keep_file_bins):
        """The selected data set; a newly chosen file keeps its own bin width if it has one."""
        if self.source == SIMULATION:
            return shared_simulation(self.n_samples, self.seed)
        if self.source == OPEN_FIELD:
            return shared_open_field(self.n_samples, self.seed, n_units=self.open_field_units)
        if self.source == HISTORY_SIMULATION:
            return shared_history_simulation(self.n_samples, self.seed)
        if self.source == RECORDING:
            return shared_recording(self.bin_width)
        if self.upload is None:
            raise InputError("choose a file to upload (.npz, .csv or .nwb)")
        if keep_file_bins:
            return load_upload(*self.upload, bin_width=None, default_bin_width=self.bin_width)
        return load_upload(*self.upload, bin_width=self.bin_width)
