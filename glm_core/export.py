"""Export of one explorer fit: a JSON record, a CSV table, and Python snippets that reproduce it.

:class:`FitSettings` says what the fit was (data set, unit, model); :func:`fit_record` gathers the
coefficients, tuning curves and 2-D maps into plain JSON-ready data (NaN as null);
:func:`record_csv` flattens that record to one row per variable bin and per map cell;
:func:`glm_snippet` and :func:`nemos_snippet` write self-contained scripts that rebuild the design
from the data (one-hot bins, a B-spline basis on fine bins, or a one-hot of the joint bin of a
2-D map) and refit it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

import numpy as np

from .explorer import leaf_variables
from .lag_export import LAG_CSV_COLUMNS, LAG_LINES, lag_csv_rows, lag_design, lag_entries

SIMULATION, OPEN_FIELD, RECORDING, UPLOAD = "simulation", "open field", "recording", "upload"
HISTORY_SIMULATION = "history simulation"
SIMULATE = {SIMULATION: ("simulation", "simulate_session"),
            OPEN_FIELD: ("open_field", "simulate_open_field"),
            HISTORY_SIMULATION: ("simulation", "simulate_history_session")}  # module, function
MAP_ENCODING = "2-D bins"
# A map cell's row: bin, left_edge, right_edge, centre are its first variable's, second_* its
# second variable's; lower_hz, upper_hz stay blank (a map has no band).
CSV_COLUMNS = ("variable", "variable_unit", "circular", "included", "encoding", "log10_strength",
               "strength", "bin", "left_edge", "right_edge", "centre", "coefficient",
               "log_rate_term", "model_hz", "lower_hz", "upper_hz", "empirical_hz", "truth_hz",
               "intercept", "regularizer", "unit", "data_source", "second_bin",
               "second_left_edge", "second_right_edge", "second_centre", *LAG_CSV_COLUMNS)
NO_FIT_COLUMNS = ("unit", "data_source", "fitted", "reason")  # the CSV of a page with no fit
CURVE_FIELDS = {"model_hz": "model", "lower_hz": "lower", "upper_hz": "upper",
                "empirical_hz": "empirical", "truth_hz": "truth"}
MAP_FIELDS = {"model_hz": "model", "empirical_hz": "empirical", "truth_hz": "truth",
              "occupancy_s": "occupancy"}


@dataclass(frozen=True)
class FitSettings:
    """Everything that decides one explorer fit. ``data`` is a simulation (``n_samples``,
    ``seed``; the open field's ``n_units``), RECORDING (``bin_width``) or UPLOAD (``filename``,
    ``bin_width``); the per-variable tuples follow the data set's variable order. ``n_basis[v]``
    is None for one-hot bins, else the size of variable v's B-spline basis (cyclic if circular)
    on its ``n_bins`` fine bins. ``pairs`` are the (x, y) variables of each 2-D map (a joint
    leaf of n_bins[x] x n_bins[y] bins, in the model when both are included), with
    ``pair_log_strengths``; ``lags`` the lagged leaves (``lag_export.LagExport``), after the
    behavioural ones."""

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
    n_units: int = 4  # OPEN_FIELD's unit count
    bin_width: float = 0.0
    filename: str = ""
    n_basis: tuple = ()
    pairs: tuple = ()
    pair_log_strengths: tuple = ()
    lags: tuple = ()

    @property
    def included_lags(self) -> list:
        return [lag for lag in self.lags if lag.include]

    @property
    def leaves(self) -> tuple:
        """The model's leaves (variable indices), in the explorer's order."""
        return leaf_variables(self.pairs, len(self.names))

    def leaf_name(self, leaf: tuple) -> str:
        return " × ".join(self.names[v] for v in leaf)

    def leaf_included(self, leaf: tuple) -> bool:
        return all(self.include[v] for v in leaf)

    def leaf_log_strength(self, leaf: tuple) -> float:
        if len(leaf) == 2:
            return self.pair_log_strengths[self.pairs.index(leaf)]
        return self.log_strengths[leaf[0]]

    @property
    def included_leaves(self) -> list[tuple]:
        return [leaf for leaf in self.leaves if self.leaf_included(leaf)]

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


def fit_record(settings: FitSettings, source: str, binnings, fit, curves, stats: dict,
               bases=None, maps=(), filters=()) -> dict:
    """The fit as JSON-ready data. ``variables``: per 1-D leaf its encoding, bins (edges,
    centres), coefficients (null when excluded), each bin's term of the log rate, strengths and
    curves in Hz; for a basis also the (bins x functions) basis at the bin centres
    (``bases[v]``, so that the terms are ``basis @ coefficients``). ``maps``: per 2-D map (joint
    leaf; ``maps`` are its TuningMaps) its two variables, units, bin edges and centres, the
    (nx, ny) coefficients (cell (bx, by) is joint bin bx * ny + by), strengths and the model,
    empirical and true maps in Hz (null where unvisited or unknown) with the occupancy in s.
    ``lags``: per lagged leaf (``filters``: its ``lag_curves.FilterCurve``) its settings, lag
    kernels' coefficients and filter (``lag_export.lag_entries``). Then the intercept,
    regularizer, statistics, the data source's description and ``reproduce`` (the settings that
    regenerate the data)."""
    bases = bases or (None,) * len(binnings)
    curves, maps = iter(curves), iter(maps)
    variables, joint = [], []
    for axis, leaf in enumerate(settings.leaves):
        if len(leaf) == 1:
            variables.append(_variable_entry(settings, leaf[0], binnings[leaf[0]], fit, axis,
                                             next(curves), bases[leaf[0]]))
        else:
            joint.append(_map_entry(settings, leaf, binnings, fit, axis, next(maps)))
    return {
        "data_source": source, "unit": settings.unit, "fitted": True,
        "regularizer": settings.regularizer, "intercept": _plain(fit.intercept),
        "variables": variables, "maps": joint,
        "lags": lag_entries(settings.lags, fit, filters, _plain),
        "statistics": {key: _plain(value) for key, value in stats.items()},
        "reproduce": {"data": settings.data, "n_samples": settings.n_samples,
                      "seed": settings.seed, "bin_width": settings.bin_width,
                      "filename": settings.filename},
    }


def no_fit_record(source: str, unit: str, reason: str) -> dict:
    """The record of a page that shows no fit (e.g. a unit without spikes).

    Args:
        source: the data source's description; unit: the selected unit; reason: why.
    Returns:
        ``{"data_source", "unit", "fitted": False, "reason"}``.
    """
    return {"data_source": source, "unit": unit, "fitted": False, "reason": reason}


def _variable_entry(settings, v, binning, fit, axis, curve, basis) -> dict:
    n = binning.n_bins
    k = n if basis is None else basis.shape[1]
    included = settings.include[v]
    entry = {
        "name": settings.names[v], "unit": curve.unit, "circular": settings.circular[v],
        "included": included, "encoding": settings.encoding(v), "n_bins": n,
        "log10_strength": settings.log_strengths[v], "strength": settings.strengths[v],
        "bin_edges": _plain(binning.edges), "bin_centres": _plain(binning.centres),
        "basis": None if basis is None else _plain(np.asarray(basis)),
        "coefficients": _plain(fit.weights[axis, :k]) if included else None,
        "log_rate_terms": _plain(fit.effects[axis, :n]) if included else None,
    }
    entry.update({key: _plain(getattr(curve, field)) for key, field in CURVE_FIELDS.items()})
    return entry


def _map_entry(settings, leaf, binnings, fit, axis, tuning_map) -> dict:
    nx, ny = (binnings[v].n_bins for v in leaf)
    included = settings.leaf_included(leaf)
    log_strength = settings.leaf_log_strength(leaf)
    entry = {
        "name": settings.leaf_name(leaf), "variables": [settings.names[v] for v in leaf],
        "units": list(tuning_map.units), "included": included, "encoding": MAP_ENCODING,
        "nx": nx, "ny": ny, "log10_strength": log_strength, "strength": 10.0**log_strength,
        "bin_edges": [_plain(binnings[v].edges) for v in leaf],
        "bin_centres": [_plain(binnings[v].centres) for v in leaf],
        "coefficients": (_plain(fit.weights[axis, : nx * ny].reshape(nx, ny)) if included
                         else None),
    }
    entry.update({key: _plain(getattr(tuning_map, field)) for key, field in MAP_FIELDS.items()})
    return entry


def record_json(record: dict) -> str:
    """The record as strict JSON (no NaN)."""
    return json.dumps(record, indent=1, allow_nan=False)


def record_csv(record: dict) -> str:
    """The record as CSV, one row per bin of every 1-D variable, then one per cell (x bin, y
    bin) of every 2-D map (``CSV_COLUMNS``; blank = none; a basis's coefficients are in the JSON
    only, its bins' log-rate terms in both); a record of no fit as ``NO_FIT_COLUMNS``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if not record["fitted"]:  # one row: the unit, the data and why nothing is fitted
        writer.writerows([NO_FIT_COLUMNS, [record[c] for c in NO_FIT_COLUMNS]])
        return out.getvalue()
    writer.writerow(CSV_COLUMNS)
    for row in _csv_rows(record):
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def _csv_rows(record: dict):
    common = {"intercept": record["intercept"], "regularizer": record["regularizer"],
              "unit": record["unit"], "data_source": record["data_source"]}
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
                **common,
            }
            yield row
    for joint in record["maps"]:
        (x_edges, y_edges), (x_centres, y_centres) = joint["bin_edges"], joint["bin_centres"]
        coef = joint["coefficients"]
        for i in range(joint["nx"]):
            for j in range(joint["ny"]):
                yield {
                    "variable": joint["name"], "variable_unit": " × ".join(joint["units"]),
                    "circular": False, "included": joint["included"],
                    "encoding": joint["encoding"], "log10_strength": joint["log10_strength"],
                    "strength": joint["strength"], "bin": i, "left_edge": x_edges[i],
                    "right_edge": x_edges[i + 1], "centre": x_centres[i],
                    "coefficient": coef[i][j] if coef else None,
                    "log_rate_term": coef[i][j] if coef else None,
                    **{key: joint[key][i][j] if joint[key] else None
                       for key in ("model_hz", "empirical_hz", "truth_hz")},
                    **common, "second_bin": j, "second_left_edge": y_edges[j],
                    "second_right_edge": y_edges[j + 1], "second_centre": y_centres[j],
                }
    yield from lag_csv_rows(record, common)


def glm_snippet(settings: FitSettings) -> str:
    """A runnable script that refits ``settings`` with glm_core's pytree GLM: a dict of designs
    (one-hot bins, a B-spline basis on fine bins, or a 2-D map's one-hot joint bins) and a dict
    of strengths, as in the README."""
    leaves = settings.included_leaves
    strengths = _strength_dict(settings, leaves)
    if settings.regularizer == "Smooth":
        circular = {settings.names[leaf[0]] for leaf in leaves
                    if len(leaf) == 1 and settings.circular[leaf[0]]}
        grids = {settings.leaf_name(leaf): tuple(settings.n_bins[v] for v in leaf)
                 for leaf in leaves if len(leaf) == 2}
        model = (f"GLM(Smooth(circular={circular or 'set()'}"
                 f"{f', grids={grids}' if grids else ''}), strengths)")
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
        *(f"    {settings.leaf_name(leaf)!r}: {_design(settings, leaf)}," for leaf in leaves),
        *(f"    {lag.name!r}: {lag_design(lag, settings.unit)}," for lag in settings.included_lags),
        "}",
        f"strengths = {strengths}",
        f"model = {model}.fit(X, y)",
        "print(model.coef_, model.intercept_)",
    ]
    return "\n".join(lines) + "\n"


def nemos_snippet(settings: FitSettings) -> str:
    """The same fit with NeMoS (a FeaturePytree design; keys without spaces, a 2-D map's
    "x_y"). NeMoS has no Smooth penalty, so for Smooth the snippet says so instead."""
    if settings.regularizer == "Smooth":
        return ("# NeMoS has no Smooth (roughness) penalty: choose Ridge, Lasso, GroupLasso or\n"
                "# UnRegularized to get a NeMoS snippet.\n")
    leaves = settings.included_leaves
    keys = {leaf: "_".join(_identifier(settings.names[v]) for v in leaf) for leaf in leaves}
    lags = {lag: _identifier(lag.name) for lag in settings.included_lags}
    log_strength = {**{leaf: settings.leaf_log_strength(leaf) for leaf in leaves},
                    **{lag: lag.log_strength for lag in lags}}
    keys.update(lags)
    leaves = [*leaves, *lags]
    if settings.regularizer == "UnRegularized":
        model = 'nmo.glm.GLM(regularizer="UnRegularized")'
    elif settings.regularizer == "GroupLasso":  # one group per leaf, in NeMoS's sorted key order
        ordered = sorted(leaves, key=keys.get)
        values = ", ".join(repr(10.0 ** log_strength[leaf]) for leaf in ordered)
        model = (f'nmo.glm.GLM(regularizer="GroupLasso",\n'
                 f"                    regularizer_strength=np.array([{values}]))"
                 f"  # {', '.join(keys[leaf] for leaf in ordered)}")
    else:
        strengths = {keys[leaf]: 10.0 ** log_strength[leaf] for leaf in leaves}
        model = (f"nmo.glm.GLM(regularizer={settings.regularizer!r},\n"
                 f"                    regularizer_strength={strengths})")
    lines = [
        *_header(settings, "NeMoS", ["import nemos as nmo", "import numpy as np"]
                 if settings.regularizer == "GroupLasso" else ["import nemos as nmo"]),
        *_data_lines(settings),
        "X = nmo.pytrees.FeaturePytree(",
        *(f"    {keys[leaf]}={_design(settings, leaf)}," for leaf in leaves if leaf not in lags),
        *(f"    {keys[lag]}={lag_design(lag, settings.unit)}," for lag in lags),
        ")",
        f"model = {model}",
        "model.fit(X, y)",
        "print(dict(model.coef_), model.intercept_)",
    ]
    return "\n".join(lines) + "\n"


def _design(settings: FitSettings, leaf: tuple) -> str:
    if len(leaf) == 2:
        (x, nx), (y, ny) = ((settings.names[v], settings.n_bins[v]) for v in leaf)
        return f"joint_bins({x!r}, {nx}, {y!r}, {ny})"
    v = leaf[0]
    name = settings.names[v]
    if settings.bases[v] is None:
        return f"one_hot_bins({name!r}, {settings.n_bins[v]})"
    return f"spline_bins({name!r}, {settings.n_bins[v]}, {settings.bases[v]})"


def _header(settings: FitSettings, library: str, imports) -> list[str]:
    splines = any(b is not None for b in settings.bases)
    basis = (["bspline", "cyclic_bspline"] if splines else []) + (
        ["lagged", "raised_cosine_log"] if settings.included_lags else [])
    return [f"# Reproduces the explorer's fit with {library}: {settings.regularizer}, unit "
            f"{settings.unit!r}.", *imports,
            *([f"from glm_core.basis import {', '.join(basis)}"] if basis else []),
            "from glm_core.encoding import bin_index, make_binning, one_hot"]


def _data_lines(settings: FitSettings) -> list[str]:
    if settings.data in SIMULATE:
        module, simulate = SIMULATE[settings.data]
        units = (f", n_units={settings.n_units}" if settings.data == OPEN_FIELD
                 and settings.n_units != 4 else "")
        load = [f"from glm_core.{module} import {simulate}", "",
                f"session = {simulate}({settings.n_samples}, seed={settings.seed}{units})"]
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
        "def bins(name, n_bins):",
        '    """Each valid sample\'s bin of a variable: equal-width bins (on the circle if '
        'circular)."""',
        "    var = session.variable(name)",
        "    return bin_index(var.values[valid], make_binning(var.values, n_bins, var.circular, "
        "valid))",
        "",
        "",
        "def one_hot_bins(name, n_bins):",
        '    """One-hot design of a variable\'s bins."""',
        "    return one_hot(bins(name, n_bins), n_bins)",
        "",
        "",
        *(_JOINT_LINES if settings.pairs else []),
        *(_SPLINE_LINES if any(b is not None for b in settings.bases) else []),
        *(LAG_LINES if settings.included_lags else []),
    ]


_JOINT_LINES = [
    "def joint_bins(x, nx, y, ny):",
    '    """One-hot design of a 2-D map: the joint bin bx * ny + by of two variables (nx * ny',
    '    columns)."""',
    "    return one_hot(bins(x, nx) * ny + bins(y, ny), nx * ny)",
    "",
    "",
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


def _strength_dict(settings: FitSettings, leaves) -> dict:
    return {**{settings.leaf_name(leaf): 10.0 ** settings.leaf_log_strength(leaf)
               for leaf in leaves},
            **{lag.name: lag.strength for lag in settings.included_lags}}


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
