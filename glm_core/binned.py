"""Fits of one-hot designs from per-cell totals, at a cost independent of the sample count.

With every variable one-hot encoded, the linear predictor of a sample depends only on its joint
cell (one bin per variable), so the objective needs just the occupied cells: for each, its bin on
every variable, its samples (occupancy) and its spikes. The Newton gradient is a set of per-bin
sums of ``occupancy * exp(eta) - spikes``; the Hessian's diagonal blocks are per-bin sums of
``occupancy * exp(eta)`` and its off-diagonal blocks per-bin-pair sums.

Cells are kept per cross-validation fold (``FOLD_SLOTS`` rows; unused rows are empty), so the full
fit uses their sum, fold k's training fit the sum minus row k, and fold k's held-out score row k
alone: cross-validation is the same solver vmapped over the rows.

Shapes stay static while the user works: every variable has ``max_bins`` slots and a mask of
active bins switches them on and off; cells live in a padded table of ``capacity`` entries that is
walked in chunks up to the number of occupied cells (a run-time loop bound), so the cost follows
the occupied cells while changing a strength, a bin count, the variables included, the folds or
the unit reuses one compiled solver. Inactive coefficients are held at zero, which is exactly the
dense solution (an empty bin's column is all zeros, so only the penalty acts on it); Smooth keeps
empty bins inside the chosen range active, where the penalty interpolates them, as it would in
the dense fit. With a smooth penalty (none, Ridge, Smooth) and at most ``COMPACT`` free
coordinates, the Newton system is packed to those: its Hessian is gathered from the per-bin sums
and a step factors a 64 x 64 matrix instead of the padded (3 x 64 + 1)^2 one; both branches are
compiled together, so crossing that size compiles nothing either.

A variable may instead enter through a basis: a (slots x k) matrix B whose row s holds the k
basis functions at the centre of fine bin s, so its design is one-hot(fine bin) @ B. The cell
totals are the same; the solver's coordinates are then the k coefficients c, the linear
predictor of a cell on that variable is (B c)[slot], and the per-bin gradient and Hessian are
pulled back through B. Every variable has a (max_bins x max_bins) matrix (the identity for bins,
B padded with zero rows and columns for a basis), so switching encoding or basis size is a new
run-time value, never a new shape; a run-time flag keeps the one-hot fast paths when no included
variable has a basis.

Two linear variables may also form one joint leaf (a 2-D map): their bins (bx, by) of (nx, ny)
become one axis of the cell table whose bin is ``bx * ny + by``, with ``JOINT_SLOTS`` slots
instead of ``max_bins``. The axes' slot counts (``BinGrid.sizes``) are static, so pairing or
unpairing compiles the solvers once for that layout; the flat coefficient vector is the axes'
blocks one after the other, then the intercept. Smooth penalises neighbours along both axes of a
joint leaf; GroupLasso takes it as one group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln

from .crossval import fold_index
from .errors import InputError
from .poisson import pseudo_r2_mcfadden
from .regularizers import (
    SMOOTH_RIDGE,
    GroupLasso,
    Regularizer,
    Ridge,
    Smooth,
    get_regularizer,
    roughness,
)
from .solvers import solve

MAX_BINS = 64
JOINT_MAX_BINS = 20  # bins per variable of a joint (2-D) leaf
JOINT_SLOTS = JOINT_MAX_BINS**2
MAX_VARIABLES = 8
FOLD_SLOTS = 20  # the most cross-validation folds; fewer leave rows empty
CHUNK = 1024  # cells per step of the walk over the cell table
CAPACITIES = (2**16, 2**18, 2**20)  # cell-table sizes; the smallest that fits is used
FIT_TOL, FIT_MAXITER = 1e-6, 100  # the solvers' defaults (compiled once each)
COMPACT = 64  # smooth problems with at most this many free coordinates are solved packed


def max_bins_for(n_variables: int) -> int:
    """Bin slots per variable."""
    if n_variables > MAX_VARIABLES:
        raise InputError(f"{n_variables} variables are too many; keep at most {MAX_VARIABLES}")
    return MAX_BINS


@dataclass(frozen=True)
class BinGrid:
    """The occupied joint cells of a session, per cross-validation fold, on the JAX device.

    ``slots[v, c]`` is the bin of cell c on axis v (a variable, or a joint pair of variables);
    ``sizes[v]`` is axis v's number of bin slots. ``occupancy[k, c]`` and ``spikes[k, c]``
    are fold k's samples and spikes in cell c (rows past ``n_folds`` and cells past ``n_cells``
    are zero); ``total_occupancy`` and ``total_spikes`` their sums over the folds, and
    ``slot_occupancy[k]`` and ``slot_spikes[k]`` fold k's totals per bin slot of every axis, one
    axis after the other (the solver's constant terms, taken once here). ``sample_cell`` and
    ``sample_fold`` map each sample, so another unit or another fold count is re-totalled with
    a few bincounts.
    """

    slots: jax.Array
    occupancy: jax.Array
    spikes: jax.Array
    total_occupancy: jax.Array
    total_spikes: jax.Array
    slot_occupancy: jax.Array
    slot_spikes: jax.Array
    n_cells: int
    max_bins: int
    sample_cell: np.ndarray
    sample_fold: np.ndarray
    fold_samples: np.ndarray  # (n_folds,)
    fold_spikes: np.ndarray  # (n_folds,)
    fold_log_factorial: np.ndarray  # (n_folds,) sum of log(y!) over the fold's samples
    cell_slots: np.ndarray  # (V, n_cells) host copy of ``slots``
    cell_spikes: np.ndarray  # (n_cells,) spikes per cell over all folds
    sizes: tuple[int, ...] = ()  # bin slots per axis

    @property
    def n_theta(self) -> int:
        """Length of the flat solver vector: every axis's slots, then the intercept."""
        return sum(self.sizes) + 1

    @property
    def n_folds(self) -> int:
        return self.fold_spikes.size

    @property
    def n_variables(self) -> int:
        return self.slots.shape[0]

    @property
    def n_spikes(self) -> float:
        return float(self.fold_spikes.sum())

    @property
    def log_factorial(self) -> float:
        return float(self.fold_log_factorial.sum())

    def marginals(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples and spikes per bin of axis ``v`` over all folds (``sizes[v]`` each)."""
        samples = np.bincount(self.sample_cell, minlength=self.n_cells)
        return (np.bincount(self.cell_slots[v], samples, self.sizes[v]),
                np.bincount(self.cell_slots[v], self.cell_spikes, self.sizes[v]))

    def with_counts(self, counts: np.ndarray) -> BinGrid:
        """The same cells with other spike counts (another unit)."""
        counts = np.asarray(counts, float)
        capacity = self.slots.shape[1]
        spikes = _fold_totals(self.sample_fold, self.sample_cell, counts, capacity)
        cell_spikes = np.bincount(self.sample_cell, counts, self.n_cells)
        return replace(self, spikes=jnp.asarray(spikes, jnp.float32),
                       total_spikes=_padded_cells(cell_spikes, capacity),
                       slot_spikes=self._slot_totals(counts),
                       cell_spikes=cell_spikes,
                       fold_spikes=np.bincount(self.sample_fold, counts, self.n_folds),
                       fold_log_factorial=_fold_log_factorial(self.sample_fold, counts,
                                                              self.n_folds))

    def with_folds(self, n_folds: int, counts: np.ndarray) -> BinGrid:
        """The same cells split into ``n_folds`` folds of contiguous sections."""
        fold = fold_index(self.sample_cell.size, n_folds)
        capacity = self.slots.shape[1]
        occupancy = _fold_totals(fold, self.sample_cell, None, capacity)
        grid = replace(self, sample_fold=fold, occupancy=jnp.asarray(occupancy, jnp.float32),
                       total_occupancy=_padded_cells(
                           np.bincount(self.sample_cell, minlength=self.n_cells), capacity),
                       fold_samples=np.bincount(fold, minlength=n_folds).astype(float),
                       fold_spikes=np.zeros(n_folds))
        grid = replace(grid, slot_occupancy=grid._slot_totals(None))
        return grid.with_counts(counts)

    def _slot_totals(self, weights) -> jax.Array:
        """(FOLD_SLOTS, sum(sizes)): per fold, the samples (``weights`` None) or the counts in
        each bin slot of every axis."""
        n_slots = sum(self.sizes)
        offsets = np.cumsum((0, *self.sizes))[:-1]
        index = self.sample_fold.astype(np.int64)[None, :] * n_slots + (
            self.cell_slots[:, self.sample_cell] + offsets[:, None])
        weights = None if weights is None else np.broadcast_to(weights, index.shape).ravel()
        totals = np.bincount(index.ravel(), weights, FOLD_SLOTS * n_slots)
        return jnp.asarray(totals.reshape(FOLD_SLOTS, n_slots), jnp.float32)


def bin_grid(indices: np.ndarray, counts: np.ndarray, max_bins: int, n_folds: int = 10,
             sizes=None) -> BinGrid:
    """Cell totals from per-sample bin indices ``(T, n_axes)`` and counts ``(T,)``; axis v has
    ``sizes[v]`` bin slots (default ``max_bins`` each)."""
    indices = np.asarray(indices)
    counts = np.asarray(counts, float)
    if indices.ndim != 2 or indices.shape[0] != counts.shape[0]:
        raise InputError("bin indices and spike counts have different numbers of samples")
    if indices.shape[0] == 0:
        raise InputError("no samples to fit")
    sizes = (max_bins,) * indices.shape[1] if sizes is None else tuple(int(n) for n in sizes)
    cells, sample_cell = _unique_rows(indices, sizes)
    capacity = next((c for c in CAPACITIES if c >= len(cells)), None)
    if capacity is None:
        raise InputError(f"{len(cells)} occupied bin combinations are too many; choose fewer bins")
    slots = np.zeros((indices.shape[1], capacity), np.int32)
    slots[:, : len(cells)] = cells.T
    grid = BinGrid(jnp.asarray(slots), None, None, None, None, None, None, len(cells), max_bins,
                   sample_cell, None, None, None, None, cells.T.astype(np.int64), None, sizes)
    return grid.with_folds(n_folds, counts)


def _unique_rows(indices, shape):
    """Distinct rows of ``indices`` and each row's position among them (sorted order)."""
    flat = np.ravel_multi_index(tuple(indices.T.astype(np.int64)), shape)
    used = indices.max(0).astype(np.int64) + 1
    if np.prod(used.astype(float)) <= 4 * flat.size + 2**20:  # small cell space: bincount
        compact = np.ravel_multi_index(tuple(indices.T.astype(np.int64)), tuple(used))
        present = np.bincount(compact, minlength=int(np.prod(used))) > 0
        position = np.cumsum(present) - 1
        cells = np.stack(np.unravel_index(np.flatnonzero(present), tuple(used)), 1)
        return cells, position[compact]
    unique, inverse = np.unique(flat, return_inverse=True)
    return np.stack(np.unravel_index(unique, shape), 1), inverse.ravel()


def _fold_totals(fold, cell, weights, capacity):
    flat = fold.astype(np.int64) * capacity + cell
    totals = np.bincount(flat, weights, FOLD_SLOTS * capacity)
    return totals.reshape(FOLD_SLOTS, capacity)


def _padded_cells(per_cell, capacity):
    out = np.zeros(capacity, np.float32)
    out[: per_cell.size] = per_cell
    return jnp.asarray(out)


def _fold_log_factorial(fold, counts, n_folds):
    """Per fold, sum of log(y!) over its samples, from the distinct count values only."""
    values, inverse = np.unique(counts, return_inverse=True)
    return np.bincount(fold, gammaln(values + 1.0)[inverse.ravel()], n_folds)


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


@dataclass(frozen=True)
class CVScores:
    """Held-out and training scores per fold, in bits per spike, and pooled pseudo-R2s.

    Fold k's model is fitted on the other folds; its held-out score is (LL_model - LL_mean) over
    fold k's samples / fold k's spikes / ln 2, where LL_mean uses the training folds' mean count.
    ``theta`` holds each fold's solution, for warm starts.
    """

    test_bits_per_spike: np.ndarray
    train_bits_per_spike: np.ndarray
    test_pseudo_r2: float
    converged: bool
    theta: jax.Array

    @property
    def mean(self) -> float:
        return float(np.nanmean(self.test_bits_per_spike))

    @property
    def sem(self) -> float:
        scores = self.test_bits_per_spike[np.isfinite(self.test_bits_per_spike)]
        return float(np.std(scores, ddof=1) / np.sqrt(scores.size)) if scores.size > 1 else np.nan




def _settings(grid, n_bins, include, strengths, regularizer, bases, circular):
    """The regularizer and the jitted solver's run-time settings, per axis: coefficients, include
    flags, strengths, the (slots x slots) maps from coefficients to bin slots, which axes have a
    basis, and the roughness matrices of Smooth (D'D of neighbouring differences, in slots).
    Per-axis matrices stay numpy arrays (cached where they repeat): jit takes them as they are,
    where converting each new one on its own would compile a transfer.

    ``n_bins[v]`` is an axis's bin count, or a pair (nx, ny) for a joint leaf (bins bx * ny + by).
    """
    reg = get_regularizer(regularizer)
    if len(n_bins) != grid.n_variables:
        raise InputError(f"expected bin counts for {grid.n_variables} leaves, got {len(n_bins)}")
    shapes = [tuple(int(m) for m in n) if np.ndim(n) else (int(n),) for n in n_bins]
    for shape, size in zip(shapes, grid.sizes):
        if len(shape) > 2 or min(shape) < 1 or int(np.prod(shape)) > size or (
                len(shape) == 2 and max(shape) > JOINT_MAX_BINS):
            raise InputError(f"each variable needs between 1 and {grid.max_bins} bins, and "
                             f"between 1 and {JOINT_MAX_BINS} in a 2-D leaf")
    if grid.n_spikes <= 0:
        raise InputError("this unit has no spikes in the selected samples: nothing to fit")
    if not any(include):
        raise InputError("include at least one variable in the model")
    bases = [None] * grid.n_variables if bases is None else list(bases)
    circular = [False] * grid.n_variables if circular is None else [bool(c) for c in circular]
    maps, n_coef, roughness = [], [], []
    for v, (basis, shape, size) in enumerate(zip(bases, shapes, grid.sizes)):
        if basis is None:
            maps.append(_identity(size))
            n_coef.append(int(np.prod(shape)))
        else:
            basis = np.asarray(basis, np.float32)
            if len(shape) == 2 or basis.ndim != 2 or basis.shape[0] != shape[0] or (
                    basis.shape[1] > size):
                raise InputError(f"variable {v}'s basis must be ({shape[0]} bins x at most "
                                 f"{size} functions), got {basis.shape}")
            padded = np.zeros((size, size), np.float32)
            padded[: basis.shape[0], : basis.shape[1]] = basis
            maps.append(padded)
            n_coef.append(basis.shape[1])
        if len(shape) == 2 and circular[v]:
            raise InputError("a 2-D leaf pairs two linear variables; a circular one cannot be "
                             "paired")
        rows = (n_coef[-1],) if len(shape) == 1 else shape
        roughness.append(_slot_roughness(rows, circular[v], size))
    is_basis = np.array([b is not None for b in bases])
    return reg, (np.asarray(n_coef, np.int32), np.asarray(include, bool),
                 np.asarray(strengths, np.float32), tuple(maps), is_basis, tuple(roughness))


@lru_cache(maxsize=8)
def _identity(size):
    return np.eye(size, dtype=np.float32)


@lru_cache(maxsize=256)
def _slot_roughness(shape, circular, size):
    """D'D of first differences of neighbouring coefficients, in the first prod(shape) of
    ``size`` slots: along a 1-D leaf (with the wrap-around pair when circular), or along both
    axes of a (nx, ny) joint leaf, the Kronecker sum R_nx (x) I_ny + I_nx (x) R_ny."""
    if len(shape) == 1:
        block = roughness(shape[0], circular)
    else:
        nx, ny = shape
        block = (np.kron(roughness(nx, False), np.eye(ny))
                 + np.kron(np.eye(nx), roughness(ny, False)))
    out = np.zeros((size, size), np.float32)
    out[: block.shape[0], : block.shape[0]] = block
    return out


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
    """Fit the GLM of the design described by ``n_bins`` and ``include`` (one entry per axis of
    the grid: a variable's bin count, or (nx, ny) for a joint leaf) with per-axis ``strengths``,
    warm-started from ``init`` (a previous ``theta``). ``circular`` flags variables whose first
    and last coefficients are neighbours (for Smooth). ``bases`` has one entry per axis: None
    (one-hot bins) or a (n_bins, k) matrix, the k basis functions at the variable's bin centres
    (the design is then one-hot(bin) @ basis)."""
    reg, settings = _settings(grid, n_bins, include, strengths, regularizer, bases, circular)
    theta0 = np.zeros(grid.n_theta, np.float32) if init is None else init
    out = _fit_full(grid.slots, grid.total_occupancy, grid.total_spikes, grid.slot_occupancy,
                    grid.slot_spikes, _n_chunks(grid),
                    jnp.float32(grid.log_factorial), *settings, theta0, reg, tol, maxiter)
    res, active, effects, shown, log_others_gain, ll, ll_null, curve_se = jax.device_get(out)
    return BinnedFit(
        weights=_padded(_split(res.theta, grid.sizes), 0.0),
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
) -> CVScores:
    """Fit every fold's training cells in one vmapped call and score the held-out fold.

    ``init`` is a previous ``CVScores.theta`` or a single ``theta`` used for every fold; the
    other arguments as for :func:`fit_bin_grid`."""
    reg, settings = _settings(grid, n_bins, include, strengths, regularizer, bases, circular)
    size = grid.n_theta
    theta0 = _fold_start(init, size)
    out = _cross_validate(*_cells(grid), _n_chunks(grid),
                          jnp.int32(grid.n_folds), *settings, theta0, reg, tol, maxiter)
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
) -> list[CVScores]:
    """Cross-validated scores along ``log_strengths`` of one axis (``variable``), the others
    fixed; each point is warm-started from the previous one. Each point is one call of the
    compiled cross-validation, so a path compiles nothing of its own; the scores are fetched
    once, at the end."""
    reg, settings = _settings(grid, n_bins, include, strengths, regularizer, bases, circular)
    n_coef, include_, strengths_, maps, is_basis, rough = settings
    start, previous = _fold_start(init, grid.n_theta), None
    outs = []
    for log_s in log_strengths:
        point = np.array(strengths_, np.float32)
        point[variable] = 10.0 ** float(log_s)
        out = _cross_validate(*_cells(grid), _n_chunks(grid), jnp.int32(grid.n_folds), n_coef,
                              include_, point, maps, is_basis, rough, start, reg, tol, maxiter)
        outs.append(out)
        # the next point starts on the line through the last two solutions (equal steps)
        theta = np.asarray(out[0])
        start = theta if previous is None else 2 * theta - previous
        previous = theta
    return [_cv_scores(grid, out) for out in outs]


def _cv_scores(grid, out):
    theta = out[0]  # left on the device, for warm starts
    _, converged, ll_test, ll_test_mean, ll_train, ll_train_mean = jax.device_get(out)
    k = grid.n_folds
    train_spikes = grid.n_spikes - grid.fold_spikes
    with np.errstate(invalid="ignore", divide="ignore"):
        test = (ll_test[:k] - ll_test_mean[:k]) / grid.fold_spikes / np.log(2)
        train = (ll_train[:k] - ll_train_mean[:k]) / train_spikes / np.log(2)
        test = np.where(grid.fold_spikes > 0, test, np.nan)
        # pooled held-out McFadden pseudo-R2 (log y! included in both)
        r2 = 1.0 - (np.sum(ll_test[:k]) - grid.log_factorial) / (
            np.sum(ll_test_mean[:k]) - grid.log_factorial)
    return CVScores(test, train, float(r2), bool(np.all(converged[:k])), theta)


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


def _n_chunks(grid):
    return jnp.int32(-(-grid.n_cells // CHUNK))


def _split(theta, sizes):
    """Per-axis blocks of a flat vector [axis 0 slots, axis 1 slots, ..., (intercept)]."""
    starts = np.cumsum((0, *sizes))
    return [theta[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _padded(blocks, fill):
    """Per-axis blocks stacked into (n_axes, widest), padded with ``fill``."""
    width = max(b.shape[0] for b in blocks)
    return np.stack([np.pad(np.asarray(b), (0, width - b.shape[0]), constant_values=fill)
                     for b in blocks])


# --- the jitted solver --------------------------------------------------------------------------


def _sizes(maps):
    """Static slot counts per axis, read off the maps' shapes."""
    return tuple(m.shape[0] for m in maps)


def _over_folds(rows):
    """Sum over the fold rows, as a product with ones: XLA's CPU reduction over the leading
    axis is some forty times slower."""
    return jnp.ones(rows.shape[0], rows.dtype) @ rows


def _to_slots(theta, maps):
    """[per-slot effects (B @ c per axis)..., intercept] from [coefficients..., intercept]."""
    coef = _split(theta, _sizes(maps))
    return jnp.concatenate([m @ c for m, c in zip(maps, coef)] + [theta[-1:]])


def _pull(per_slot, maps):
    """B' x per axis: per-slot sums (a list, one per axis) to per-coefficient sums."""
    return [m.T @ x for m, x in zip(maps, per_slot)]


def _walk(slots, occupancy, n_chunks, theta, sizes, hessian=True):
    """One pass over the occupied cells at ``theta`` (per-slot effects): total expected count,
    per-bin expected counts (a list of (sizes[v],)) and, with ``hessian``, per-bin-pair ones
    {(v, u): (sizes[v] * sizes[u],)}. With two axes or more, the per-bin sums are the margins
    of the pair tables (scatter-adds are most of a pass's cost on a CPU; these sums are not)."""
    n_axes = len(sizes)
    w = _split(theta, sizes)
    pairs = [(v, u) for v in range(n_axes) for u in range(v + 1, n_axes)] if hessian else []
    from_pairs = bool(pairs)

    def step(i, acc):
        total, per_bin, per_pair = acc
        cells = jax.lax.dynamic_slice(slots, (0, i * CHUNK), (n_axes, CHUNK))
        occ = jax.lax.dynamic_slice(occupancy, (i * CHUNK,), (CHUNK,))
        eta = theta[-1] + sum(w[v][cells[v]] for v in range(n_axes))
        mu = jnp.where(occ > 0, occ * jnp.exp(eta), 0.0)
        if not from_pairs:
            per_bin = [acc_b + jax.ops.segment_sum(mu, cells[v], sizes[v])
                       for v, acc_b in enumerate(per_bin)]
        per_pair = [acc_p + jax.ops.segment_sum(mu, cells[v] * sizes[u] + cells[u],
                                                sizes[v] * sizes[u])
                    for acc_p, (v, u) in zip(per_pair, pairs)]
        return total + jnp.sum(mu), per_bin, per_pair

    zero = jnp.zeros((), theta.dtype)
    init = (zero, [jnp.zeros(n, theta.dtype) for n in sizes],
            [jnp.zeros(sizes[v] * sizes[u], theta.dtype) for v, u in pairs])
    total, per_bin, per_pair = jax.lax.fori_loop(0, n_chunks, step, init)
    per_pair = dict(zip(pairs, per_pair))
    if from_pairs:
        per_bin = [_margin(per_pair, sizes, v) for v in range(n_axes)]
    return total, per_bin, per_pair


def _margin(per_pair, sizes, v):
    """Axis v's per-bin sums from its table with a neighbouring axis."""
    if v + 1 < len(sizes):
        table = per_pair[(v, v + 1)].reshape(sizes[v], sizes[v + 1])
        return table @ jnp.ones(sizes[v + 1], table.dtype)
    table = per_pair[(v - 1, v)].reshape(sizes[v - 1], sizes[v])
    return jnp.ones(sizes[v - 1], table.dtype) @ table


def _log_likelihood_terms(slots, tables, n_chunks, theta, sizes):
    """For each (occupancy, spikes) of ``tables``, in one pass: the sum over cells of
    spikes * eta - occupancy * exp(eta) (log y! left out; ``theta`` holds per-slot effects)."""
    n_axes = len(sizes)
    w = _split(theta, sizes)

    def step(i, acc):
        cells = jax.lax.dynamic_slice(slots, (0, i * CHUNK), (n_axes, CHUNK))
        eta = theta[-1] + sum(w[v][cells[v]] for v in range(n_axes))
        rate = jnp.exp(eta)
        out = []
        for a, (occupancy, spikes) in zip(acc, tables):
            occ = jax.lax.dynamic_slice(occupancy, (i * CHUNK,), (CHUNK,))
            spk = jax.lax.dynamic_slice(spikes, (i * CHUNK,), (CHUNK,))
            out.append(a + jnp.sum(jnp.where(occ > 0, spk * eta - occ * rate, 0.0)))
        return out

    return jax.lax.fori_loop(0, n_chunks, step, [jnp.zeros((), theta.dtype) for _ in tables])


def _hessian(total, per_bin, per_pair, n_vars, max_bins):
    """The (V * max_bins + 1)^2 Hessian of sum(occupancy * exp(eta)) from its per-bin sums."""
    return _hessian_blocks(total, per_bin, per_pair, (max_bins,) * n_vars)


def _hessian_blocks(total, per_bin, per_pair, sizes):
    """The (sum(sizes) + 1)^2 Hessian of sum(occupancy * exp(eta)) from its per-bin sums."""
    n_axes = len(sizes)
    rows = []
    for v in range(n_axes):
        row = []
        for u in range(n_axes):
            if u == v:
                row.append(jnp.diag(per_bin[v]))
            elif v < u:
                row.append(per_pair[(v, u)].reshape(sizes[v], sizes[u]))
            else:
                row.append(per_pair[(u, v)].reshape(sizes[u], sizes[v]).T)
        rows.append(row + [per_bin[v][:, None]])
    rows.append([per_bin[v][None, :] for v in range(n_axes)] + [total[None, None]])
    return jnp.block(rows)


def _pull_hessian(h, maps):
    """Blockdiag(B_1, ..., B_V, 1)' H blockdiag(B_1, ..., B_V, 1), block by block."""
    starts = np.cumsum((0, *_sizes(maps)))
    span = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
    inner = jnp.block([[mv.T @ h[sv, su] @ mu for mu, su in zip(maps, span)]
                       for mv, sv in zip(maps, span)])
    border = jnp.concatenate([m.T @ h[s, -1] for m, s in zip(maps, span)])
    return jnp.block([[inner, border[:, None]], [border[None, :], h[-1:, -1:]]])


def _roughness(n, circular, max_bins):
    """``regularizers.roughness(n, circular)`` in the first ``n`` of ``max_bins`` slots, for a
    run-time ``n``: D'D of first differences, with the wrap-around difference when circular."""
    k = jnp.arange(max_bins - 1)
    links = (k + 1 < n).astype(jnp.float32)
    adjacency = jnp.diag(links, 1)
    wrap = circular.astype(jnp.float32)
    adjacency = adjacency.at[0, n - 1].add(wrap)
    adjacency = adjacency + adjacency.T
    return jnp.diag(adjacency.sum(1)) - adjacency


class _Problem(NamedTuple):
    """One training set's objective in coefficients. ``value_grad_hess(theta)`` gives the value
    with its gradient and Hessian (identity rows off ``keep``); ``sums(theta)`` the value and
    gradient with the per-bin sums the Hessian is made of, and ``hessian(sums)`` the Hessian
    from them. Then the penalty's weights and groups, the gradient's scale, the active
    coefficients (per axis; ``keep`` flat, with the intercept), the sample count, and whether
    every included axis is one-hot (the Hessian's blocks are then diagonal)."""

    value_grad_hess: Callable
    sums: Callable
    hessian: Callable
    weights: jax.Array
    groups: tuple
    scale: jax.Array
    keep: jax.Array
    active: list
    n: jax.Array
    one_hot: jax.Array


def _problem(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef, include,
             strengths, maps, is_basis, rough, reg) -> _Problem:
    """The objective of one training set: cells, and its totals per bin slot."""
    sizes = _sizes(maps)
    one_hot = ~jnp.any(is_basis & include)
    slot_samples = _split(slot_occupancy, sizes)
    n = jnp.maximum(jnp.sum(slot_samples[0]), 1.0)
    total_spikes = jnp.sum(_split(slot_spikes, sizes)[0])
    # a coefficient whose column of the design is all zeros (no samples) is held at zero
    counts = _pull(slot_samples, maps)
    in_range = [include[v] & (jnp.arange(size) < n_coef[v]) for v, size in enumerate(sizes)]
    active = in_range if isinstance(reg, Smooth) else [r & (c > 0)
                                                       for r, c in zip(in_range, counts)]
    keep = jnp.concatenate([*active, jnp.ones(1, bool)])
    # X'y of the design: constant, so the linear term costs no pass over the cells.
    spike_totals = jnp.concatenate([*_pull(_split(slot_spikes, sizes), maps), total_spikes[None]])

    def sums(theta):
        walked = _walk(slots, occupancy, n_chunks, _to_slots(theta, maps), sizes)
        total, per_bin, _ = walked
        f = (total - spike_totals @ theta) / n
        g = (jnp.concatenate([*_pull(per_bin, maps), total[None]]) - spike_totals) / n
        return f, g * keep, walked

    def hessian(walked):
        h = _hessian_blocks(*walked, sizes) / n
        return jax.lax.cond(one_hot, lambda a: a, lambda a: _pull_hessian(a, maps), h)

    def value_grad_hess(theta):
        f, g, walked = sums(theta)
        inert = jnp.diag(jnp.where(keep, 0.0, 1.0))
        return f, g, jnp.where(keep[:, None] & keep[None, :], hessian(walked), inert)

    if isinstance(reg, GroupLasso):
        weights = strengths * jnp.sqrt(n_coef.astype(strengths.dtype))
    elif isinstance(reg, Smooth):
        blocks = [jnp.where(active[v][:, None] & active[v][None, :], strengths[v] * (
            rough[v] + SMOOTH_RIDGE * jnp.eye(size)), 0.0) for v, size in enumerate(sizes)]
        weights = jax.scipy.linalg.block_diag(*blocks, jnp.zeros((1, 1)))
    else:
        per_coef = jnp.concatenate([jnp.where(a, strengths[v], 0.0)
                                    for v, a in enumerate(active)])
        weights = jnp.concatenate([per_coef, jnp.zeros(1, strengths.dtype)])
    starts = np.cumsum((0, *sizes))
    groups = tuple((int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))
    scale = jnp.maximum(total_spikes / n, 1e-6)
    return _Problem(value_grad_hess, sums, hessian, weights, groups, scale, keep, active, n,
                    one_hot)


def _solve_cells(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef,
                 include, strengths, maps, is_basis, rough, theta0, reg, tol, maxiter):
    """Solve one training set. With a smooth penalty and at most ``COMPACT`` free coordinates
    (the usual case), the solver runs on those alone."""
    problem = _problem(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef,
                       include, strengths, maps, is_basis, rough, reg)

    def full(theta0):
        return solve(problem.value_grad_hess, theta0 * problem.keep, reg, problem.weights,
                     problem.groups, problem.scale, tol, maxiter,
                     diagonal_blocks=problem.one_hot)

    if reg.smooth:
        compact = partial(_solve_compact, problem, _sizes(maps), reg, tol, maxiter)
        res = jax.lax.cond(jnp.sum(problem.keep) <= COMPACT, compact, full, theta0)
    else:
        res = full(theta0)
    return res, problem


def _solve_compact(problem, sizes, reg, tol, maxiter, theta0):
    """``solve`` on the free coordinates (``keep``) alone, packed into the first entries of a
    ``COMPACT`` vector whose other entries are inert (zero gradient, unit curvature), so a
    Newton step factors a COMPACT^2 system instead of the whole padded one. For one-hot axes the
    packed Hessian is gathered straight from the per-bin sums; the result is unpacked."""
    n_theta = sum(sizes) + 1
    keep = problem.keep
    idx = jnp.nonzero(keep, size=COMPACT, fill_value=n_theta)[0]  # n_theta: inert
    valid = idx < n_theta
    both = valid[:, None] & valid[None, :]
    inert = jnp.diag(jnp.where(valid, 0.0, 1.0))
    position = jnp.cumsum(keep) - 1

    def unpack(theta_c):
        return jnp.where(keep, theta_c[position], 0.0)

    def pack(x):
        return jnp.where(valid, jnp.append(x, 0.0)[idx], 0.0)

    def pack_matrix(m):
        padded = jnp.pad(m, ((0, 1), (0, 1)))
        return jnp.where(both, padded[idx[:, None], idx[None, :]], 0.0)

    source = _packed_hessian_index(idx, sizes)

    def value_grad_hess(theta_c):
        f, g, walked = problem.sums(unpack(theta_c))
        h = jax.lax.cond(problem.one_hot,
                         lambda w: _flat_sums(w, sizes)[source] / problem.n,
                         lambda w: pack_matrix(problem.hessian(w)), walked)
        return f, pack(g), jnp.where(both, h, inert)

    weights = pack_matrix(problem.weights) if problem.weights.ndim == 2 else pack(
        problem.weights)
    res = solve(value_grad_hess, pack(theta0 * keep), reg, weights, (), problem.scale, tol,
                maxiter)
    hessian = jnp.zeros((n_theta + 1, n_theta + 1), res.hessian.dtype).at[
        idx[:, None], idx[None, :]].set(res.hessian)[:-1, :-1]
    return res._replace(theta=unpack(res.theta),
                        hessian=hessian + jnp.diag(jnp.where(keep, 0.0, 1.0)))


def _flat_sums(walked, sizes):
    """The per-bin-pair, per-bin and total sums of one pass in one vector, then a zero."""
    total, per_bin, per_pair = walked
    pairs = [per_pair[(v, u)] for v in range(len(sizes)) for u in range(v + 1, len(sizes))]
    return jnp.concatenate([*pairs, *per_bin, total[None], jnp.zeros(1, total.dtype)])


def _packed_hessian_index(idx, sizes):
    """(len(idx), len(idx)) positions in :func:`_flat_sums` of the one-hot Hessian's entries
    between the coordinates ``idx`` (bins of the axes one after the other, then the intercept):
    a pair table between two axes, a bin's own sum on the diagonal and against the intercept,
    the total for the intercept, and the trailing zero elsewhere (two bins of one axis)."""
    n_axes = len(sizes)
    starts = np.cumsum((0, *sizes))
    axis = jnp.searchsorted(jnp.asarray(starts[1:]), idx, side="right")
    bin_ = idx - jnp.asarray(starts)[jnp.minimum(axis, n_axes)]
    ai, bi, aj, bj = axis[:, None], bin_[:, None], axis[None, :], bin_[None, :]
    pairs = [(v, u) for v in range(n_axes) for u in range(v + 1, n_axes)]
    offset = 0
    index = jnp.zeros((idx.size, idx.size), jnp.int32)
    for v, u in pairs:
        index = jnp.where((ai == v) & (aj == u), offset + bi * sizes[u] + bj, index)
        index = jnp.where((ai == u) & (aj == v), offset + bj * sizes[u] + bi, index)
        offset += sizes[v] * sizes[u]
    for v in range(n_axes):
        index = jnp.where((ai == v) & (aj == v) & (bi == bj), offset + bi, index)
        index = jnp.where((ai == v) & (aj == n_axes), offset + bi, index)
        index = jnp.where((ai == n_axes) & (aj == v), offset + bj, index)
        offset += sizes[v]
    index = jnp.where((ai == n_axes) & (aj == n_axes), offset, index)
    same_axis_off_diagonal = (ai == aj) & (ai < n_axes) & (bi != bj)
    return jnp.where(same_axis_off_diagonal, offset + 1, index)


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def _fit_full(slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, log_factorial,
              n_coef, include, strengths, maps, is_basis, rough, theta0, reg, tol, maxiter):
    """``occupancy`` and ``spikes`` are the cells' totals over folds, ``slot_*`` per fold."""
    slot_occupancy, slot_spikes = _over_folds(slot_occupancy), _over_folds(slot_spikes)
    sizes = _sizes(maps)
    n_axes, width = len(sizes), max(sizes)
    res, problem = _solve_cells(
        slots, occupancy, spikes, slot_occupancy, slot_spikes, n_chunks, n_coef, include,
        strengths, maps, is_basis, rough, theta0, reg, tol, maxiter)
    groups, keep, active, n = problem.groups, problem.keep, problem.active, problem.n
    theta = res.theta
    slot_theta = _to_slots(theta, maps)
    w = _split(slot_theta[:-1], sizes)
    # A bin's effect is drawn where its coefficient is active; a basis's at every slot.
    shown = [jnp.where(is_basis[v] & include[v], True, active[v]) for v in range(n_axes)]

    # The others' mean effect on each axis's curve, and its gradient (for the bands): per
    # axis v, G_v = mean over samples of exp(sum_{u != v} w_u), and dG_v/dc_u per
    # coefficient of u. Each axis's largest shown effect is taken out before exponentiating,
    # so an unpenalised fit whose coefficients trade off against the intercept cannot overflow.
    peak = jnp.stack([jnp.max(jnp.where(s, x, -jnp.inf)) for s, x in zip(shown, w)])
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)

    def others(v):
        wv = [jnp.zeros_like(x) if u == v else x - peak[u] for u, x in enumerate(w)]
        th = jnp.concatenate([*wv, jnp.zeros(1)])
        total, per_bin, _ = _walk(slots, occupancy, n_chunks, th, sizes, hessian=False)
        per_bin[v] = jnp.zeros_like(per_bin[v])
        return (jnp.log(total / n) + jnp.sum(peak) - peak[v],
                jnp.concatenate(_pull(per_bin, maps)) / total)

    log_gains, d_log_gain = zip(*(others(v) for v in range(n_axes)))

    # Laplace: covariance = inverse Hessian of the summed penalised negative log-likelihood,
    # restricted to the free coordinates (the active coefficients, and for Lasso/GroupLasso the
    # nonzero ones); the delta method on log(curve) = b + (B_v c_v)[s] + log G_v. Joint leaves
    # (wider than MAX_BINS) get no band.
    # The solver's last Hessian is the one at the optimum (penalty included when smooth).
    h = res.hessian
    free = keep if reg.smooth else (keep & (theta != 0)).at[-1].set(True)
    h = jnp.where(free[:, None] & free[None, :], h * n, jnp.diag(jnp.where(free, 0.0, 1.0)))
    banded = [v for v, size in enumerate(sizes) if size <= MAX_BINS]
    jacs = []
    for v in banded:
        a, b = groups[v]
        jac = jnp.zeros((sizes[v], h.shape[0])).at[:, -1].set(1.0)
        jacs.append(jac.at[:, :-1].add(d_log_gain[v][None, :]).at[:, a:b].add(maps[v]))
    jac = jnp.concatenate(jacs) * free[None, :] if jacs else jnp.zeros((0, h.shape[0]))
    if isinstance(reg, (Ridge, Smooth)):  # positive definite: var = |L^-1 j|^2, H = LL'
        root = jax.scipy.linalg.solve_triangular(jnp.linalg.cholesky(h), jac.T, lower=True)
        var = jnp.sum(root**2, axis=0)
    else:  # the shift of a leaf against the intercept can be flat: pseudo-inverse
        var = jnp.sum((jac @ jnp.linalg.pinv(h, hermitian=True)) * jac, axis=1)
    starts = np.cumsum((0, *(sizes[v] for v in banded)))
    curve_se = [jnp.full(width, jnp.nan)] * n_axes
    for i, v in enumerate(banded):
        se = jnp.where(shown[v], jnp.sqrt(jnp.maximum(var[starts[i]:starts[i + 1]], 0.0)),
                       jnp.nan)
        curve_se[v] = jnp.pad(se, (0, width - sizes[v]), constant_values=jnp.nan)

    [rate_terms] = _log_likelihood_terms(slots, [(occupancy, spikes)], n_chunks, slot_theta,
                                         sizes)
    ll = (rate_terms - log_factorial) / n
    n_spikes = jnp.sum(_split(slot_spikes, sizes)[0])
    mean_y = n_spikes / n
    ll_null = (n_spikes * jnp.log(mean_y) - n * mean_y - log_factorial) / n

    def pad(blocks, fill):
        return jnp.stack([jnp.pad(x, (0, width - x.shape[0]), constant_values=fill)
                          for x in blocks])

    return (res, pad(active, False), pad(w, 0.0), pad(shown, False), jnp.stack(log_gains), ll,
            ll_null, jnp.stack(curve_se))


def _cv_one(slots, occupancy, spikes, total_occ, total_spk, slot_occupancy, slot_spikes,
            slot_occ_total, slot_spk_total, n_chunks, n_coef, include, strengths, maps, is_basis,
            rough, theta0, reg, tol, maxiter):
    """Fit the complement of one fold and score the fold and the training cells."""
    train_occ, train_spk = total_occ - occupancy, total_spk - spikes
    sizes = _sizes(maps)
    res, problem = _solve_cells(slots, train_occ, train_spk, slot_occ_total - slot_occupancy,
                                slot_spk_total - slot_spikes, n_chunks, n_coef, include,
                                strengths, maps, is_basis, rough, theta0, reg, tol, maxiter)
    n_train = problem.n
    slot_theta = _to_slots(res.theta, maps)
    test_samples = jnp.sum(_split(slot_occupancy, sizes)[0])
    test_spikes = jnp.sum(_split(slot_spikes, sizes)[0])
    train_spikes = jnp.sum(_split(slot_spk_total, sizes)[0]) - test_spikes
    rate = train_spikes / n_train  # the training folds' mean count
    log_rate = jnp.log(jnp.maximum(rate, 1e-30))
    ll_test, ll_train = _log_likelihood_terms(
        slots, [(occupancy, spikes), (train_occ, train_spk)], n_chunks, slot_theta, sizes)
    ll_test_mean = test_spikes * log_rate - test_samples * rate
    ll_train_mean = train_spikes * log_rate - n_train * rate
    return res.theta, res.converged, ll_test, ll_test_mean, ll_train, ll_train_mean


def _cv_batch(slots, occupancy, spikes, total_occ, total_spk, slot_occupancy, slot_spikes,
              n_chunks, n_folds, n_coef, include, strengths, maps, is_basis, rough, theta0, reg,
              tol, maxiter):
    """Every fold in turn, up to the run-time ``n_folds``: a loop rather than a vmap, so that
    each fold stops at its own convergence and unused fold rows cost nothing."""
    slot_occ_total, slot_spk_total = _over_folds(slot_occupancy), _over_folds(slot_spikes)

    def one(k, out):
        result = _cv_one(slots, occupancy[k], spikes[k], total_occ, total_spk,
                         slot_occupancy[k], slot_spikes[k], slot_occ_total, slot_spk_total,
                         n_chunks, n_coef, include, strengths, maps, is_basis, rough, theta0[k],
                         reg, tol, maxiter)
        return tuple(o.at[k].set(r) for o, r in zip(out, result))

    zeros = jnp.zeros(FOLD_SLOTS, theta0.dtype)
    init = (theta0, jnp.ones(FOLD_SLOTS, bool), zeros, zeros, zeros, zeros)
    return jax.lax.fori_loop(0, n_folds, one, init)


_cross_validate = jax.jit(_cv_batch, static_argnames=("reg", "tol", "maxiter"))
