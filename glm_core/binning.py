"""Spike trains and behaviour samples on their own clocks, brought onto one time base.

Spikes are counted in bins of ``bin_width`` seconds spanning the behaviour samples; variables are
interpolated linearly at the bin centres (circular ones through their cosine and sine).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import InputError
from .session import MAX_CELLS, Variable, positive_seconds

DEFAULT_BIN_WIDTH = 0.025  # s


class Samples(NamedTuple):
    """One behavioural variable sampled at its own times."""

    name: str
    unit: str
    circular: bool
    t: np.ndarray
    values: np.ndarray


def bin_events(trains: dict, samples: list[Samples], bin_width):
    """Histogram spike trains and interpolate samples on bins spanning all the samples' times.

    Returns bin centres, counts (bins, units), unit names and a list of Variables.
    """
    if not trains:
        raise InputError("there are no units")
    bin_width = positive_seconds("bin width", bin_width)
    edges = bin_edges(samples, bin_width, len(trains))
    counts = np.column_stack([np.histogram(s, edges)[0] for s in trains.values()])
    if counts.sum() == 0:
        raise InputError(
            f"no spike falls within the behaviour samples' time span ({edges[0]:g} s to "
            f"{edges[-1]:g} s)"
        )
    centres = edges[:-1] + bin_width / 2
    variables = [
        Variable(s.name, _interpolate(centres, s.t, s.values, s.circular), s.unit, s.circular)
        for s in samples
    ]
    return centres, counts, list(trains), variables


def bin_edges(samples: list[Samples], bin_width, n_trains: int = 1) -> np.ndarray:
    """The edges of the bins of ``bin_width`` s from the latest first sample time on, as many as
    fit before the earliest last one; InputError when that is no bin or more than ``MAX_CELLS``
    cells with ``n_trains`` trains (units and event trains)."""
    bin_width = positive_seconds("bin width", bin_width)
    if not samples or any(s.t.size == 0 for s in samples):
        raise InputError("there are no behavioural samples")
    start = max(s.t.min() for s in samples)
    stop = min(s.t.max() for s in samples)
    span = stop - start  # inf for samples at +-1e308: checked before any int() or allocation
    if not span >= bin_width:
        raise InputError(
            f"the behaviour samples span {max(span, 0):.3g} s, less than one bin of "
            f"{bin_width:g} s"
        )
    if np.floor(span / bin_width + 1e-9) * n_trains > MAX_CELLS:
        raise InputError(
            f"the behaviour samples span {span:.3g} s: {span / bin_width:.3g} bins of "
            f"{bin_width:g} s x {n_trains} units is more than {MAX_CELLS:,}; choose a larger "
            f"bin width"
        )
    n_bins = int(np.floor(span / bin_width + 1e-9))
    edges = start + bin_width * np.arange(n_bins + 1)
    if not np.all(np.diff(edges) > 0):
        raise InputError(f"times near {start:.6g} s are too large to resolve bins of "
                         f"{bin_width:g} s")
    return edges


def _interpolate(centres, t, values, circular: bool) -> np.ndarray:
    order = np.argsort(t, kind="stable")
    t, values = t[order], values[order]
    if not circular:
        return np.interp(centres, t, values)
    with np.errstate(invalid="ignore"):
        sin, cos = np.sin(values), np.cos(values)
        return np.arctan2(np.interp(centres, t, sin), np.interp(centres, t, cos))


def first_non_count(values: np.ndarray) -> tuple[int, str] | None:
    """The first entry of ``values`` that is not a count (blank, negative or fractional), as
    (row from 1, how it reads: "blank" or the number), or None when all are counts."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values != np.round(values)))
    if not bad.size:
        return None
    row = bad[0]
    return row + 1, "blank" if np.isnan(values[row]) else f"{values[row]:g}"


def numbers_1d(label: str, values, what: str = "numeric values") -> np.ndarray:
    """``values`` as a 1-D float array; InputError naming ``label`` and ``what`` it should hold
    when they are not numbers or not 1-D."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise InputError(f"{label!r} must hold {what}, got {array.dtype} values")
    if array.ndim != 1:
        raise InputError(f"{label!r} must be a 1-D array of {what}, got shape {array.shape}")
    return array.astype(float)
