"""One recording session on a common time base: behavioural variables and spike counts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import InputError

# Plausibility limits, so that a file's values cannot make loading or fitting cost more than its
# size: bins from 0.1 ms to an hour, at most 5,000 spikes/s in any bin (one spike per bin always
# passes), 2,000 units and 20 million cells of the (bins, units) table.
MIN_BIN_WIDTH, MAX_BIN_WIDTH = 1e-4, 3600.0  # s
MAX_RATE_HZ = 5000.0
MAX_UNITS = 2000
MAX_CELLS = 20_000_000


@dataclass(frozen=True)
class Variable:
    """A behavioural variable sampled at the session's bin centres.

    ``default_bins`` and ``default_include`` are the data source's suggestion for the explorer's
    starting model (None: the explorer's own default bin count).
    """

    name: str
    values: np.ndarray
    unit: str = ""
    circular: bool = False  # values in radians, wrapped to [-pi, pi)
    default_bins: int | None = None
    default_include: bool = True


@dataclass(frozen=True)
class Session:
    """Binned spike counts (T, n_units) plus variables, a validity mask and optional truth.

    Build one with :func:`make_session`, which validates the input. ``truth`` maps a variable name
    to its ground-truth log-rate effect (simulations only), or a pair of names (x, y) to a joint
    effect f(x, y); ``truth_intercept`` is the log rate per bin when every effect is zero.
    ``unit_truth`` gives units their own (truth, truth_intercept) instead (see :meth:`truth_of`).
    ``lag_truth`` maps a unit name to its true lag filters (simulations only): ``"history"``,
    ``"coupling:<source unit>"`` or ``"event:<event name>"`` to a (W,) array, the log-rate change
    at lags 1..W bins (gain exp(filter)). ``events`` maps an event name to its (T,) counts per bin.
    """

    bin_width: float
    variables: tuple[Variable, ...]
    counts: np.ndarray
    unit_names: tuple[str, ...]
    valid: np.ndarray
    n_dropped: int = 0
    truth: Mapping[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    truth_intercept: float = 0.0
    source: str = ""
    unit_truth: Mapping[str, tuple[Mapping, float]] = field(default_factory=dict)
    lag_truth: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    events: Mapping[str, np.ndarray] = field(default_factory=dict)

    def lag_truth_of(self, unit: str | int, key: str, n_lags: int) -> np.ndarray | None:
        """The true filter ``key`` (see ``lag_truth``) of one unit over lags 1..``n_lags``: cut
        to that window, or zero past its own; None when the unit has no such filter."""
        name = self.unit_names[self._unit_index(unit)]
        true = self.lag_truth.get(name, {}).get(key)
        if true is None:
            return None
        filter_ = np.zeros(int(n_lags))
        kept = min(filter_.size, true.size)
        filter_[:kept] = true[:kept]
        return filter_

    def truth_of(self, unit: str | int) -> tuple[Mapping, float]:
        """The ground truth of one unit: its effects (by variable name or (x, y) pair) and the
        intercept; the session's own when the unit has none of its own."""
        name = self.unit_names[self._unit_index(unit)]
        return self.unit_truth.get(name, (self.truth, self.truth_intercept))

    @property
    def n_samples(self) -> int:
        return self.counts.shape[0]

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables)

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise InputError(f"no variable named {name!r}; the session has {list(self.names)}")

    def unit_counts(self, unit: str | int) -> np.ndarray:
        """Spike counts of one unit, by name or index."""
        return self.counts[:, self._unit_index(unit)]

    def unit_name(self, unit: str | int) -> str:
        """A unit's name, from its name or index (InputError if there is none)."""
        return self.unit_names[self._unit_index(unit)]

    def _unit_index(self, unit: str | int) -> int:
        if isinstance(unit, str) and unit not in self.unit_names:
            raise InputError(f"no unit {unit!r}")
        index = self.unit_names.index(unit) if isinstance(unit, str) else int(unit)
        if not 0 <= index < len(self.unit_names):
            raise InputError(f"no unit {unit!r}")
        return index


def make_session(
    bin_width,
    variables,
    counts,
    unit_names=None,
    valid=None,
    truth=None,
    truth_intercept=0.0,
    source="",
    unit_truth=None,
    lag_truth=None,
    events=None,
) -> Session:
    """Validate and assemble a :class:`Session`.

    Samples where any variable is NaN or inf are marked invalid and counted in ``n_dropped``;
    everything else that is malformed raises :class:`InputError` with a readable message.
    ``events`` (name -> (T,) counts per bin) must hold non-negative whole numbers.
    """
    bin_width = positive_seconds("bin width", bin_width)
    counts = _as_counts(counts, bin_width)
    n = counts.shape[0]
    if unit_names is None:
        unit_names = tuple(f"unit {i}" for i in range(counts.shape[1]))
    unit_names = tuple(str(u) for u in unit_names)
    if len(unit_names) != counts.shape[1] or len(set(unit_names)) != len(unit_names):
        raise InputError(
            f"{counts.shape[1]} units need as many distinct names, got {len(unit_names)}"
        )
    variables = tuple(_as_variable(v, n) for v in variables)
    events = {str(name): _as_event_counts(str(name), train, n, bin_width)
              for name, train in dict(events or {}).items()}
    if n * (counts.shape[1] + len(events)) > MAX_CELLS:
        raise InputError(f"{n:,} bins x {counts.shape[1]} units and {len(events)} event trains "
                         f"are more than {MAX_CELLS:,} cells; use fewer, larger bins")
    if not variables:
        raise InputError("the session has no behavioural variables")
    if len({v.name for v in variables}) != len(variables):
        raise InputError("variable names must be distinct")
    valid = np.ones(n, bool) if valid is None else _numeric(valid, "the validity mask") != 0
    if valid.shape != (n,):
        raise InputError(f"the validity mask has {valid.size} samples, the counts have {n}")
    finite = np.logical_and.reduce([np.isfinite(v.values) for v in variables])
    n_dropped = int(np.sum(valid & ~finite))
    valid = valid & finite
    if not valid.any():
        raise InputError("no valid samples: every sample is masked or has NaN/inf values")
    return Session(
        bin_width=bin_width,
        variables=variables,
        counts=counts,
        unit_names=unit_names,
        valid=valid,
        n_dropped=n_dropped,
        truth=dict(truth or {}),
        truth_intercept=float(truth_intercept),
        source=source,
        unit_truth=dict(unit_truth or {}),
        lag_truth={str(u): dict(f) for u, f in dict(lag_truth or {}).items()},
        events=events,
    )


def positive_seconds(label: str, value) -> float:
    """One bin width in seconds within [MIN_BIN_WIDTH, MAX_BIN_WIDTH], or an InputError naming
    ``label``."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.size != 1:
        raise InputError(f"{label} must be one number (seconds), got {value!r:.40}")
    number = float(array.reshape(()))
    if not np.isfinite(number) or number <= 0:
        raise InputError(f"{label} must be a positive number of seconds, got {number}")
    if not MIN_BIN_WIDTH <= number <= MAX_BIN_WIDTH:
        raise InputError(f"{label} {number:g} s is outside the supported range, "
                         f"{MIN_BIN_WIDTH * 1e3:g} ms to {MAX_BIN_WIDTH / 3600:g} h")
    return number


def _numeric(values, what: str) -> np.ndarray:
    """A real-valued float array, or an InputError naming ``what``."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a numeric array") from None
    if array.dtype.kind not in "biuf":
        raise InputError(f"{what} must be real numbers, got {array.dtype} values")
    return array.astype(float)


def _as_counts(counts, bin_width: float) -> np.ndarray:
    counts = _numeric(counts, "spike counts")
    if counts.ndim == 1:
        counts = counts[:, None]
    if counts.ndim != 2 or counts.shape[0] == 0 or counts.shape[1] == 0:
        raise InputError(f"spike counts must be a (samples, units) table, got shape {counts.shape}")
    if counts.shape[1] > MAX_UNITS:
        raise InputError(f"{counts.shape[1]} units are more than the {MAX_UNITS} supported")
    if counts.size > MAX_CELLS:
        raise InputError(f"{counts.shape[0]:,} bins x {counts.shape[1]} units are more than "
                         f"{MAX_CELLS:,}; use fewer, larger bins")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise InputError("spike counts must be non-negative whole numbers")
    limit = max(1.0, np.floor(MAX_RATE_HZ * bin_width))
    if counts.max() > limit:
        raise InputError(
            f"a bin of {bin_width:g} s holds {counts.max():.0f} spikes; at most {limit:.0f} "
            f"({MAX_RATE_HZ:g} spikes/s) are plausible: check the counts and the bin width")
    return counts


def _as_event_counts(name: str, train, n: int, bin_width: float) -> np.ndarray:
    """One event train as (n,) float counts per bin, at most as many per bin as spikes may be,
    or an InputError naming it."""
    if not name.strip():
        raise InputError("an event train needs a name")
    train = _numeric(train, f"event train {name!r}")
    if train.shape != (n,):
        raise InputError(f"event train {name!r} has {train.size} bins, the counts have {n}")
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~np.isfinite(train) | (train < 0) | (train != np.round(train)))
    if bad.size:
        raise InputError(f"event train {name!r} holds {train[bad[0]]:g} in bin {bad[0] + 1}; it "
                         "must count the events in each bin (non-negative whole numbers)")
    limit = max(1.0, np.floor(MAX_RATE_HZ * bin_width))
    if train.max() > limit:
        raise InputError(f"event train {name!r} has {train.max():.0f} events in a bin of "
                         f"{bin_width:g} s; at most {limit:.0f} ({MAX_RATE_HZ:g} per second) are "
                         "plausible")
    return train


def _as_variable(var, n: int) -> Variable:
    if not isinstance(var, Variable):
        raise InputError(f"expected a Variable, got {type(var).__name__}")
    values = _numeric(var.values, f"variable {var.name!r}")
    if values.shape != (n,):
        raise InputError(
            f"variable {var.name!r} has {values.size} samples, the spike counts have {n}"
        )
    if var.circular:
        with np.errstate(invalid="ignore"):  # NaN/inf stay as they are, to be dropped
            values = np.where(np.isfinite(values), np.mod(values + np.pi, 2 * np.pi) - np.pi,
                              values)
    return replace(var, name=str(var.name), values=values, unit=str(var.unit),
                   circular=bool(var.circular))
