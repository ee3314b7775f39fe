"""The bin-grid GLM: fits and cross-validation of one-hot (or basis) designs from the cell table,
at a cost independent of the sample count.

The Newton gradient is a set of per-bin sums of ``occupancy * exp(eta) - spikes`` over the
occupied cells (``cell_table``); the Hessian's diagonal blocks are per-bin sums of
``occupancy * exp(eta)`` and its off-diagonal blocks per-bin-pair sums (``_kernels``). Cells are
kept per cross-validation fold, so the full fit uses their sum, fold k's training fit the sum
minus row k, and fold k's held-out score row k alone: cross-validation is the same solver run
over the rows (``_grid_fit``).

Shapes stay static while the user works: every axis has a fixed number of bin slots and a mask
of active bins switches them on and off, and the cell table is walked in chunks up to the number
of occupied cells (a run-time loop bound), so changing a strength, a bin count, the variables
included, the folds or the unit reuses one compiled solver. Inactive coefficients are held at
zero, which is exactly the dense solution (an empty bin's column is all zeros, so only the
penalty acts on it). Small smooth problems are solved packed to their free coordinates
(``_packed_newton``).

A variable may instead enter through a basis: a (slots x k) matrix B whose row s holds the k
basis functions at the centre of fine bin s, so its design is one-hot(fine bin) @ B. The cell
totals are the same; the solver's coordinates are then the k coefficients c, the linear
predictor of a cell on that variable is (B c)[slot], and the per-bin gradient and Hessian are
pulled back through B (``_grid_problem``). Switching encoding or basis size is a new run-time
value, never a new shape.

Two linear variables may also form one joint leaf (a 2-D map): their bins (bx, by) of (nx, ny)
become one axis of the cell table whose bin is ``bx * ny + by``, with ``JOINT_SLOTS`` slots
instead of ``max_bins``. The axes' slot counts (``BinGrid.sizes``) are static, so pairing or
unpairing compiles the solvers once for that layout; the flat coefficient vector is the axes'
blocks one after the other, then the intercept. Smooth penalises neighbours along both axes of a
joint leaf; GroupLasso takes it as one group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._grid_fit import FIT_MAXITER, FIT_TOL, cross_validate_cells, fit_full
from ._grid_problem import grid_settings
from ._kernels import split
from .cell_table import FOLD_SLOTS, BinGrid
from .crossval import CVResult, bits_per_spike, pooled_pseudo_r2
from .poisson import pseudo_r2_mcfadden
from .regularizers import Regularizer


@dataclass(frozen=True)
class BinnedFit:
    """One fit on a bin grid; per-axis arrays are padded to the widest axis (``max_bins`` when
    there is no joint leaf).

    ``weights[v, k]`` is coefficient k of axis v (of bin k, of basis function k, or of joint bin
    k = bx * ny + by; zero where ``active`` is False); ``effects[v, s]`` is axis v's term of the
    log rate in bin slot s (``weights`` for bins, B @ weights for a basis), drawn where ``shown``.
    ``log_others_gain[v]`` is the log of the mean over samples of exp(sum of the other
    axes' effects), the factor by which they scale the rate on average. ``theta`` is the flat
    solver vector, for warm starts. ``curve_se[v, k]`` is the standard error of the log of the
    plotted curve (intercept + effects[v, k] + log_others_gain[v]) by the Laplace approximation
    (NaN where not shown, and for joint leaves, whose maps have no band).
    """

    weights: np.ndarray
    active: np.ndarray
    effects: np.ndarray
    shown: np.ndarray
    intercept: float
    log_others_gain: np.ndarray
    log_likelihood: float
    pseudo_r2: float
    n_iter: int
    converged: bool
    residual: float
    objective: float
    theta: jax.Array
    curve_se: np.ndarray

    def coef(self, names, n_coef) -> dict:
        """Coefficients as a dict ``name -> (n_coef,)`` array, like the dense GLM's ``coef_``."""
        return {name: self.weights[v, : n_coef[v]] for v, name in enumerate(names)}


def fit_bin_grid(
    grid: BinGrid,
    n_bins,
    include,
    strengths,
    regularizer: str | Regularizer = "Ridge",
    init: jax.Array | None = None,
    circular=None,
    tol: float = FIT_TOL,
    maxiter: int = FIT_MAXITER,
    bases=None,
) -> BinnedFit:
    """Fit the GLM of a design on the cell table, with the curves' Laplace bands.

    Args:
        grid: the cell table (:func:`~glm_core.cell_table.bin_grid`).
        n_bins: per axis, a variable's bin count, or (nx, ny) for a joint leaf.
        include: per axis, whether it is in the model.
        strengths: per-axis penalty strengths.
        regularizer: a name of ``regularizers.REGULARIZERS`` or a :class:`Regularizer`.
        init: a previous fit's ``theta``, to warm-start from.
        circular: per axis, whether its first and last coefficients are neighbours (Smooth).
        tol, maxiter: the Newton solver's tolerance and iteration cap.
        bases: per axis, None (one-hot bins) or a (n_bins, k) matrix of the k basis functions at
            the variable's bin centres (the design is then one-hot(bin) @ basis).

    Returns:
        A :class:`BinnedFit`; raises ``InputError`` on an invalid design.
    """
    reg, settings = grid_settings(grid, n_bins, include, strengths, regularizer, bases, circular)
    theta0 = np.zeros(grid.n_theta, np.float32) if init is None else init
    out = fit_full(grid.slots, grid.total_occupancy, grid.total_spikes, grid.slot_occupancy,
                   grid.slot_spikes, grid.n_chunks,
                   jnp.float32(grid.log_factorial), *settings, theta0, reg, tol, maxiter)
    res, active, effects, shown, log_others_gain, ll, ll_null, curve_se = jax.device_get(out)
    return BinnedFit(
        weights=_padded(split(res.theta, grid.sizes), 0.0),
        active=active,
        effects=effects,
        shown=shown,
        intercept=float(res.theta[-1]),
        log_others_gain=log_others_gain,
        log_likelihood=float(ll),
        pseudo_r2=float(pseudo_r2_mcfadden(ll, ll_null)),
        n_iter=int(res.n_iter),
        converged=bool(res.converged),
        residual=float(res.residual),
        objective=float(res.objective),
        theta=out[0].theta,
        curve_se=curve_se,
    )


def cross_validate_grid(
    grid: BinGrid,
    n_bins,
    include,
    strengths,
    regularizer: str | Regularizer = "Ridge",
    init: jax.Array | None = None,
    circular=None,
    tol: float = FIT_TOL,
    maxiter: int = FIT_MAXITER,
    bases=None,
) -> CVResult:
    """Fit every fold's training cells in one compiled call and score the held-out fold.

    Args:
        init: a previous ``CVResult.theta`` (one row per fold) or a single ``theta`` used for
            every fold.
        grid, n_bins, include, strengths, regularizer, circular, tol, maxiter, bases: as for
            :func:`fit_bin_grid`.

    Returns:
        A :class:`~glm_core.crossval.CVResult` over the grid's folds.
    """
    reg, settings = grid_settings(grid, n_bins, include, strengths, regularizer, bases, circular)
    size = grid.n_theta
    theta0 = _fold_start(init, size)
    out = cross_validate_cells(*_cells(grid), grid.n_chunks, jnp.int32(grid.n_folds), *settings,
                               theta0, reg, tol, maxiter)
    return _cv_scores(grid, out)


def regularization_path(
    grid: BinGrid,
    n_bins,
    include,
    strengths,
    variable: int,
    log_strengths,
    regularizer: str | Regularizer = "Ridge",
    init: jax.Array | None = None,
    circular=None,
    tol: float = FIT_TOL,
    maxiter: int = FIT_MAXITER,
    bases=None,
    on_step: Callable[[int, int], None] | None = None,
) -> list[CVResult]:
    """Cross-validated scores along the strengths of one axis, the others fixed.

    Each point is warm-started from the previous one and is one call of the compiled
    cross-validation, so a path compiles nothing of its own; the scores are fetched once, at the
    end.

    Args:
        variable: the axis whose strength moves.
        log_strengths: its log10 strengths, one per point.
        grid, n_bins, include, strengths, regularizer, init, circular, tol, maxiter, bases: as
            for :func:`cross_validate_grid`.
        on_step: called as ``on_step(points done, points)`` after each point; it may raise to
            stop the path.

    Returns:
        One :class:`~glm_core.crossval.CVResult` per point.
    """
    reg, settings = grid_settings(grid, n_bins, include, strengths, regularizer, bases, circular)
    n_coef, include_, strengths_, maps, is_basis, rough = settings
    start, previous = _fold_start(init, grid.n_theta), None
    outs = []
    log_strengths = list(log_strengths)
    for done, log_s in enumerate(log_strengths, 1):
        point = np.array(strengths_, np.float32)
        point[variable] = 10.0 ** float(log_s)
        out = cross_validate_cells(*_cells(grid), grid.n_chunks, jnp.int32(grid.n_folds),
                                   n_coef, include_, point, maps, is_basis, rough, start, reg,
                                   tol, maxiter)
        outs.append(out)
        # the next point starts on the line through the last two solutions (equal steps)
        theta = np.asarray(out[0])
        start = theta if previous is None else 2 * theta - previous
        previous = theta
        if on_step is not None:
            on_step(done, len(log_strengths))
    return [_cv_scores(grid, out) for out in outs]


def _cv_scores(grid, out):
    theta = out[0]  # left on the device, for warm starts
    _, converged, ll_test, ll_test_mean, ll_train, ll_train_mean = jax.device_get(out)
    k = grid.n_folds
    train_spikes = grid.n_spikes - grid.fold_spikes
    test_gain = np.asarray(ll_test[:k], float) - ll_test_mean[:k]
    train_gain = np.asarray(ll_train[:k], float) - ll_train_mean[:k]
    r2 = pooled_pseudo_r2(ll_test[:k], ll_test_mean[:k], grid.log_factorial)
    return CVResult(bits_per_spike(test_gain, 0.0, grid.fold_spikes),
                    bits_per_spike(train_gain, 0.0, train_spikes), grid.fold_spikes,
                    train_spikes, test_gain, train_gain, r2, converged[:k], theta)


def _fold_start(init, size):
    """Every fold's starting point: ``init`` per fold, one ``init`` for all, or zeros (made on
    the host: a new device array of a new shape would compile)."""
    if init is not None and np.ndim(init) == 2:
        return init
    start = np.zeros(size, np.float32) if init is None else np.asarray(init, np.float32)
    return np.broadcast_to(start, (FOLD_SLOTS, size))


def _cells(grid):
    """The cell table with its per-fold and total samples and spikes, as the CV solvers take it."""
    return (grid.slots, grid.occupancy, grid.spikes, grid.total_occupancy, grid.total_spikes,
            grid.slot_occupancy, grid.slot_spikes)


def _padded(blocks, fill):
    """Per-axis blocks stacked into (n_axes, widest), padded with ``fill``."""
    width = max(b.shape[0] for b in blocks)
    return np.stack([np.pad(np.asarray(b), (0, width - b.shape[0]), constant_values=fill)
                     for b in blocks])

