"""How a tuning curve is drawn, apart from what it is: bins labelled by the values they hold, the
rate axis's top with the empirical rates beyond it, and circular curves centred on their peak.
Pure numpy on :class:`glm_core.tuning.TuningCurve` values; the widgets draw the results."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from .encoding import Binning, bin_index

if TYPE_CHECKING:
    from .tuning import TuningCurve

FEW_VALUES = 4  # a variable with at most this many bins may be labelled by its values


def value_labels(values, binning: Binning) -> tuple | None:
    """The one distinct value of ``values`` in each bin (``"-1"``, ``"+1"``), where each of at
    most ``FEW_VALUES`` bins holds a single value; None otherwise (a bin's centre is then its
    label)."""
    if binning.n_bins > FEW_VALUES or binning.circular:
        return None
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    index = bin_index(values, binning)
    labels = []
    for b in range(binning.n_bins):
        held = values[index == b]
        if held.size and held.min() != held.max():
            return None
        labels.append(f"{held[0]:+g}" if held.size and held[0] != 0 else
                      "0" if held.size else "")
    return tuple(labels)


EDGE = 1.05  # empirical rates above this times the model's (band's, truth's) top are clamped


def rate_top(curve: TuningCurve) -> float:
    """The top of a curve's rate axis: ``EDGE`` times its largest model, band or true rate (NaN
    if there is none), so that one rarely visited bin's empirical rate cannot squash the curve."""
    drawn = [curve.model, curve.lower, curve.upper, curve.truth]
    values = np.concatenate([np.ravel(np.asarray(v, float)) for v in drawn if v is not None])
    values = values[np.isfinite(values)]
    return EDGE * float(values.max()) if values.size else np.nan


def on_scale(curve: TuningCurve) -> np.ndarray:
    """The empirical rates within the rate axis (NaN above it: :func:`off_scale` marks them)."""
    top = rate_top(curve)
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(curve.empirical) > top, np.nan, curve.empirical)


def off_scale(curve: TuningCurve) -> np.ndarray:
    """The rate axis's top where the empirical rate is above it, NaN elsewhere."""
    top = rate_top(curve)
    with np.errstate(invalid="ignore"):
        return np.where(np.asarray(curve.empirical) > top, top, np.nan)


def centred_on_peak(curve: TuningCurve) -> TuningCurve:
    """A circular variable's curve turned round the circle so that its model peak (else its
    empirical one) is in the middle: one peak, never two halves at the edges. Bins moved past
    the end have 2 pi added to their centres. Other curves are returned as they are."""
    if not curve.circular or len(curve.centres) < 3:
        return curve
    rates = curve.model if np.isfinite(curve.model).any() else curve.empirical
    if not np.isfinite(rates).any():
        return curve
    shift = len(curve.centres) // 2 - int(np.nanargmax(rates))
    if shift == 0:
        return curve
    centres = np.asarray(curve.centres, float)
    if shift > 0:  # the last ``shift`` bins move before the start
        centres = np.r_[centres[-shift:] - 2 * np.pi, centres[:-shift]]
    else:
        centres = np.r_[centres[-shift:], centres[:-shift] + 2 * np.pi]

    def turn(values):
        return None if values is None else np.roll(values, shift)

    return replace(curve, centres=centres, model=turn(curve.model),
                   empirical=turn(curve.empirical), truth=turn(curve.truth),
                   lower=turn(curve.lower), upper=turn(curve.upper))
