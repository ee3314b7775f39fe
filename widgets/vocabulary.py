"""The settings vocabulary: data sources, encodings, one variable's settings, and the groups of
settings a change redoes.

One spelling per data source: its label (the data-source menu's choice, the state's ``source``),
and from it its key in a shared link and its name in ``glm_core.export``.
"""

from __future__ import annotations

import param

from glm_core import export

SIMULATION = "simulation"
OPEN_FIELD = "open-field simulation"
HISTORY_SIMULATION = "simulation with spike history"
RECORDING = "linear track recording"
UPLOAD = "uploaded file"
SOURCES = (SIMULATION, OPEN_FIELD, HISTORY_SIMULATION, RECORDING, UPLOAD)  # the menu's order
SIMULATED = (SIMULATION, OPEN_FIELD, HISTORY_SIMULATION)  # made from T and seed
BUILT_IN = (SIMULATION, OPEN_FIELD, HISTORY_SIMULATION, RECORDING)  # shared by a server's tabs
LINK_KEYS = {SIMULATION: "simulation", OPEN_FIELD: "open-field",
             HISTORY_SIMULATION: "history-simulation", RECORDING: "recording",
             UPLOAD: "upload"}  # the ``source`` value of a shared link
EXPORT_NAMES = {SIMULATION: export.SIMULATION, OPEN_FIELD: export.OPEN_FIELD,
                HISTORY_SIMULATION: export.HISTORY_SIMULATION, RECORDING: export.RECORDING,
                UPLOAD: export.UPLOAD}  # glm_core.export's names

BINS, SPLINE, CYCLIC_SPLINE = "bins", "B-spline", "cyclic B-spline"  # how a variable is encoded

DATA_KEYS = ("source", "n_samples", "seed", "open_field_units", "bin_width",
             "upload")  # settings that load data
JOINT_KEYS = ("joint_map", "joint_nx", "joint_ny")  # settings that re-encode the joint leaf
ENCODING_KEYS = ("n_bins", "encoding", "n_basis")  # settings that re-encode one variable


class VariableSettings(param.Parameterized):
    """How one behavioural variable enters the model."""

    include = param.Boolean(default=True, doc="Use this variable in the model.")
    n_bins = param.Integer(default=20, bounds=(2, 64), doc="One-hot bins.")
    log_strength = param.Number(default=-3.0, bounds=(-6.0, 0.0), step=0.1,
                                label="log10 strength", doc="Regularization strength (log10).")
    encoding = param.Selector(default=BINS, objects=[BINS, SPLINE],
                              doc="One-hot bins, or a B-spline basis on fine bins (cyclic for "
                                  "circular variables).")
    n_basis = param.Integer(default=10, bounds=(4, 20), label="basis functions",
                            doc="Number of B-spline basis functions.")

    def __init__(self, variable, max_bins, **params):
        n_bins = variable.default_bins or (16 if variable.circular else 20)
        super().__init__(name=variable.name, n_bins=min(n_bins, max_bins),
                         include=variable.default_include, **params)
        self.param.n_bins.bounds = (2, max_bins)
        self.param.encoding.objects = [BINS, CYCLIC_SPLINE if variable.circular else SPLINE]
        self.unit = variable.unit
        self.circular = variable.circular
