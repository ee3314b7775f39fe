"""The explorer's pipeline as pure functions: encode a session, fit, read off tuning curves.

``encode`` turns a session, a unit and per-variable bin counts into an :class:`Encoding` (bin
edges, per-sample bin indices and the joint bin-grid totals); ``with_bins``, ``with_basis`` and
``with_unit`` update one piece of it. A variable with a basis (B-spline, cyclic for circular
variables) is binned into ``max_bins`` fine bins, and its basis is evaluated at their centres.
``fit`` runs the cached, jitted bin-grid solver, and ``tuning_curves`` turns a fit into one
curve per variable in Hz.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .basis import bspline, cyclic_bspline
from .binned import (
    BinGrid,
    BinnedFit,
    CVScores,
    bin_grid,
    cross_validate_grid,
    fit_bin_grid,
    max_bins_for,
    regularization_path,
)
from .crossval import SelectionResult, select_forward
from .encoding import Binning, bin_index, make_binning
from .errors import InputError
from .evidence import evidence_strengths
from .regularizers import REGULARIZERS, Ridge, Smooth, get_regularizer
from .session import Session


@dataclass(frozen=True)
class Encoding:
    """Encoding of a session's valid samples for one unit: bins, and per variable either one-hot
    (``bases[v]`` None) or a basis, the (n_bins, k) matrix of its k functions at the bin
    centres."""

    binnings: tuple[Binning, ...]
    indices: np.ndarray  # (n_valid, n_variables) bin per sample
    counts: np.ndarray  # (n_valid,) spike counts of the unit
    grid: BinGrid
    truth_others: dict  # simulations: per variable, mean of exp(the other true effects)
    bases: tuple = ()  # per variable: None or (n_bins, k); () means all one-hot

    @property
    def n_bins(self) -> tuple[int, ...]:
        return tuple(b.n_bins for b in self.binnings)

    @property
    def n_coef(self) -> tuple[int, ...]:
        """Coefficients per variable: its bins, or its basis functions."""
        return tuple(n if b is None else b.shape[1] for n, b in zip(self.n_bins, self._bases))

    @property
    def _bases(self) -> tuple:
        return self.bases or (None,) * len(self.binnings)

    @property
    def max_bins(self) -> int:
        return self.grid.max_bins

    @property
    def circular(self) -> tuple[bool, ...]:
        return tuple(b.circular for b in self.binnings)


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


def encode(session: Session, unit, n_bins, n_folds: int = 10, n_basis=None) -> Encoding:
    """Bin every variable of ``session`` and total the unit's spikes over the joint cells, per
    cross-validation fold. ``n_basis[v]`` (None: one-hot bins) gives variable v a B-spline basis
    of that many functions on ``max_bins`` fine bins instead (cyclic for circular variables)."""
    max_bins = max_bins_for(len(session.variables))
    n_basis = (None,) * len(session.variables) if n_basis is None else tuple(n_basis)
    _check_bins([n for n, k in zip(n_bins, n_basis) if k is None], max_bins, session)
    n_bins = [n if k is None else max_bins for n, k in zip(n_bins, n_basis)]
    binnings = tuple(
        make_binning(v.values, n, v.circular, session.valid)
        for v, n in zip(session.variables, n_bins)
    )
    bases = tuple(None if k is None else spline_basis(b, k, session)
                  for b, k in zip(binnings, n_basis))
    indices = np.stack(
        [bin_index(v.values[session.valid], b) for v, b in zip(session.variables, binnings)], 1
    )
    counts = session.unit_counts(unit)[session.valid]
    return Encoding(binnings, indices, counts, bin_grid(indices, counts, max_bins, n_folds),
                    _truth_others(session), bases)


def with_bins(enc: Encoding, session: Session, variable: int, n: int) -> Encoding:
    """The same encoding with one variable re-binned into ``n`` one-hot bins."""
    return _rebinned(enc, session, variable, n, None)


def with_basis(enc: Encoding, session: Session, variable: int, n_basis: int) -> Encoding:
    """The same encoding with one variable on a B-spline basis of ``n_basis`` functions (cyclic
    for a circular variable) over ``max_bins`` fine bins; only the basis changes if the variable
    is on fine bins already."""
    if enc._bases[variable] is not None:
        basis = spline_basis(enc.binnings[variable], n_basis, session)
        return replace(enc, bases=_set(enc._bases, variable, basis))
    return _rebinned(enc, session, variable, enc.max_bins, n_basis)


def spline_basis(binning: Binning, n_basis: int, session: Session) -> np.ndarray:
    """(n_bins, n_basis) B-spline basis at the bin centres, over the bins' span (cyclic on a
    circular binning); InputError for fewer valid samples than basis functions."""
    n_basis = int(n_basis)
    if n_basis > session.n_valid:
        raise InputError(f"{n_basis} basis functions but only {session.n_valid} valid samples: "
                         "choose fewer basis functions")
    evaluate = cyclic_bspline if binning.circular else bspline
    return evaluate(binning.centres, n_basis, (binning.edges[0], binning.edges[-1]))


def _rebinned(enc, session, variable, n, n_basis):
    if n_basis is None:
        _check_bins([n], enc.max_bins, session)
    var = session.variables[variable]
    binning = make_binning(var.values, n, var.circular, session.valid)
    basis = None if n_basis is None else spline_basis(binning, n_basis, session)
    indices = enc.indices.copy()
    indices[:, variable] = bin_index(var.values[session.valid], binning)
    return replace(enc, binnings=_set(enc.binnings, variable, binning), indices=indices,
                   bases=_set(enc._bases, variable, basis),
                   grid=bin_grid(indices, enc.counts, enc.max_bins, enc.grid.n_folds))


def _set(items: tuple, index: int, value) -> tuple:
    return items[:index] + (value,) + items[index + 1 :]


def with_unit(enc: Encoding, session: Session, unit) -> Encoding:
    """The same encoding with another unit's spike counts."""
    counts = session.unit_counts(unit)[session.valid]
    return replace(enc, counts=counts, grid=enc.grid.with_counts(counts))


def with_folds(enc: Encoding, n_folds: int) -> Encoding:
    """The same encoding split into another number of cross-validation folds."""
    return replace(enc, grid=enc.grid.with_folds(n_folds, enc.counts))


def fit(enc: Encoding, include, strengths, regularizer, init=None) -> BinnedFit:
    """Fit the included variables with per-variable strengths (warm start from ``init``)."""
    return fit_bin_grid(enc.grid, enc.n_bins, include, strengths, regularizer, init,
                        enc.circular, bases=enc._bases)


def cross_validate(enc: Encoding, include, strengths, regularizer, init=None) -> CVScores:
    """Held-out scores of every fold, all folds fitted in one call (warm start from ``init``, a
    previous ``CVScores.theta`` or a fit's ``theta``)."""
    return cross_validate_grid(enc.grid, enc.n_bins, include, strengths, regularizer, init,
                               enc.circular, bases=enc._bases)


def path(enc: Encoding, include, strengths, regularizer, variable: int, log_strengths,
         init=None) -> list[CVScores]:
    """Cross-validated scores along ``log_strengths`` of one variable, the others fixed."""
    return regularization_path(enc.grid, enc.n_bins, include, strengths, variable, log_strengths,
                               regularizer, init, enc.circular, bases=enc._bases)


def best_strengths(enc: Encoding, include, log_strengths, regularizer, grid_points,
                   rounds: int = 2, init=None) -> list[float]:
    """log10 strengths of the included variables at their optimum, within the range of
    ``grid_points``: for Ridge and Smooth the Laplace evidence's maximum (MacKay's fixed point,
    see ``glm_core.evidence``: full fits only, no cross-validation), else (Lasso, GroupLasso,
    whose evidence has no such form) :func:`ascent_strengths`."""
    if isinstance(get_regularizer(regularizer), (Ridge, Smooth)):
        bounds = (float(np.min(grid_points)), float(np.max(grid_points)))
        return [float(x) for x in evidence_strengths(
            enc.grid, enc.n_bins, include, log_strengths, regularizer, None, enc.circular,
            enc._bases, bounds)]
    return ascent_strengths(enc, include, log_strengths, regularizer, grid_points, rounds, init)


def ascent_strengths(enc: Encoding, include, log_strengths, regularizer, grid_points,
                     rounds: int = 2, init=None) -> list[float]:
    """Coordinate ascent of the mean held-out score: each included variable in turn moves to the
    best of ``grid_points`` (log10 strengths) along its path (warm-started from ``init``, a
    ``CVScores.theta``), the others held; ``rounds`` sweeps. Returns the log10 strengths."""
    logs = [float(x) for x in log_strengths]
    for _ in range(rounds):
        for v, keep in enumerate(include):
            if not keep:
                continue
            scores = path(enc, include, [10.0**x for x in logs], regularizer, v, grid_points,
                          init)
            means = np.array([s.mean for s in scores])
            if np.isfinite(means).any():
                logs[v] = float(grid_points[int(np.nanargmax(means))])
    return logs


def forward_selection(enc: Encoding, strengths, regularizer, alpha: float = 0.05,
                      init=None) -> SelectionResult:
    """Forward selection of variables (by index) by held-out score, one-sided Wilcoxon test across
    folds at ``alpha`` (see ``crossval.select_forward``)."""

    def score(subset):
        include = [v in subset for v in range(len(enc.binnings))]
        return cross_validate(enc, include, strengths, regularizer, init).test_bits_per_spike

    return select_forward(score, range(len(enc.binnings)), alpha)


def warm_up(enc: Encoding) -> None:
    """Compile the fit and cross-validation of every regularizer for this encoding's shapes."""
    include = [True] * len(enc.binnings)
    for name in REGULARIZERS:
        result = fit(enc, include, [1e-3] * len(include), name)
        cross_validate(enc, include, [1e-3] * len(include), name, result.theta)


def tuning_curves(session: Session, enc: Encoding, result: BinnedFit) -> list:
    """One :class:`TuningCurve` per variable.

    The model curve of variable v is its rate with the other variables at their mean effect:
    exp(intercept + w_v) (w_v its bins' coefficients, or its basis at the fine bin centres) times
    the mean over samples of exp(other variables' effects). The
    ground truth is averaged the same way over the recorded values, so both are comparable with
    the empirical rate and free of the intercept's trade-off with the coefficients.
    """
    dt = session.bin_width
    curves = []
    for v, (var, binning) in enumerate(zip(session.variables, enc.binnings)):
        n = binning.n_bins
        occ, spk = (m[:n] for m in enc.grid.marginals(v))
        log_gain = (result.intercept + result.effects[v, :n].astype(float)
                    + float(result.log_others_gain[v]))
        model = np.exp(np.where(result.shown[v, :n], log_gain, np.nan)) / dt
        half = 1.959964 * result.curve_se[v, :n]
        lower, upper = model * np.exp(-half), model * np.exp(half)
        with np.errstate(invalid="ignore", divide="ignore"):
            empirical = np.where(occ > 0, spk / (occ * dt), np.nan)
        truth = None
        if var.name in session.truth:
            effect = session.truth[var.name](binning.centres)
            truth = np.exp(session.truth_intercept + effect) * enc.truth_others[var.name] / dt
        curves.append(TuningCurve(var.name, var.unit, var.circular, binning.centres, model,
                                  empirical, truth, lower, upper,
                                  smooth=enc._bases[v] is not None))
    return curves


def _truth_others(session: Session) -> dict:
    """For each variable with a ground truth, the mean over valid samples of exp(sum of the other
    variables' true effects): the factor its true curve takes from the others. Depends on the
    session alone, so it is computed once per encoding, not per refit."""
    effects = {name: f(session.variable(name).values[session.valid])
               for name, f in session.truth.items()}
    return {name: float(np.mean(np.exp(sum(e for other, e in effects.items() if other != name))))
            for name in effects}


def _check_bins(n_bins, max_bins, session):
    if any(not 1 <= int(n) <= max_bins for n in n_bins):
        raise InputError(f"choose between 1 and {max_bins} bins per variable")
    if max((int(n) for n in n_bins), default=0) > session.n_valid:
        raise InputError(
            f"more bins than valid samples ({session.n_valid}): choose fewer bins"
        )
