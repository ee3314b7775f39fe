"""Export of one explorer fit: a JSON record, a CSV table, and Python snippets that reproduce it.

:class:`FitSettings` says what the fit was (data set, unit, model); :func:`fit_record` gathers the
coefficients and tuning curves into plain JSON-ready data (NaN as null); :func:`record_csv` flattens
that record to one row per variable bin; :func:`glm_snippet` and :func:`nemos_snippet` write
self-contained scripts that rebuild the design from the data (one-hot bins, or a B-spline basis on
fine bins) and refit it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

import numpy as np

SIMULATION, RECORDING, UPLOAD = "simulation", "recording", "upload"
CSV_COLUMNS = ("variable", "variable_unit", "circular", "included", "encoding", "log10_strength",
               "strength", "bin", "left_edge", "right_edge", "centre", "coefficient",
               "log_rate_term", "model_hz", "lower_hz", "upper_hz", "empirical_hz", "truth_hz",
               "intercept", "regularizer", "unit", "data_source")
CURVE_FIELDS = {"model_hz": "model", "lower_hz": "lower", "upper_hz": "upper",
                "empirical_hz": "empirical", "truth_hz": "truth"}


@dataclass(frozen=True)
class FitSettings:
    """Everything that decides one explorer fit. ``data`` is SIMULATION (``n_samples``, ``seed``),
    RECORDING (``bin_width``) or UPLOAD (``filename``, ``bin_width``); the per-variable tuples
    follow the data set's variable order. ``n_basis[v]`` is None for one-hot bins, else the size
    of variable v's B-spline basis (cyclic if circular) on its ``n_bins`` fine bins."""

    data: str
    unit: str
    regularizer: str
    names: tuple[str, ...]
    circular: tuple[bool, ...]
    n_bins: tuple[int, ...]
    include: tuple[bool, ...]
    log_strengths: tuple[float, ...]
    n_samples: int = 0
    seed: int = 0
    bin_width: float = 0.0
    filename: str = ""
    n_basis: tuple = ()

    @property
    def bases(self) -> tuple:
        return self.n_basis or (None,) * len(self.names)

    def encoding(self, v: int) -> str:
        if self.bases[v] is None:
            return "bins"
        return "cyclic B-spline" if self.circular[v] else "B-spline"

    @property
    def strengths(self) -> tuple[float, ...]:
        return tuple(10.0 ** x for x in self.log_strengths)

    @property
    def included(self) -> list[int]:
        return [v for v, keep in enumerate(self.include) if keep]


def fit_record(settings: FitSettings, source: str, binnings, fit, curves, stats: dict,
               bases=None) -> dict:
    """The fit as JSON-ready data: per variable its encoding, bins (edges, centres),
    coefficients (null when excluded), each bin's term of the log rate, strengths and curves in
    Hz; for a basis also the (bins x functions) basis at the bin centres (``bases[v]``, so that
    the terms are ``basis @ coefficients``); the intercept, regularizer, statistics, the data
    source's description and ``reproduce`` (the settings that regenerate the data)."""
    bases = bases or (None,) * len(binnings)
    variables = []
    for v, (name, binning, curve, basis) in enumerate(zip(settings.names, binnings, curves,
                                                          bases)):
        n = binning.n_bins
        k = n if basis is None else basis.shape[1]
        included = settings.include[v]
        entry = {
            "name": name, "unit": curve.unit, "circular": settings.circular[v],
            "included": included, "encoding": settings.encoding(v), "n_bins": n,
            "log10_strength": settings.log_strengths[v], "strength": settings.strengths[v],
            "bin_edges": _plain(binning.edges), "bin_centres": _plain(binning.centres),
            "basis": None if basis is None else _plain(np.asarray(basis)),
            "coefficients": _plain(fit.weights[v, :k]) if included else None,
            "log_rate_terms": _plain(fit.effects[v, :n]) if included else None,
        }
        entry.update({key: _plain(getattr(curve, field)) for key, field in CURVE_FIELDS.items()})
        variables.append(entry)
    return {
        "data_source": source, "unit": settings.unit, "regularizer": settings.regularizer,
        "intercept": _plain(fit.intercept), "variables": variables,
        "statistics": {key: _plain(value) for key, value in stats.items()},
        "reproduce": {"data": settings.data, "n_samples": settings.n_samples,
                      "seed": settings.seed, "bin_width": settings.bin_width,
                      "filename": settings.filename},
    }


def record_json(record: dict) -> str:
    """The record as strict JSON (no NaN)."""
    return json.dumps(record, indent=1, allow_nan=False)


def record_csv(record: dict) -> str:
    """The record as CSV, one row per bin of every variable (``CSV_COLUMNS``; blank = none; a
    basis's coefficients are in the JSON only, its bins' log-rate terms in both)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for var in record["variables"]:
        for k in range(var["n_bins"]):
            row = {
                "variable": var["name"], "variable_unit": var["unit"],
                "circular": var["circular"], "included": var["included"],
                "encoding": var["encoding"], "log10_strength": var["log10_strength"],
                "strength": var["strength"], "bin": k,
                "left_edge": var["bin_edges"][k], "right_edge": var["bin_edges"][k + 1],
                "centre": var["bin_centres"][k],
                "coefficient": (var["coefficients"][k] if var["coefficients"]
                                and var["basis"] is None else None),
                "log_rate_term": var["log_rate_terms"][k] if var["log_rate_terms"] else None,
                **{key: var[key][k] if var[key] else None for key in CURVE_FIELDS},
                "intercept": record["intercept"], "regularizer": record["regularizer"],
                "unit": record["unit"], "data_source": record["data_source"],
            }
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def glm_snippet(settings: FitSettings) -> str:
    """A runnable script that refits ``settings`` with glm_core's pytree GLM: a dict of designs
    (one-hot bins, or a B-spline basis on fine bins) and a dict of strengths, as in the
    README."""
    names = [settings.names[v] for v in settings.included]
    strengths = _strength_dict(settings, names)
    if settings.regularizer == "Smooth":
        circular = {settings.names[v] for v in settings.included if settings.circular[v]}
        model = f"GLM(Smooth(circular={circular or 'set()'}), strengths)"
    elif settings.regularizer == "UnRegularized":
        model = 'GLM("UnRegularized")'
    else:
        model = f"GLM({settings.regularizer!r}, strengths)"
    lines = [
        *_header(settings, "glm_core's pytree GLM", ["from glm_core.glm import GLM"]),
        *(["from glm_core.regularizers import Smooth"] if settings.regularizer == "Smooth"
          else []),
        *_data_lines(settings),
        "X = {",
        *(f"    {name!r}: {_design(settings, name)}," for name in names),
        "}",
        f"strengths = {strengths}",
        f"model = {model}.fit(X, y)",
        "print(model.coef_, model.intercept_)",
    ]
    return "\n".join(lines) + "\n"


def nemos_snippet(settings: FitSettings) -> str:
    """The same fit with NeMoS (a FeaturePytree design; keys without spaces). NeMoS has no Smooth
    penalty, so for Smooth the snippet says so instead."""
    if settings.regularizer == "Smooth":
        return ("# NeMoS has no Smooth (roughness) penalty: choose Ridge, Lasso, GroupLasso or\n"
                "# UnRegularized to get a NeMoS snippet.\n")
    names = [settings.names[v] for v in settings.included]
    keys = {name: _identifier(name) for name in names}
    if settings.regularizer == "UnRegularized":
        model = 'nmo.glm.GLM(regularizer="UnRegularized")'
    elif settings.regularizer == "GroupLasso":  # one group per leaf, in NeMoS's sorted key order
        ordered = sorted(names, key=keys.get)
        values = ", ".join(repr(settings.strengths[settings.names.index(n)]) for n in ordered)
        model = (f'nmo.glm.GLM(regularizer="GroupLasso",\n'
                 f"                    regularizer_strength=np.array([{values}]))"
                 f"  # {', '.join(keys[n] for n in ordered)}")
    else:
        strengths = {keys[n]: s for n, s in _strength_dict(settings, names).items()}
        model = (f"nmo.glm.GLM(regularizer={settings.regularizer!r},\n"
                 f"                    regularizer_strength={strengths})")
    lines = [
        *_header(settings, "NeMoS", ["import nemos as nmo", "import numpy as np"]
                 if settings.regularizer == "GroupLasso" else ["import nemos as nmo"]),
        *_data_lines(settings),
        "X = nmo.pytrees.FeaturePytree(",
        *(f"    {keys[name]}={_design(settings, name)}," for name in names),
        ")",
        f"model = {model}",
        "model.fit(X, y)",
        "print(dict(model.coef_), model.intercept_)",
    ]
    return "\n".join(lines) + "\n"


def _design(settings: FitSettings, name: str) -> str:
    v = settings.names.index(name)
    if settings.bases[v] is None:
        return f"one_hot_bins({name!r}, {settings.n_bins[v]})"
    return f"spline_bins({name!r}, {settings.n_bins[v]}, {settings.bases[v]})"


def _header(settings: FitSettings, library: str, imports) -> list[str]:
    splines = any(b is not None for b in settings.bases)
    return [f"# Reproduces the explorer's fit with {library}: {settings.regularizer}, unit "
            f"{settings.unit!r}.", *imports,
            *(["from glm_core.basis import bspline, cyclic_bspline"] if splines else []),
            "from glm_core.encoding import bin_index, make_binning, one_hot"]


def _data_lines(settings: FitSettings) -> list[str]:
    if settings.data == SIMULATION:
        load = ["from glm_core.simulation import simulate_session", "",
                f"session = simulate_session({settings.n_samples}, seed={settings.seed})"]
    elif settings.data == RECORDING:
        load = ["from glm_core.linear_track import load_linear_track", "",
                f"session = load_linear_track(bin_width={settings.bin_width!r})"]
    else:
        load = ["from pathlib import Path", "from glm_core.loaders import load_upload", "",
                f"path = Path({settings.filename!r})  # the uploaded file: set its path here",
                "session = load_upload(path.name, path.read_bytes(), "
                f"bin_width={settings.bin_width!r})"]
    return [
        *load,
        "valid = session.valid  # samples without NaN/inf",
        f"y = session.unit_counts({settings.unit!r})[valid]",
        "",
        "",
        "def one_hot_bins(name, n_bins):",
        '    """One-hot design of a variable in equal-width bins (on the circle if circular)."""',
        "    var = session.variable(name)",
        "    binning = make_binning(var.values, n_bins, var.circular, valid)",
        "    return one_hot(bin_index(var.values[valid], binning), n_bins)",
        "",
        "",
        *(_SPLINE_LINES if any(b is not None for b in settings.bases) else []),
    ]


_SPLINE_LINES = [
    "def spline_bins(name, n_bins, n_basis):",
    '    """B-spline basis (cyclic if circular) at the centres of fine bins: one-hot @ basis."""',
    "    var = session.variable(name)",
    "    binning = make_binning(var.values, n_bins, var.circular, valid)",
    "    evaluate = cyclic_bspline if var.circular else bspline",
    "    basis = evaluate(binning.centres, n_basis, (binning.edges[0], binning.edges[-1]))",
    "    return one_hot_bins(name, n_bins) @ basis",
    "",
    "",
]


def _strength_dict(settings: FitSettings, names) -> dict:
    return {name: settings.strengths[settings.names.index(name)] for name in names}


def _identifier(name: str) -> str:
    key = "".join(c if c.isalnum() else "_" for c in name)
    return key if key.isidentifier() else f"v_{key}"


def _plain(value):
    """numpy scalars and arrays as Python numbers and lists, NaN/inf as None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return [_plain(x) for x in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(x) for x in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
