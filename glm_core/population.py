"""Every unit of a session fitted at once, on the joint cells the units share.

All units see the same behaviour, so they share the occupied joint cells and each cell's
occupancy; only the spike totals per cell differ. :func:`population_grid` totals every unit's
spikes per cell and cross-validation fold (the folds of ``cell_table``), and :func:`fit_population`
runs one jitted call (``_population_solver``): the Newton solver of ``solvers.solve`` vmapped over
units for the full fits and, for the held-out scores, over units and folds. The objective,
penalties, active bins, bases (a variable's (slots x k) matrix B from coefficients to bins, as in
``_kernels``), joint 2-D leaves and scores are those of ``binned.fit_bin_grid`` /
``binned.cross_validate_grid``.

Shapes are bucketed so that nothing recompiles while the user works: units are padded to a power
of two (at least 8), cells to a power of two (at least 256), and each axis gets its own number of
bin slots: a variable the smallest of 8, 16, 32, 64 that holds its bins, a joint leaf
``JOINT_SLOTS`` (changing a strength, the variables included, the unit count, bin counts within a
bucket or a basis reuses the compiled solver). The cell table is small, so it is walked whole,
without the chunks of ``cell_table``. A unit without spikes (or a padding unit) is swapped for a
problem solved at its start and reported as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln, xlogy

from ._grid_problem import slot_roughness
from ._population_solver import cross_validate_units, fit_units
from .cell_table import JOINT_MAX_BINS, MAX_BINS, BinGrid
from .crossval import bits_per_spike, pooled_bits_per_spike
from .errors import InputError
from .regularizers import Regularizer, get_regularizer

SLOT_BUCKETS = (8, 16, 32, 64)
MIN_CELLS = 256


def bucket(n: int, smallest: int) -> int:
    """The smallest power of two that holds ``n``, at least ``smallest``."""
    return max(smallest, 1 << int(np.ceil(np.log2(max(n, 1)))))


@dataclass(frozen=True)
class PopulationGrid:
    """Every unit's spikes on a session's occupied joint cells, per cross-validation fold.

    Device arrays are padded: ``cells`` (V, C) is each cell's bin per axis (a variable or a
    joint leaf), ``occupancy`` (K, C) fold k's samples per cell, ``spikes`` (U_pad, K, C) each
    unit's. ``sizes`` are the bin slots per axis and ``slots`` the widest. Host arrays are
    exact: ``cell_slots`` (V, n_cells), ``cell_occupancy`` (n_cells,), ``cell_spikes``
    (n_units, n_cells), ``fold_spikes`` and ``fold_log_factorial`` (n_units, K).
    """

    cells: jax.Array
    occupancy: jax.Array
    spikes: jax.Array
    slots: int
    cell_slots: np.ndarray
    cell_occupancy: np.ndarray
    cell_spikes: np.ndarray
    fold_spikes: np.ndarray
    fold_log_factorial: np.ndarray
    sizes: tuple[int, ...] = ()

    @property
    def n_units(self) -> int:
        return self.cell_spikes.shape[0]

    @property
    def n_folds(self) -> int:
        return self.fold_spikes.shape[1]

    def marginals(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples per bin of axis ``v`` (sizes[v],) and each unit's spikes (n_units,
        sizes[v])."""
        one_hot = self.cell_slots[v][:, None] == np.arange(self.sizes[v])[None, :]
        return self.cell_occupancy @ one_hot, self.cell_spikes @ one_hot


def axis_sizes(grid: BinGrid) -> tuple[int, ...]:
    """Bin slots per axis of ``grid`` in the population fit: a joint leaf keeps its
    ``JOINT_SLOTS``, a variable gets the smallest of ``SLOT_BUCKETS`` that holds its bins."""
    sizes = []
    for v, size in enumerate(grid.sizes):
        used = int(grid.cell_slots[v].max()) + 1
        if size > MAX_BINS:
            sizes.append(size)
            continue
        slots = next((s for s in SLOT_BUCKETS if s >= used), None)
        if slots is None:
            raise InputError(f"{used} bins are more than the {SLOT_BUCKETS[-1]} supported")
        sizes.append(slots)
    return tuple(sizes)


def fold_cell_totals(fold_cell: np.ndarray, n_rows: int, counts: np.ndarray) -> np.ndarray:
    """(units, n_rows): each unit's ``counts`` (samples x units) summed over the samples of each
    (fold, cell) row ``fold_cell``, one bincount per unit (no (samples, units) float copy)."""
    return np.stack([np.bincount(fold_cell, counts[:, u].astype(np.int64), n_rows)
                     for u in range(counts.shape[1])])


def population_grid(grid: BinGrid, counts: np.ndarray, min_cells: int = MIN_CELLS
                    ) -> PopulationGrid:
    """Total every unit's ``counts`` (valid samples x units, the samples of ``grid``) per cell and
    fold of ``grid``; cells are padded to a power of two of at least ``min_cells``."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != grid.sample_cell.size:
        raise InputError(f"population counts need {grid.sample_cell.size} samples x units, got "
                         f"shape {counts.shape}")
    if counts.shape[1] == 0:
        raise InputError("the session has no units")
    n_cells, n_folds = grid.n_cells, grid.n_folds
    sizes = axis_sizes(grid)
    capacity = bucket(n_cells, min_cells)
    n_pad = bucket(counts.shape[1], 8)
    fold_cell = grid.sample_fold.astype(np.int64) * n_cells + grid.sample_cell
    occupancy = np.zeros((n_folds, capacity))
    occupancy[:, :n_cells] = np.bincount(fold_cell, minlength=n_folds * n_cells).reshape(
        n_folds, n_cells)
    spikes = np.zeros((n_pad, n_folds, capacity), np.float32)
    spikes[: counts.shape[1], :, :n_cells] = fold_cell_totals(
        fold_cell, n_folds * n_cells, counts).reshape(-1, n_folds, n_cells)
    log_factorial = gammaln(np.arange(int(counts.max()) + 1) + 1.0)
    fold_log_factorial = np.stack([
        np.bincount(grid.sample_fold, log_factorial[counts[:, u].astype(np.int64)], n_folds)
        for u in range(counts.shape[1])])
    cells = np.zeros((grid.n_variables, capacity), np.int32)
    cells[:, :n_cells] = grid.cell_slots
    cell_spikes = spikes[: counts.shape[1], :, :n_cells].sum(1, dtype=float)
    return PopulationGrid(
        cells=jnp.asarray(cells), occupancy=jnp.asarray(occupancy, jnp.float32),
        spikes=jnp.asarray(spikes), slots=max(sizes), cell_slots=grid.cell_slots,
        cell_occupancy=occupancy[:, :n_cells].sum(0), cell_spikes=cell_spikes,
        fold_spikes=spikes[: counts.shape[1], :, :n_cells].sum(2, dtype=float),
        fold_log_factorial=fold_log_factorial, sizes=sizes)


@dataclass(frozen=True)
class PopulationFit:
    """Per unit (first axis, ``n_units``): the fit of every unit, its scores and tuning.

    ``weights[u, v, k]`` is unit u's coefficient k of variable v (of bin k, or of basis
    function k; zero where ``active`` is False), ``effects[u, v, s]`` its term of the log rate in
    bin s (drawn where ``shown``), ``log_others_gain[u, v]`` the log of the others' mean effect
    on variable v's curve (as ``binned.BinnedFit``). ``pseudo_r2`` is the McFadden pseudo-R2 on
    the fitted samples;
    ``test_bits_per_spike[u, k]`` the held-out score of fold k and ``test_gain[u, k]`` its
    LL_model - LL_mean in nats (both None without cross-validation; NaN for a fold whose training
    folds have no spikes), ``test_spikes[u, k]`` the fold's spikes;
    ``skaggs[u, v]`` the Skaggs information (bits/spike) of the empirical rate map of variable v.
    Units without spikes have ``has_spikes`` False and NaN scores and curves.
    """

    weights: np.ndarray
    active: np.ndarray
    effects: np.ndarray
    shown: np.ndarray
    intercept: np.ndarray
    log_others_gain: np.ndarray
    pseudo_r2: np.ndarray
    converged: np.ndarray
    has_spikes: np.ndarray
    skaggs: np.ndarray
    test_bits_per_spike: np.ndarray | None
    test_gain: np.ndarray | None
    test_spikes: np.ndarray
    theta: jax.Array
    cv_theta: jax.Array | None

    @property
    def held_out(self) -> np.ndarray:
        """Held-out bits/spike per unit pooled over its scored folds, as ``CVResult.pooled``: the
        folds' summed gains over their summed spikes (NaN where no fold is scored)."""
        if self.test_gain is None:
            raise InputError("the population was fitted without cross-validation")
        scored = np.isfinite(self.test_gain)
        return pooled_bits_per_spike(np.where(scored, self.test_gain, 0.0),
                                     np.where(scored, self.test_spikes, 0.0))

    def tuning_curves(self, v: int, n_bins: int, bin_width: float) -> np.ndarray:
        """Each unit's model rate (Hz) at the ``n_bins`` bins of variable ``v``, the other
        variables at their mean effect (as ``tuning.tuning_curves``); NaN at inactive bins and
        for units without spikes."""
        log_rate = (self.intercept[:, None] + self.effects[:, v, :n_bins]
                    + self.log_others_gain[:, v, None])
        shown = self.shown[None, v, :n_bins] & self.has_spikes[:, None]
        return np.where(shown, np.exp(np.where(shown, log_rate, 0.0)), np.nan) / bin_width

    def sorted_map(self, v: int, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
        """``(order, rows)``: units sorted by the bin of their curve's peak on variable ``v``
        (units without a curve last), and their curves in that order, each divided by its
        peak."""
        curves = self.tuning_curves(v, n_bins, 1.0)
        fitted = np.isfinite(curves).any(1)
        peak_bin = np.where(fitted, np.argmax(np.nan_to_num(curves, nan=-np.inf), 1), n_bins)
        order = np.argsort(peak_bin, kind="stable")
        peaks = np.where(fitted, np.nanmax(np.where(fitted[:, None], curves, 0.0), 1), 1.0)
        return order, (curves / peaks[:, None])[order]


def skaggs_information(occupancy: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """Skaggs et al. (1993) information, bits/spike, of occupancy-normalised rate maps:
    sum_k p_k (r_k / r) log2(r_k / r), p_k = occupancy share of bin k, r_k = spikes_k /
    occupancy_k, r = the mean rate. ``occupancy`` (bins,), ``spikes`` (..., bins); NaN for a map
    without spikes. Bin widths cancel."""
    occupancy = np.asarray(occupancy, float)
    spikes = np.asarray(spikes, float)
    visited = occupancy > 0
    p = occupancy[visited] / occupancy[visited].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rate = spikes[..., visited].sum(-1, keepdims=True) / occupancy[visited].sum()
        ratio = spikes[..., visited] / occupancy[visited] / mean_rate
        info = np.sum(p * xlogy(ratio, ratio), -1) / np.log(2)
    return np.where(mean_rate[..., 0] > 0, info, np.nan)


def leaf_design(enc) -> tuple[tuple, list, list]:
    """An explorer ``Encoding``'s design per leaf, as :func:`fit_population` takes it: bins (or
    (nx, ny) for a joint leaf), circular flags and bases (None for a joint leaf)."""
    one = [len(leaf) == 1 for leaf in enc.leaves]
    bases = enc.bases or (None,) * len(enc.binnings)
    return (enc.leaf_bins,
            [is_one and enc.circular[leaf[0]] for is_one, leaf in zip(one, enc.leaves)],
            [bases[leaf[0]] if is_one else None for is_one, leaf in zip(one, enc.leaves)])


def solver_settings(sizes, n_bins, include, strengths, circular=None, bases=None) -> tuple:
    """Check a design against the axes' bin slots ``sizes`` and turn it into the solver's run-time
    settings ``(n_coef, include, strengths, maps, is_basis, rough)`` (``_population_solver``).

    Args:
        sizes: bin slots per axis (``PopulationGrid.sizes``).
        n_bins: per axis, its bins, or (nx, ny) for a joint leaf.
        include, strengths: per axis.
        circular: per axis, whether it wraps around; None for none.
        bases: per axis, None or its (n_bins, k) basis; None for all one-hot.
    """
    n_axes = len(sizes)
    shapes = [tuple(int(m) for m in n) if np.ndim(n) else (int(n),) for n in n_bins]
    if len(shapes) != n_axes or any(
            min(shape) < 1 or int(np.prod(shape)) > size or len(shape) > 2
            or (len(shape) == 2 and max(shape) > JOINT_MAX_BINS)
            for shape, size in zip(shapes, sizes)):
        raise InputError(f"each variable needs between 1 and {min(sizes)} bins, and between 1 "
                         f"and {JOINT_MAX_BINS} per side of a 2-D map")
    if not any(include):
        raise InputError("include at least one variable in the model")
    bases = list(bases or (None,) * n_axes)
    circular = [False] * n_axes if circular is None else [bool(c) for c in circular]
    maps, n_coef, rough = [], [], []
    for basis, shape, size, wraps in zip(bases, shapes, sizes, circular):
        m = np.eye(size, dtype=np.float32)
        if basis is not None:
            m = np.zeros((size, size), np.float32)
            m[: basis.shape[0], : basis.shape[1]] = basis
        maps.append(m)
        n_coef.append(int(np.prod(shape)) if basis is None else basis.shape[1])
        rough.append(slot_roughness((n_coef[-1],) if len(shape) == 1 else shape,
                                    wraps and len(shape) == 1, size))
    return (np.asarray(n_coef, np.int32), np.asarray(include, bool),
            np.asarray(strengths, np.float32), tuple(maps),
            np.array([b is not None for b in bases]), tuple(rough))


def fit_population(
    pop: PopulationGrid,
    n_bins,
    include,
    strengths,
    regularizer: str | Regularizer = "Ridge",
    circular=None,
    cross_validate: bool = True,
    init: PopulationFit | None = None,
    tol: float = 1e-6,
    maxiter: int = 100,
    bases=None,
    on_step=None,
) -> PopulationFit:
    """Fit every unit of ``pop`` with the model of ``binned.fit_bin_grid`` (same ``n_bins`` per
    axis, (nx, ny) for a joint leaf; ``include``, ``strengths``, ``regularizer``, ``circular``,
    ``bases``; see :func:`leaf_design`) in one jitted call; with ``cross_validate`` also every
    unit's held-out bits/spike per fold (the folds of the grid), all folds of all units in one
    more. ``init``: a previous fit, for warm starts. ``on_step(steps done, steps)`` after each
    of these calls (it may raise to stop)."""
    reg = get_regularizer(regularizer)
    settings = solver_settings(pop.sizes, n_bins, include, strengths, circular, bases)
    n_vars, width = pop.cells.shape[0], pop.slots
    size = sum(pop.sizes) + 1
    n_pad = pop.spikes.shape[0]
    theta0 = jnp.zeros((n_pad, size), jnp.float32) if init is None else init.theta
    full = fit_units(pop.cells, pop.occupancy, pop.spikes, settings, theta0, reg, tol, maxiter)
    theta, converged, active, shown, effects, log_gains, ll, ll_null = jax.device_get(full)
    if on_step is not None:
        on_step(1, 2 if cross_validate else 1)
    u = pop.n_units
    has_spikes = pop.fold_spikes.sum(1) > 0
    log_factorial = pop.fold_log_factorial.sum(1)
    n = pop.cell_occupancy.sum()
    pseudo_r2 = 1.0 - (ll[:u] - log_factorial / n) / (ll_null[:u] - log_factorial / n)
    test, gain, cv_theta = None, None, None
    if cross_validate:
        # each fold starts from its last solution moved as the unit's full fit moved
        cv0 = (np.asarray(init.cv_theta) + (theta - np.asarray(init.theta))[:, None, :]
               if init is not None and init.cv_theta is not None
               else np.broadcast_to(theta[:, None], (n_pad, pop.n_folds, size)))
        out = cross_validate_units(pop.cells, pop.occupancy, pop.spikes, settings, cv0, reg,
                                   tol, maxiter)
        cv_theta = out[0]
        cv_converged, ll_test, ll_test_mean = jax.device_get(out[1:])
        if on_step is not None:
            on_step(2, 2)
        trained = pop.fold_spikes.sum(1, keepdims=True) - pop.fold_spikes > 0
        gain = np.where(trained, np.asarray(ll_test[:u], float) - ll_test_mean[:u], np.nan)
        test = bits_per_spike(gain, 0.0, pop.fold_spikes)
        converged = converged[:u] & np.all(cv_converged[:u] | ~trained, 1)
    skaggs = np.stack([skaggs_information(*pop.marginals(v)) for v in range(n_vars)], 1)
    nan = np.where(has_spikes, 1.0, np.nan)
    starts = np.cumsum((0, *pop.sizes))
    weights = np.zeros((u, n_vars, width), theta.dtype)
    for v, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
        weights[:, v, : b - a] = theta[:u, a:b]
    return PopulationFit(
        weights=weights,
        active=active,
        effects=effects[:u],
        shown=shown,
        intercept=theta[:u, -1] * nan,
        log_others_gain=log_gains[:u],
        pseudo_r2=pseudo_r2 * nan,
        converged=np.asarray(converged[:u]) & has_spikes,
        has_spikes=has_spikes,
        skaggs=skaggs,
        test_bits_per_spike=test,
        test_gain=gain,
        test_spikes=pop.fold_spikes,
        theta=full[0],
        cv_theta=cv_theta,
    )
