"""The settings vocabulary: data sources, encodings and the groups of settings a change redoes.

One spelling per data source: its label (the data-source menu's choice, the state's ``source``),
and from it its key in a shared link and its name in ``glm_core.export``.
"""

from __future__ import annotations

from glm_core import export

SIMULATION = "simulation"
OPEN_FIELD = "open-field simulation"
RECORDING = "linear track recording"
UPLOAD = "uploaded file"
SOURCES = (SIMULATION, OPEN_FIELD, RECORDING, UPLOAD)  # in the menu's order
SIMULATED = (SIMULATION, OPEN_FIELD)  # made from T and seed
BUILT_IN = (SIMULATION, OPEN_FIELD, RECORDING)  # shared by every session of a server process
LINK_KEYS = {SIMULATION: "simulation", OPEN_FIELD: "open-field", RECORDING: "recording",
             UPLOAD: "upload"}  # the ``source`` value of a shared link
EXPORT_NAMES = {SIMULATION: export.SIMULATION, OPEN_FIELD: export.OPEN_FIELD,
                RECORDING: export.RECORDING, UPLOAD: export.UPLOAD}  # glm_core.export's names

BINS, SPLINE, CYCLIC_SPLINE = "bins", "B-spline", "cyclic B-spline"  # how a variable is encoded

DATA_KEYS = ("source", "n_samples", "seed", "bin_width", "upload")  # settings that load data
JOINT_KEYS = ("joint_map", "joint_nx", "joint_ny")  # settings that re-encode the joint leaf
ENCODING_KEYS = ("n_bins", "encoding", "n_basis")  # settings that re-encode one variable
