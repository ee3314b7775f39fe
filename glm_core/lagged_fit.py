"""Fits and cross-validation of behavioural leaves plus lagged leaves (history, coupling, events).

The behavioural leaves keep the cell table (``cell_table.BinGrid``); the lagged leaves add one
row z_t per sample, eta_t = b + sum_v w_v[bin_v(t)] + z_t . beta (see ``_lag_problem`` for the
engine). The objective is the dense GLM's: the mean over the used samples of exp(eta) - y eta
plus the penalty, the intercept unpenalised, one strength per leaf. Samples whose lagged row is
NaN (the first W of the longest window) are dropped, as NeMoS does, and counted.

Shapes stay static while the user works: samples are padded to a bucket (``sample_bucket``),
the lag columns to ``MAX_LAG_LEAVES`` x ``LAG_BASIS``, and a sample's fold, use and lagged row
are data. Strengths, includes, unit, sources, windows and basis counts within those maxima
compile nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np
from scipy.special import gammaln

from ._grid_fit import FIT_MAXITER, FIT_TOL
from ._grid_problem import grid_settings
from ._kernels import split
from ._lag_fit import cross_validate_lagged_folds, fit_lagged_full
from ._lag_problem import LAG_BASIS, LAG_COLUMNS, MAX_LAG_LEAVES
from .binned import BinnedFit
from .cell_table import FOLD_SLOTS, BinGrid
from .crossval import CVResult, bits_per_spike, pooled_pseudo_r2
from .errors import InputError
from .poisson import pseudo_r2_mcfadden
from .regularizers import Regularizer, roughness

MIN_BUCKET = 1 << 12


def sample_bucket(n: int) -> int:
    """The padded sample count for ``n`` samples: the smallest of 2^k, 1.25, 1.5 and 1.75
    times 2^k that holds them (at least ``MIN_BUCKET``), so padding wastes at most 25%."""
    n = max(int(n), MIN_BUCKET)
    base = 1 << (n - 1).bit_length() - 1
    return next(int(base * f) for f in (1.0, 1.25, 1.5, 1.75, 2.0) if base * f >= n)


@dataclass(frozen=True)
class LagDesign:
    """The lagged rows of a session's valid samples, padded for the jitted solvers.

    ``rows`` (n_valid, LAG_COLUMNS) holds lag leaf j's columns in block j (zeros where unused
    and in dropped rows); ``used`` marks the samples without a NaN in any lagged row;
    ``kernels[j]`` is leaf j's (window, n_basis) lag kernels. The device arrays (``cell``,
    ``slots``, its bin slot per axis (V, N); ``y``, ``fold``; ``columns``, (MAX_LAG_LEAVES, N,
    LAG_BASIS) per leaf) are padded to N = ``sample_bucket(n_valid)`` samples; ``fold`` is -1
    for dropped and padding samples; ``nonzero`` (FOLD_SLOTS, LAG_COLUMNS) counts per fold the
    used samples with a nonzero entry in each lag column (a column without one is held at 0).
    """

    rows: np.ndarray
    used: np.ndarray
    kernels: tuple
    bin_width: float
    cell: jax.Array
    slots: jax.Array
    y: jax.Array
    columns: jax.Array
    fold: jax.Array
    nonzero: jax.Array
    n_folds: int
    fold_spikes: np.ndarray
    fold_log_factorial: np.ndarray

    @property
    def samples(self) -> tuple:
        """(cell, bin slots, count, lagged rows) per sample, as the jitted solvers take them."""
        return self.cell, self.slots, self.y, self.columns

    @property
    def n_leaves(self) -> int:
        return len(self.kernels)

    @property
    def n_dropped(self) -> int:
        return int(self.used.size - np.count_nonzero(self.used))

    @property
    def n_basis(self) -> np.ndarray:
        """(MAX_LAG_LEAVES,) basis functions per lag leaf, 0 past the last."""
        out = np.zeros(MAX_LAG_LEAVES, np.int32)
        out[: self.n_leaves] = [k.shape[1] for k in self.kernels]
        return out

    def with_grid(self, grid: BinGrid, counts) -> LagDesign:
        """The same lagged rows on another grid's cells and folds and other counts."""
        return lag_design(grid, counts, self.rows, self.used, self.kernels, self.bin_width)


def lag_design(grid: BinGrid, counts, rows, used, kernels, bin_width: float) -> LagDesign:
    """Pad the lagged rows of the valid samples for the solvers.

    Args:
        grid: the cell table of the behavioural leaves (its ``sample_cell``, ``sample_fold``).
        counts: (n_valid,) the unit's counts.
        rows: (n_valid, LAG_COLUMNS) lagged rows, leaf j in columns j * LAG_BASIS onwards.
        used: (n_valid,) bool, the samples without a NaN in any lagged row.
        kernels: per lag leaf its (window, n_basis) kernels.
        bin_width: seconds per bin.

    Returns:
        A :class:`LagDesign`; InputError when no sample is left.
    """
    used = np.asarray(used, bool)
    counts = np.asarray(counts, float)
    if not used.any():
        raise InputError("every sample falls inside a lag window: choose shorter windows")
    n_valid = used.size
    size = sample_bucket(n_valid)
    fold = np.where(used, grid.sample_fold, -1)

    def padded_host(x, dtype, fill=0):
        out = np.full((size, *x.shape[1:]), fill, dtype)
        out[:n_valid] = x
        return out

    def padded(x, dtype, fill=0, leaves=False):
        out = padded_host(x, dtype, fill)
        return jax.device_put(np.ascontiguousarray(out.swapaxes(0, 1)) if leaves else out)

    k = grid.n_folds
    y_used = np.where(used, counts, 0.0)
    values, inverse = np.unique(y_used, return_inverse=True)
    log_factorial = np.bincount(grid.sample_fold, np.where(
        used, gammaln(values + 1.0)[inverse.ravel()], 0.0), k)
    rows = np.asarray(rows, np.float32)
    nonzero = np.zeros((FOLD_SLOTS, LAG_COLUMNS), np.float32)
    np.add.at(nonzero, grid.sample_fold[used], rows[used] != 0)
    sample_slots = grid.cell_slots[:, grid.sample_cell].T
    return LagDesign(rows, used, tuple(kernels), float(bin_width),
                     padded(grid.sample_cell, np.int32),
                     jax.device_put(np.ascontiguousarray(padded_host(sample_slots, np.int32).T)),
                     padded(counts, np.float32),
                     padded(np.where(used[:, None], rows, 0.0).reshape(
                         n_valid, MAX_LAG_LEAVES, LAG_BASIS), np.float32, leaves=True),
                     padded(fold, np.int32, -1), jax.device_put(nonzero), k,
                     np.bincount(grid.sample_fold, y_used, k),
                     log_factorial)


@dataclass(frozen=True)
class LagFilter:
    """A lag leaf's fitted filter: at each lag (ms, 1 bin to the window), the log-gain
    (kernels @ coefficients) and its Laplace standard error (the 95% band of the gain is
    exp(log_gain +- 1.96 se))."""

    lags_ms: np.ndarray
    log_gain: np.ndarray
    se: np.ndarray


@dataclass(frozen=True)
class LaggedFit(BinnedFit):
    """A :class:`~glm_core.binned.BinnedFit` of the behavioural leaves (their effects, bands
    and others' gain include the lagged term), plus ``lag_coef`` (MAX_LAG_LEAVES, LAG_BASIS),
    one :class:`LagFilter` per lag leaf, and the samples dropped for a NaN lagged row."""

    lag_coef: np.ndarray = None
    filters: tuple = ()
    n_dropped: int = 0


STRENGTHS, LAG_STRENGTHS = 2, 7  # positions of the two strength arrays in the settings


def lag_settings(grid, design, n_bins, include, strengths, regularizer, bases, circular):
    """Check a design and split the per-leaf flags into the solvers' run-time settings.

    Returns:
        (regularizer, settings) for ``_lag_problem.lag_problem``; InputError on a bad design.
    """
    n_axes, n_lags = grid.n_variables, design.n_leaves
    include, strengths = list(include), list(strengths)
    if len(include) != n_axes + n_lags or len(strengths) != n_axes + n_lags:
        raise InputError(f"expected include flags and strengths for {n_axes + n_lags} leaves")
    if not any(include):
        raise InputError("include at least one variable in the model")
    reg, beh = grid_settings(grid, n_bins, [True] * n_axes, strengths[:n_axes], regularizer,
                             bases, circular)
    n_coef, _, beh_strengths, maps, is_basis, rough = beh
    lag_include = np.zeros(MAX_LAG_LEAVES, bool)
    lag_include[:n_lags] = include[n_axes:]
    lag_strengths = np.zeros(MAX_LAG_LEAVES, np.float32)
    lag_strengths[:n_lags] = strengths[n_axes:]
    lag_rough = np.zeros((MAX_LAG_LEAVES, LAG_BASIS, LAG_BASIS), np.float32)
    for j, k in enumerate(design.n_basis[:n_lags]):
        lag_rough[j, :k, :k] = roughness(int(k), False)
    return reg, (n_coef, np.asarray(include[:n_axes], bool), beh_strengths, maps, is_basis,
                 rough, lag_include, lag_strengths, design.n_basis, lag_rough)


def _start(init, size):
    """The start: ``init`` when it is one solution of this layout, else zeros (on the host)."""
    if init is not None and np.shape(init) == (size,):
        return init
    return np.zeros(size, np.float32)


def lagged_n_theta(grid: BinGrid) -> int:
    """Length of the flat solver vector: the axes' slots, the lag columns, the intercept."""
    return sum(grid.sizes) + LAG_COLUMNS + 1


def fit_lagged(grid: BinGrid, design: LagDesign, n_bins, include, strengths,
               regularizer: str | Regularizer = "Ridge", init=None, circular=None,
               tol: float = FIT_TOL, maxiter: int = FIT_MAXITER, bases=None) -> LaggedFit:
    """Fit the behavioural and lagged leaves, with the curves' and filters' Laplace bands.

    Args:
        grid: the behavioural cell table; design: the lagged rows (:func:`lag_design`).
        n_bins, circular, bases: per behavioural axis, as for ``binned.fit_bin_grid``.
        include, strengths: per leaf, the behavioural axes then the lag leaves.
        regularizer: a name or a :class:`Regularizer`; init: a previous fit's ``theta``.
        tol, maxiter: the Newton solver's.

    Returns:
        A :class:`LaggedFit`; InputError on an invalid design.
    """
    reg, settings = lag_settings(grid, design, n_bins, include, strengths, regularizer, bases,
                                 circular)
    theta0 = _start(init, lagged_n_theta(grid))
    out = fit_lagged_full(grid.slots, grid.n_chunks, design.samples, design.fold,
                          design.nonzero, np.float32(design.fold_log_factorial.sum()), settings,
                          theta0, reg, tol, maxiter)
    res, active, effects, shown, log_others_gain, ll, ll_null, curve_se, lag_cov = (
        jax.device_get(out))
    n_beh = sum(grid.sizes)
    beta = np.asarray(res.theta[n_beh:n_beh + LAG_COLUMNS], float)
    filters = []
    for j, kernels in enumerate(design.kernels):
        block = slice(j * LAG_BASIS, j * LAG_BASIS + kernels.shape[1])
        cov = np.asarray(lag_cov, float)[block, block]
        filters.append(LagFilter(
            lags_ms=1e3 * design.bin_width * np.arange(1, kernels.shape[0] + 1),
            log_gain=kernels @ beta[block],
            se=np.sqrt(np.maximum(np.einsum("lk,km,lm->l", kernels, cov, kernels), 0.0))))
    return LaggedFit(
        weights=_padded(split(res.theta[:n_beh], grid.sizes)), active=active, effects=effects,
        shown=shown, intercept=float(res.theta[-1]), log_others_gain=log_others_gain,
        log_likelihood=float(ll), pseudo_r2=float(pseudo_r2_mcfadden(ll, ll_null)),
        n_iter=int(res.n_iter), converged=bool(res.converged), residual=float(res.residual),
        objective=float(res.objective), theta=out[0].theta, curve_se=curve_se,
        lag_coef=beta.reshape(MAX_LAG_LEAVES, LAG_BASIS), filters=tuple(filters),
        n_dropped=design.n_dropped)


def cross_validate_lagged(grid: BinGrid, design: LagDesign, n_bins, include, strengths,
                          regularizer: str | Regularizer = "Ridge", init=None, circular=None,
                          tol: float = FIT_TOL, maxiter: int = FIT_MAXITER,
                          bases=None) -> CVResult:
    """Fit every fold's training samples in one compiled call and score the held-out fold.

    Args:
        init: a previous ``CVResult.theta`` (one row per fold slot) or one ``theta`` for all.
        grid, design, n_bins, include, strengths, regularizer, circular, tol, maxiter, bases:
            as for :func:`fit_lagged`.

    Returns:
        A :class:`~glm_core.crossval.CVResult` over the grid's folds (used samples only).
    """
    reg, settings = lag_settings(grid, design, n_bins, include, strengths, regularizer, bases,
                                 circular)
    return _cv(grid, design, settings, _fold_start(init, lagged_n_theta(grid)), reg, tol, maxiter)


def lagged_path(grid: BinGrid, design: LagDesign, n_bins, include, strengths, leaf: int,
                log_strengths, regularizer: str | Regularizer = "Ridge", init=None,
                circular=None, tol: float = FIT_TOL, maxiter: int = FIT_MAXITER, bases=None,
                on_step: Callable[[int, int], None] | None = None) -> list[CVResult]:
    """Cross-validated scores along the log10 ``log_strengths`` of one leaf (a behavioural axis
    or a lag leaf, numbered as in ``include``), the others fixed, each point warm-started from
    the previous; ``on_step(points done, points)`` after each (it may raise to stop)."""
    reg, settings = lag_settings(grid, design, n_bins, include, strengths, regularizer, bases,
                                 circular)
    n_axes = grid.n_variables
    start, previous, results = _fold_start(init, lagged_n_theta(grid)), None, []
    log_strengths = list(log_strengths)
    for done, log_s in enumerate(log_strengths, 1):
        point = list(settings)
        index, slot = ((STRENGTHS, leaf) if leaf < n_axes
                       else (LAG_STRENGTHS, leaf - n_axes))
        point[index] = np.array(point[index], np.float32)
        point[index][slot] = 10.0 ** float(log_s)
        result = _cv(grid, design, tuple(point), start, reg, tol, maxiter)
        results.append(result)
        theta = np.asarray(result.theta)
        start = theta if previous is None else 2 * theta - previous
        previous = theta
        if on_step is not None:
            on_step(done, len(log_strengths))
    return results


def _cv(grid, design, settings, theta0, reg, tol, maxiter) -> CVResult:
    out = cross_validate_lagged_folds(grid.slots, grid.n_chunks, design.samples, design.fold,
                                      design.nonzero, np.int32(design.n_folds), settings,
                                      theta0, reg, tol, maxiter)
    _, converged, ll_test, ll_test_mean, ll_train, ll_train_mean = jax.device_get(out)
    k = design.n_folds
    spikes = design.fold_spikes
    train_spikes = spikes.sum() - spikes
    test_gain = np.asarray(ll_test[:k], float) - ll_test_mean[:k]
    train_gain = np.asarray(ll_train[:k], float) - ll_train_mean[:k]
    r2 = pooled_pseudo_r2(ll_test[:k], ll_test_mean[:k], design.fold_log_factorial.sum())
    return CVResult(bits_per_spike(test_gain, 0.0, spikes),
                    bits_per_spike(train_gain, 0.0, train_spikes), spikes, train_spikes,
                    test_gain, train_gain, r2, converged[:k], out[0], design.n_dropped)


def _fold_start(init, size):
    """Every fold's start: ``init`` per fold, one ``init`` for all, or zeros."""
    if init is not None and np.ndim(init) == 2 and np.shape(init)[1] == size:
        return init
    return np.broadcast_to(np.asarray(_start(init, size), np.float32), (FOLD_SLOTS, size))


def _padded(blocks):
    width = max(b.shape[0] for b in blocks)
    return np.stack([np.pad(np.asarray(b), (0, width - b.shape[0])) for b in blocks])


