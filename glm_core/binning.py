"""Spike trains and behaviour samples on their own clocks, brought onto one time base.

Spikes are counted in bins of ``bin_width`` seconds spanning the behaviour samples; variables are
interpolated linearly at the bin centres (circular ones through their cosine and sine).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import InputError
from .session import Variable

DEFAULT_BIN_WIDTH = 0.025  # s
MAX_CELLS = 20_000_000  # bins x units; keeps a tiny bin width from exhausting memory


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
    bin_width = positive_seconds("bin width", bin_width)
    if not trains:
        raise InputError("there are no units")
    if not samples or any(s.t.size == 0 for s in samples):
        raise InputError("there are no behavioural samples")
    start = max(s.t.min() for s in samples)
    stop = min(s.t.max() for s in samples)
    n_bins = int(np.floor((stop - start) / bin_width + 1e-9))
    if n_bins < 1:
        raise InputError(
            f"the behaviour samples span {max(stop - start, 0):.3g} s, less than one bin of "
            f"{bin_width:g} s"
        )
    if n_bins * len(trains) > MAX_CELLS:
        raise InputError(
            f"{n_bins} bins x {len(trains)} units is too large; choose a larger bin width"
        )
    edges = start + bin_width * np.arange(n_bins + 1)
    counts = np.column_stack([np.histogram(s, edges)[0] for s in trains.values()])
    if counts.sum() == 0:
        raise InputError(
            f"no spike falls within the behaviour samples' time span ({start:g} s to {stop:g} s)"
        )
    centres = edges[:-1] + bin_width / 2
    variables = [
        Variable(s.name, _interpolate(centres, s.t, s.values, s.circular), s.unit, s.circular)
        for s in samples
    ]
    return centres, counts, list(trains), variables


def _interpolate(centres, t, values, circular: bool) -> np.ndarray:
    order = np.argsort(t, kind="stable")
    t, values = t[order], values[order]
    if not circular:
        return np.interp(centres, t, values)
    with np.errstate(invalid="ignore"):
        sin, cos = np.sin(values), np.cos(values)
        return np.arctan2(np.interp(centres, t, sin), np.interp(centres, t, cos))


def positive_seconds(label: str, value) -> float:
    """One positive, finite number of seconds, or an InputError naming ``label``."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf" or array.size != 1:
        raise InputError(f"{label} must be one number (seconds), got {value!r:.40}")
    number = float(array.reshape(()))
    if not np.isfinite(number) or number <= 0:
        raise InputError(f"{label} must be a positive number of seconds, got {number}")
    return number
