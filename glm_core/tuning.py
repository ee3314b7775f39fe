"""Tuning curves and maps of a bin-grid fit, as the page draws them: the model's rate of each
leaf with the other leaves at their mean effect, its 95% band, the occupancy-normalised
empirical rate and, for simulations, the ground truth averaged the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .curve_display import FEW_VALUES, value_labels
from .session import Session

if TYPE_CHECKING:
    from .binned import BinnedFit
    from .explorer import Encoding


@dataclass(frozen=True)
class TuningMap:
    """A joint leaf's rates in Hz on its (nx, ny) bins: the model's (other leaves at their mean
    effect), the occupancy-normalised empirical rate and, for simulations, the ground truth.
    Unvisited bins are NaN in the model and empirical maps."""

    name: str
    names: tuple[str, str]
    units: tuple[str, str]
    edges: tuple[np.ndarray, np.ndarray]
    model: np.ndarray
    empirical: np.ndarray
    truth: np.ndarray | None
    occupancy: np.ndarray  # seconds per bin

    @property
    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        return tuple(0.5 * (e[:-1] + e[1:]) for e in self.edges)


@dataclass(frozen=True)
class TuningCurve:
    """Rates in Hz at the bin centres: the model's (other variables at their mean effect) with
    its 95% band (``lower``, ``upper``), the occupancy-normalised empirical rate and, for
    simulations, the ground truth."""

    name: str
    unit: str
    circular: bool
    centres: np.ndarray
    model: np.ndarray
    empirical: np.ndarray
    truth: np.ndarray | None
    lower: np.ndarray
    upper: np.ndarray
    smooth: bool = False  # a basis: a smooth curve drawn through the fine bin centres
    labels: tuple | None = None  # few-valued variables: the one value each bin holds, as text



def tuning_curves(session: Session, enc: Encoding, result: BinnedFit) -> list:
    """One :class:`TuningCurve` per 1-D leaf (joint leaves: :func:`tuning_maps`).

    The model curve of variable v is its rate with the other leaves at their mean effect:
    exp(intercept + w_v) (w_v its bins' coefficients, or its basis at the fine bin centres) times
    the mean over samples of exp(other leaves' effects). The
    ground truth is averaged the same way over the recorded values, so both are comparable with
    the empirical rate and free of the intercept's trade-off with the coefficients.
    """
    dt = session.bin_width
    curves = []
    for a, leaf in enumerate(enc.behaviour_leaves):
        if len(leaf) != 1:
            continue
        v = leaf[0]
        var, binning = session.variables[v], enc.binnings[v]
        n = binning.n_bins
        occ, spk = (m[:n] for m in enc.grid.marginals(a))
        log_gain = (result.intercept + result.effects[a, :n].astype(float)
                    + float(result.log_others_gain[a]))
        model = np.exp(np.where(result.shown[a, :n], log_gain, np.nan)) / dt
        half = 1.959964 * result.curve_se[a, :n]
        lower, upper = model * np.exp(-half), model * np.exp(half)
        with np.errstate(invalid="ignore", divide="ignore"):
            empirical = np.where(occ > 0, spk / (occ * dt), np.nan)
        truth = _true_rate(session, enc, (var.name,), binning.centres)
        labels = (value_labels(var.values[session.valid], binning)
                  if n <= FEW_VALUES and enc._bases[v] is None else None)
        curves.append(TuningCurve(var.name, var.unit, var.circular, binning.centres, model,
                                  empirical, truth, lower, upper,
                                  smooth=enc._bases[v] is not None, labels=labels))
    return curves


def tuning_maps(session: Session, enc: Encoding, result: BinnedFit) -> list:
    """One :class:`TuningMap` per joint leaf: exp(intercept + w[bx * ny + by]) times the other
    leaves' mean effect, in Hz, beside the empirical rate and the truth averaged the same way."""
    dt = session.bin_width
    maps = []
    for a, leaf in enumerate(enc.behaviour_leaves):
        if len(leaf) != 2:
            continue
        (nx, ny), (bx, by) = enc.leaf_bins[a], (enc.binnings[v] for v in leaf)
        occ, spk = (m[: nx * ny].reshape(nx, ny) for m in enc.grid.marginals(a))
        log_gain = (result.intercept + result.effects[a, : nx * ny].astype(float)
                    + float(result.log_others_gain[a])).reshape(nx, ny)
        visited = result.shown[a, : nx * ny].reshape(nx, ny) & (occ > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            empirical = np.where(occ > 0, spk / (occ * dt), np.nan)
        names = tuple(session.variables[v].name for v in leaf)
        maps.append(TuningMap(
            " × ".join(names), names, tuple(session.variables[v].unit for v in leaf),
            (bx.edges, by.edges), np.where(visited, np.exp(log_gain) / dt, np.nan), empirical,
            _true_rate(session, enc, names, bx.centres[:, None], by.centres[None, :]),
            occ * dt))
    return maps


def _true_rate(session, enc, names, *at):
    """The unit's true rate in Hz over one leaf's variables at ``at``, the other effects at
    their mean, or None: without a truth, or when the truth of these variables is joint with
    another variable."""
    key = _truth_key(session, enc.unit, names)
    if key is _NO_TRUTH:
        return None
    effects, intercept = session.truth_of(enc.unit)
    effect = 0.0 if key is None else effects[key](*at)
    rate = np.exp(intercept + effect) * enc.truth_others[key] / session.bin_width
    return np.broadcast_to(rate, np.broadcast_shapes(*(np.shape(x) for x in at))).copy()


_NO_TRUTH = object()


def _truth_key(session, unit, names):
    """The truth's key of the effect over ``names`` (a name, or a pair of names), None where
    these variables have no effect, ``_NO_TRUTH`` where there is no truth to show."""
    if not (session.truth or session.unit_truth) or unit is None:
        return _NO_TRUTH
    effects, _ = session.truth_of(unit)
    key = names[0] if len(names) == 1 else tuple(names)
    if key in effects:
        return key
    if any(set(names) & set(_names(k)) for k in effects):
        return _NO_TRUTH
    return None


def _names(key) -> tuple:
    return (key,) if isinstance(key, str) else tuple(key)


def truth_others(session: Session, unit) -> dict:
    """For each true effect of ``unit`` (by key), the mean over valid samples of exp(sum of the
    other true effects): the factor its true curve takes from the others; under None, the mean
    of exp(all effects), for variables without an effect. Depends on the session and unit
    alone, so it is computed once per encoding, not per refit."""
    effects, _ = session.truth_of(unit)
    values = {key: f(*(session.variable(n).values[session.valid] for n in _names(key)))
              for key, f in effects.items()}
    others = {key: float(np.mean(np.exp(sum((e for other, e in values.items() if other != key),
                                            np.zeros(session.n_valid)))))
              for key in [*values, None]}
    return others
