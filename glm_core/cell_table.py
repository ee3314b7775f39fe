"""The cell table: a session's occupied joint cells with their samples and spikes per fold.

With every variable one-hot encoded, the linear predictor of a sample depends only on its joint
cell (one bin per axis), so a fit needs just the occupied cells: for each, its bin on every axis,
its samples (occupancy) and its spikes. Cells are kept per cross-validation fold (``FOLD_SLOTS``
rows; unused rows are empty). Shapes stay static while the user works: every axis has a fixed
number of bin slots (``MAX_BINS``, or ``JOINT_SLOTS`` for a joint 2-D leaf whose bin is
``bx * ny + by``), and the cells live in a padded table of ``capacity`` entries (one of
``CAPACITIES``) walked in chunks of ``CHUNK`` up to the occupied count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln

from .crossval import fold_index
from .errors import InputError

MAX_BINS = 64
JOINT_MAX_BINS = 20  # bins per variable of a joint (2-D) leaf
JOINT_SLOTS = JOINT_MAX_BINS**2
MAX_VARIABLES = 8
FOLD_SLOTS = 20  # the most cross-validation folds; fewer leave rows empty
CHUNK = 1024  # cells per step of the walk over the cell table
CAPACITIES = (2**16, 2**18, 2**20)  # cell-table sizes; the smallest that fits is used


def max_bins_for(n_variables: int) -> int:
    """Bin slots per variable for a session of ``n_variables``.

    Args:
        n_variables: number of behavioural variables.

    Returns:
        ``MAX_BINS``; raises ``InputError`` above ``MAX_VARIABLES`` variables.
    """
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
    def n_chunks(self) -> jax.Array:
        """Chunks of ``CHUNK`` cells that hold the occupied cells (the walks' run-time bound)."""
        return jnp.int32(-(-self.n_cells // CHUNK))

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
    """The cell table of per-sample bin indices and spike counts.

    Args:
        indices: ``(T, n_axes)`` bin of each sample on every axis.
        counts: ``(T,)`` spike counts.
        max_bins: bin slots per variable (``max_bins_for``).
        n_folds: cross-validation folds (``crossval.fold_index``).
        sizes: bin slots per axis (default ``max_bins`` each).

    Returns:
        A :class:`BinGrid`; raises ``InputError`` on mismatched or empty input, or when the
        occupied cells exceed the largest of ``CAPACITIES``.
    """
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
