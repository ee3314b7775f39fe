"""Load recordings into a :class:`~glm_core.session.Session`.

Every loader raises only :class:`~glm_core.errors.InputError`, with a readable message, for a
malformed file. NPZ and CSV files come in two forms, told apart by their keys / column headers.

Variable names carry their unit and circularity: ``var:<name>``, ``var:<name>[<unit>]`` or
``var:<name>[<unit>,circular]`` (``var:<name>[circular]`` for no unit; ``;`` may replace the
``,``, which a CSV header must otherwise quote). A circular variable is an angle in radians, e.g.
``var:head direction[rad,circular]``. Names and units are free text without brackets.

**Binned form** — counts and variables on one time base of ``T`` bins:

- NPZ keys: ``bin_width`` (scalar, seconds), ``count:<unit name>`` (one per unit, ``T``
  non-negative whole numbers), ``var:...`` (``T`` numbers each), optional ``valid`` (``T`` booleans
  or 0/1; false marks a bin to leave out).
- CSV columns: the same names, one row per bin; the ``bin_width`` column holds the bin width in its
  first cell (later cells may be blank or repeat it). A blank variable cell is NaN.
- Optional ``event:<name>`` entries / columns: the number of events in each bin (``T`` counts).
- If the file has no ``bin_width``, the ``bin_width`` argument is used. If both are given, the
  argument must be a whole multiple of the file's and bins are merged: counts summed, variables
  averaged (circular mean for circular ones), a merged bin valid only if all its bins are.

**Events form** — spike times and behaviour samples on their own clocks, binned here to
``bin_width`` seconds (default 0.025) over the span of the behaviour samples. Variables are
linearly interpolated at bin centres (circular ones through their cosine and sine):

- NPZ keys: ``spike_times`` (seconds), ``spike_unit`` (same length; integer or string unit ids,
  which become the unit names), ``var_t`` (sample times, seconds), ``var:...`` (one value per
  ``var_t``).
- CSV (long format) columns: ``time`` (seconds), ``spike_unit``, ``var:...``. A row with a
  ``spike_unit`` is a spike of that unit at ``time`` (its variable cells are ignored); a row with
  a blank ``spike_unit`` is a behaviour sample at ``time``.
- Optional event trains: NPZ keys ``event:<name>`` (event times, seconds); CSV columns
  ``event:<name>``, where a filled cell makes its row an event row (that many events at ``time``).
  See :mod:`glm_core.events`.

Other keys / columns are rejected. Samples with NaN/inf variables are dropped from the fit
(``Session.n_dropped``). NWB files (:func:`load_nwb`) and pynapple objects (:func:`from_pynapple`)
are binned like the events form.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import derived
from .binning import (
    DEFAULT_BIN_WIDTH,
    Samples,
    bin_edges,
    bin_events,
    first_non_count,
    numbers_1d,
    positive_seconds,
)
from .csv_columns import read_csv_columns
from .errors import InputError
from .events import binned_event_counts, count_in_bins, csv_event_times, event_keys, event_times
from .session import MAX_CELLS, MAX_UNITS, Session, Variable, make_session

MAX_UPLOAD_BYTES = 50 * 2**20
_MAX_UNPACKED_BYTES = 10 * MAX_UPLOAD_BYTES
MAX_NPZ_VALUES = 3 * MAX_CELLS  # e.g. 20 million bins of one unit and two variables
_VAR_KEY = re.compile(r"^var:(?P<name>.*?)\s*(?:\[(?P<meta>[^\[\]]*)\])?$")


def load_upload(filename: str, data: bytes, bin_width=None, default_bin_width=DEFAULT_BIN_WIDTH
                ) -> Session:
    """Load uploaded bytes by file extension (.npz, .csv, .nwb), at most ``MAX_UPLOAD_BYTES``.

    ``bin_width`` None keeps a binned file's own bin width; files without one (events, NWB, a
    binned file that does not say) are binned at ``default_bin_width``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InputError("the upload is not a file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InputError(
            f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB"
        )
    loaders = {".npz": load_npz, ".csv": load_csv, ".nwb": load_nwb}
    suffix = Path(str(filename)).suffix.lower()
    if suffix not in loaders:
        raise InputError(f"unsupported file type {suffix or '(none)'!r}; upload .npz, .csv or .nwb")
    if suffix == ".nwb":
        session = load_nwb(bytes(data), bin_width or default_bin_width)
    else:
        session = loaders[suffix](bytes(data), bin_width, default_bin_width)
    return dataclasses.replace(session, source=str(filename))


def load_npz(path_or_bytes, bin_width=None, default_bin_width=None) -> Session:
    """Load an NPZ file (path or bytes) in the binned or events form described above;
    ``default_bin_width`` stands in when neither the file nor ``bin_width`` gives one."""
    data, label = _read(path_or_bytes)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(info.file_size for info in archive.infolist()) > _MAX_UNPACKED_BYTES:
                raise InputError("the .npz file unpacks to more than 500 MB")
            n_values = sum(_npy_size(archive, info) for info in archive.infolist())
            if n_values > MAX_NPZ_VALUES:  # before loading: 1-byte values would cost 8 as floats
                raise InputError(f"the .npz file holds {n_values:,} values; the limit is "
                                 f"{MAX_NPZ_VALUES:,}")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except InputError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, KeyError, TypeError,
            RuntimeError, NotImplementedError, MemoryError) as err:
        raise InputError(f"{label} is not a readable .npz file ({err})") from None
    return _from_arrays(arrays, bin_width, label, default_bin_width)


def load_csv(path_or_bytes, bin_width=None, default_bin_width=None) -> Session:
    """Load a CSV file (path or bytes) in the binned or long events form described above;
    ``default_bin_width`` stands in when neither the file nor ``bin_width`` gives one."""
    data, label = _read(path_or_bytes)
    columns = read_csv_columns(data, label, text=("spike_unit",))
    if "spike_unit" in columns:
        for name in ("time", "spike_unit"):
            if name not in columns:
                raise InputError(f"{label}: the events form needs a {name!r} column")
        is_spike = columns["spike_unit"] != ""
        events, is_event = csv_event_times(columns, is_spike, label)
        is_sample = ~is_spike & ~is_event
        arrays = {
            "spike_times": columns["time"][is_spike],
            "spike_unit": columns["spike_unit"][is_spike],
            "var_t": columns["time"][is_sample],
            **events,
        }
        arrays.update({k: v[is_sample] for k, v in columns.items() if k.startswith("var:")})
        arrays.update({k: v for k, v in columns.items() if k not in arrays and k != "time"})
    else:
        arrays = dict(columns)
        if "bin_width" in arrays:
            widths = arrays["bin_width"][~np.isnan(arrays["bin_width"])]
            if widths.size == 0 or np.any(widths != widths[0]):
                raise InputError(f"{label}: the bin_width column needs one value in its first cell")
            arrays["bin_width"] = widths[0]
    return _from_arrays(arrays, bin_width, label, default_bin_width)


def load_nwb(path_or_bytes, bin_width=DEFAULT_BIN_WIDTH) -> Session:
    """Load an NWB file: spike times from the Units table; Position (variables ``x``, ``y``, ``z``
    or ``position`` for 1-D, plus ``speed``) and CompassDirection (circular ``head direction``,
    radians) spatial series from the ``behavior`` processing module."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        source, label = io.BytesIO(bytes(path_or_bytes)), "the uploaded file"
    else:
        source, label = str(path_or_bytes), Path(str(path_or_bytes)).name
    try:
        import h5py
        import pynwb

        with h5py.File(source, "r") as h5, pynwb.NWBHDF5IO(file=h5, mode="r") as reader:
            trains, samples = _nwb_contents(reader.read(), pynwb)
    except InputError:
        raise
    except Exception as err:  # h5py / hdmf / pynwb raise many types for a bad file
        message = f"{label} is not a readable NWB file ({type(err).__name__}: {err})"
        raise InputError(message) from None
    centres, counts, names, variables = bin_events(trains, samples, bin_width)
    position = [v for v in variables if v.name in ("x", "y", "z", "position")]
    if position and len(centres) > 1:
        xyz = np.column_stack([v.values for v in position])
        speed = derived.speed(xyz, float(bin_width), smooth=derived.POSITION_SMOOTHING)
        variables.append(Variable("speed", speed, f"{position[0].unit}/s"))
    return make_session(bin_width, variables, counts, names, source=f"NWB {label}")


def from_pynapple(tsgroup, variables: dict, bin_width=DEFAULT_BIN_WIDTH, circular=()) -> Session:
    """Bin a pynapple ``TsGroup`` of spike trains with ``Tsd``/``TsdFrame`` variables (a frame's
    columns become ``"<name> <column>"``); names in ``circular`` are angles in radians."""
    try:
        import pynapple as nap
    except ImportError:
        raise InputError("from_pynapple needs pynapple: pip install pynapple") from None
    if not isinstance(tsgroup, nap.TsGroup):
        raise InputError(f"expected a pynapple TsGroup, got {type(tsgroup).__name__}")
    if not isinstance(variables, dict) or not variables:
        raise InputError("variables must be a non-empty dict of name -> Tsd or TsdFrame")
    unknown = set(circular) - set(variables)
    if unknown:
        raise InputError(f"circular names {sorted(unknown)} are not among the variables")
    samples = []
    for name, obj in variables.items():
        if isinstance(obj, nap.TsdFrame):
            for column in obj.columns:
                values = np.asarray(obj[column].values, float)
                samples.append(Samples(f"{name} {column}", "", name in circular, obj.t, values))
        elif isinstance(obj, nap.Tsd):
            samples.append(Samples(str(name), "", name in circular, obj.t, np.asarray(obj.d)))
        else:
            raise InputError(f"variable {name!r} must be a Tsd or TsdFrame")
    trains = {str(k): np.asarray(tsgroup[k].t, float) for k in tsgroup.keys()}
    samples = [s._replace(t=_finite_1d(f"{s.name} times", s.t),
                          values=numbers_1d(s.name, s.values)) for s in samples]
    _, counts, names, variables_ = bin_events(trains, samples, bin_width)
    return make_session(bin_width, variables_, counts, names, source="pynapple")


def _npy_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """Number of values of one array in an NPZ archive, from its header alone."""
    with archive.open(info) as npy:
        version = np.lib.format.read_magic(npy)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        return math.prod(read(npy)[0])


# --- shared assembly -----------------------------------------------------------------------------


def _from_arrays(arrays: dict, bin_width, label: str, default_bin_width=None) -> Session:
    counts = {k[len("count:"):]: v for k, v in arrays.items() if k.startswith("count:")}
    var_keys = [k for k in arrays if k.startswith("var:")]
    if counts and "spike_times" in arrays:
        raise InputError(f"{label} mixes the binned (count:...) and events (spike_times) forms")
    if counts:
        form, allowed = "binned", {"bin_width", "valid"}
    elif "spike_times" in arrays:
        form, allowed = "events", {"spike_times", "spike_unit", "var_t"}
    else:
        raise InputError(
            f"{label} has neither count:<unit> entries (binned form) nor spike_times (events "
            f"form); found {sorted(arrays)[:10]}"
        )
    unknown = [k for k in arrays
               if k not in allowed and not k.startswith(("count:", "var:", "event:"))]
    if unknown:
        raise InputError(f"{label}: unrecognised entries {unknown[:10]} for the {form} form")
    if not var_keys:
        raise InputError(f"{label} has no var:<name> entries (behavioural variables)")
    if form == "binned":
        return _binned_session(arrays, counts, var_keys, bin_width, label, default_bin_width)
    for key in ("spike_unit", "var_t"):
        if key not in arrays:
            raise InputError(f"{label}: the events form needs {key!r}")
    spike_times = _finite_1d("spike_times", arrays["spike_times"])
    units = np.asarray(arrays["spike_unit"])
    if units.dtype.kind not in "iuU" or units.shape != spike_times.shape:
        raise InputError(
            f"spike_unit must hold an integer or text unit id for each of the "
            f"{spike_times.size} spike_times"
        )
    if spike_times.size == 0:
        raise InputError(f"{label} has no spikes")
    names, unit_of_spike = np.unique(units.astype(str), return_inverse=True)
    if names.size > MAX_UNITS:
        raise InputError(f"{label} has {names.size} units, more than the {MAX_UNITS} supported")
    order = np.argsort(unit_of_spike, kind="stable")
    groups = np.split(spike_times[order], np.cumsum(np.bincount(unit_of_spike))[:-1])
    trains = dict(sorted(zip(names.tolist(), groups), key=lambda item: _natural(item[0])))
    t = _finite_1d("var_t", arrays["var_t"])
    samples = []
    for key in var_keys:
        name, unit, circular = _parse_var_key(key)
        values = numbers_1d(key, arrays[key])
        if values.shape != t.shape:
            raise InputError(f"{key!r} has {values.size} values but var_t has {t.size} times")
        samples.append(Samples(name, unit, circular, t, values))
    bin_width = bin_width or default_bin_width or DEFAULT_BIN_WIDTH
    events = {name: event_times(key, arrays[key]) for name, key in event_keys(arrays).items()}
    _, counts_, names, variables = bin_events(trains, samples, bin_width)
    edges = bin_edges(samples, bin_width, len(trains) + len(events))
    events = {name: count_in_bins(times, edges) for name, times in events.items()}
    return make_session(bin_width, variables, counts_, names, source=label, events=events)


def _binned_session(arrays, counts: dict, var_keys, bin_width, label, default_bin_width
                    ) -> Session:
    file_width = (positive_seconds("bin_width", arrays["bin_width"]) if "bin_width" in arrays
                  else None)
    if file_width is None and bin_width is None:
        bin_width = default_bin_width
    if file_width is None and bin_width is None:
        raise InputError(f"{label} has no bin_width; give the bin width in seconds")
    requested = None if bin_width is None else positive_seconds("bin width", bin_width)
    base = file_width if file_width is not None else requested
    factor = 1 if file_width is None or requested is None else requested / file_width
    merge = int(round(factor))
    if merge < 1 or abs(merge - factor) > 1e-6 * factor:
        raise InputError(
            f"{label} is binned at {file_width:g} s, so the bin width must be {file_width:g} s "
            f"or a whole multiple of it, not {requested:g} s"
        )
    table = np.column_stack([_counts(label, u, c) for u, c in _same_length(counts, label)])
    n = table.shape[0]
    valid = np.ones(n, bool) if "valid" not in arrays else numbers_1d("valid", arrays["valid"])
    if valid.shape != (n,) or not np.all(np.isin(valid, (0, 1))):
        raise InputError(f"valid must hold {n} values of 0/1 (true/false), one per bin")
    if n // merge == 0:
        raise InputError(f"{label} has {n} bins, fewer than the {merge} to merge into one")
    variables = []
    for key in var_keys:
        name, unit, circular = _parse_var_key(key)
        values = numbers_1d(key, arrays[key])
        if values.shape != (n,):
            raise InputError(f"{key!r} has {values.size} values but the counts have {n} bins")
        variables.append(Variable(name, _merge(values, merge, circular), unit, circular))
    events = {name: binned_event_counts(key, arrays[key], n, merge)
              for name, key in event_keys(arrays).items()}
    table = table[: n // merge * merge].reshape(n // merge, merge, -1).sum(axis=1)
    valid = valid[: n // merge * merge].reshape(n // merge, merge).all(axis=1)
    return make_session(base * merge, variables, table, list(counts), valid=valid, source=label,
                        events=events)


def _merge(values, merge: int, circular: bool) -> np.ndarray:
    """Average ``values`` over consecutive blocks of ``merge`` bins (circular mean if circular)."""
    n = len(values) // merge * merge
    blocks = values[:n].reshape(-1, merge)
    if merge == 1:
        return blocks[:, 0]
    if circular:
        with np.errstate(invalid="ignore"):
            return np.arctan2(np.sin(blocks).mean(axis=1), np.cos(blocks).mean(axis=1))
    return blocks.mean(axis=1)


# --- NWB ---------------------------------------------------------------------------------------


def _nwb_contents(nwb, pynwb):
    units = nwb.units
    if units is None or len(units) == 0:
        raise InputError("the NWB file has no Units table with spike times")
    ids = [str(i) for i in units.id[:]]
    trains = {
        u: _finite_1d(f"unit {u} spike times", units["spike_times"][i]) for i, u in enumerate(ids)
    }
    behavior = nwb.processing.get("behavior")
    if behavior is None:
        raise InputError("the NWB file has no 'behavior' processing module")
    positions, directions = [], []
    for iface in behavior.data_interfaces.values():
        if isinstance(iface, pynwb.behavior.Position):
            positions.extend(iface.spatial_series.values())
        elif isinstance(iface, pynwb.behavior.CompassDirection):
            directions.extend(iface.spatial_series.values())
    if not positions and not directions:
        raise InputError("the NWB 'behavior' module has no Position or CompassDirection series")
    samples = []
    for series in positions:
        data = np.asarray(series.data[:], float)
        data = data[:, None] if data.ndim == 1 else data
        axes = ["position"] if data.shape[1] == 1 else ["x", "y", "z"][: data.shape[1]]
        prefix = f"{series.name} " if len(positions) > 1 else ""
        for axis, column in zip(axes, data.T):
            samples.append(_nwb_samples(series, prefix + axis, column, False))
    for series in directions:
        values = np.asarray(series.data[:], float).ravel()
        if str(series.unit).lower().startswith("deg"):
            values = np.deg2rad(values)
        name = "head direction" if len(directions) == 1 else series.name
        samples.append(_nwb_samples(series, name, values, True))
    return trains, samples


def _nwb_samples(series, name, values, circular) -> Samples:
    t = _finite_1d(f"{series.name} timestamps", series.get_timestamps())
    if t.shape != values.shape:
        raise InputError(f"{series.name} has {values.size} values but {t.size} timestamps")
    return Samples(name, "rad" if circular else str(series.unit), circular, t, values)


# --- small parsers -----------------------------------------------------------------------------


def _read(path_or_bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "the uploaded file"
    path = Path(path_or_bytes)
    try:
        return path.read_bytes(), path.name
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def _parse_var_key(key: str) -> tuple[str, str, bool]:
    match = _VAR_KEY.match(key)
    name = match.group("name").strip() if match else ""
    if not name:
        raise InputError(f"{key!r} is not a valid variable name; use var:<name>[<unit>]")
    tokens = [t.strip() for t in re.split(r"[,;]", match.group("meta") or "")]
    circular = tokens[-1].lower() == "circular"
    unit = ",".join(tokens[:-1] if circular else tokens).strip()
    return name, unit, circular


def _counts(label: str, unit: str, value) -> np.ndarray:
    """The spike counts of ``unit`` as floats; an InputError names the first bin (the data row
    of a CSV file) whose count is blank, negative or fractional."""
    counts = numbers_1d(f"count:{unit}", value)
    bad = first_non_count(counts)
    if bad is not None:
        row, value = bad
        raise InputError(f"{label}: count:{unit} is {value} in row {row} (bin {row}); "
                         "spike counts must be non-negative whole numbers")
    return counts


def _finite_1d(label: str, value) -> np.ndarray:
    array = numbers_1d(label, value)
    if not np.all(np.isfinite(array)):
        raise InputError(f"{label!r} contains NaN or inf")
    return array


def _same_length(columns: dict, label: str):
    lengths = {np.size(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InputError(f"{label}: the count:<unit> entries differ in lengths {sorted(lengths)}")
    return columns.items()


def _natural(text: str):
    """Sort key putting t1c2 before t1c10 and 2 before 10."""
    return [int(p) if p.isdecimal() else p for p in re.split(r"(\d+)", text)]
