"""Every unit of a session fitted at once, on the joint cells the units share.

All units see the same behaviour, so they share the occupied joint cells and each cell's
occupancy; only the spike totals per cell differ. :func:`population_grid` totals every unit's
spikes per cell and cross-validation fold (the folds of ``cell_table``), and :func:`fit_population`
runs one jitted call: the Newton solver of ``solvers.solve`` vmapped over units for the full fits
and, for the held-out scores, over units and folds. The objective, penalties, active bins, bases
(a variable's (slots x k) matrix B from coefficients to bins, as in ``_kernels``) and scores are
those of ``binned.fit_bin_grid`` / ``binned.cross_validate_grid``.

Shapes are bucketed so that nothing recompiles while the user works: units are padded to a power
of two (at least 8), cells to a power of two (at least 256), and each variable gets ``slots`` bin
slots, the smallest of 8, 16, 32, 64 that holds its bins (changing a strength, the variables
included, the unit count, bin counts within a bucket or a basis reuses the compiled solver). The
cell table is small, so it is walked whole, without the chunks of ``cell_table``. A unit without
spikes (or a padding unit) is swapped for a problem solved at its start and reported as NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import gammaln, xlogy

from ._kernels import hessian_blocks, pull, pull_hessian, runtime_roughness, to_slots
from .cell_table import BinGrid
from .crossval import bits_per_spike, pooled_bits_per_spike
from .errors import InputError
from .regularizers import SMOOTH_RIDGE, GroupLasso, Regularizer, Smooth, get_regularizer
from .solvers import solve

SLOT_BUCKETS = (8, 16, 32, 64)
MIN_CELLS = 256


def _bucket(n: int, smallest: int) -> int:
    return max(smallest, 1 << int(np.ceil(np.log2(max(n, 1)))))


@dataclass(frozen=True)
class PopulationGrid:
    """Every unit's spikes on a session's occupied joint cells, per cross-validation fold.

    Device arrays are padded: ``cells`` (V, C) is each cell's bin per variable, ``occupancy``
    (K, C) fold k's samples per cell, ``spikes`` (U_pad, K, C) each unit's. Host arrays are
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

    @property
    def n_units(self) -> int:
        return self.cell_spikes.shape[0]

    @property
    def n_folds(self) -> int:
        return self.fold_spikes.shape[1]

    def marginals(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples per bin of variable ``v`` (slots,) and each unit's spikes (n_units, slots)."""
        one_hot = self.cell_slots[v][:, None] == np.arange(self.slots)[None, :]
        return self.cell_occupancy @ one_hot, self.cell_spikes @ one_hot


def population_grid(grid: BinGrid, counts: np.ndarray) -> PopulationGrid:
    """Total every unit's ``counts`` (valid samples x units, the samples of ``grid``) per cell and
    fold of ``grid``."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != grid.sample_cell.size:
        raise InputError(f"population counts need {grid.sample_cell.size} samples x units, got "
                         f"shape {counts.shape}")
    if counts.shape[1] == 0:
        raise InputError("the session has no units")
    n_cells, n_folds = grid.n_cells, grid.n_folds
    used_bins = int(grid.cell_slots.max()) + 1
    slots = next((s for s in SLOT_BUCKETS if s >= used_bins), None)
    if slots is None:
        raise InputError(f"{used_bins} bins are more than the {SLOT_BUCKETS[-1]} supported")
    capacity = _bucket(n_cells, MIN_CELLS)
    n_pad = _bucket(counts.shape[1], 8)
    fold_cell = grid.sample_fold.astype(np.int64) * n_cells + grid.sample_cell
    occupancy = np.zeros((n_folds, capacity))
    occupancy[:, :n_cells] = np.bincount(fold_cell, minlength=n_folds * n_cells).reshape(
        n_folds, n_cells)
    spikes = np.zeros((n_pad, n_folds, capacity), np.float32)
    fold_log_factorial = np.zeros((counts.shape[1], n_folds))
    log_factorial = gammaln(np.arange(int(counts.max()) + 1) + 1.0)
    for u in range(counts.shape[1]):  # one bincount per unit: no (T, units) float copy
        y = counts[:, u].astype(np.int64)
        spikes[u, :, :n_cells] = np.bincount(fold_cell, y, n_folds * n_cells).reshape(
            n_folds, n_cells)
        fold_log_factorial[u] = np.bincount(grid.sample_fold, log_factorial[y], n_folds)
    cells = np.zeros((grid.n_variables, capacity), np.int32)
    cells[:, :n_cells] = grid.cell_slots
    cell_spikes = spikes[: counts.shape[1], :, :n_cells].sum(1, dtype=float)
    return PopulationGrid(
        cells=jnp.asarray(cells), occupancy=jnp.asarray(occupancy, jnp.float32),
        spikes=jnp.asarray(spikes), slots=slots, cell_slots=grid.cell_slots,
        cell_occupancy=occupancy[:, :n_cells].sum(0), cell_spikes=cell_spikes,
        fold_spikes=spikes[: counts.shape[1], :, :n_cells].sum(2, dtype=float),
        fold_log_factorial=fold_log_factorial)


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
    """Fit every unit of ``pop`` with the model of ``binned.fit_bin_grid`` (same ``n_bins``,
    ``include``, ``strengths``, ``regularizer``, ``circular``, ``bases``) in one jitted call;
    with ``cross_validate`` also every unit's held-out bits/spike per fold (the folds of the
    grid), all folds of all units in one more. ``init``: a previous fit, for warm starts.
    ``on_step(steps done, steps)`` after each of these calls (it may raise to stop)."""
    reg = get_regularizer(regularizer)
    n_vars, slots = pop.cells.shape[0], pop.slots
    n_bins = np.asarray(n_bins, np.int32)
    if n_bins.shape != (n_vars,) or np.any(n_bins < 1) or np.any(n_bins > slots):
        raise InputError(f"each variable needs between 1 and {slots} bins")
    if not any(include):
        raise InputError("include at least one variable in the model")
    maps = np.tile(np.eye(slots, dtype=np.float32), (n_vars, 1, 1))
    n_coef = n_bins.copy()
    for v, basis in enumerate(bases or ()):
        if basis is not None:
            maps[v] = 0.0
            maps[v, : basis.shape[0], : basis.shape[1]] = basis
            n_coef[v] = basis.shape[1]
    is_basis = np.array([b is not None for b in bases or (None,) * n_vars])
    settings = (jnp.asarray(n_coef), jnp.asarray(include, bool),
                jnp.asarray(strengths, jnp.float32),
                jnp.zeros(n_vars, bool) if circular is None else jnp.asarray(circular, bool),
                jnp.asarray(maps), jnp.asarray(is_basis))
    size = n_vars * slots + 1
    n_pad = pop.spikes.shape[0]
    theta0 = jnp.zeros((n_pad, size), jnp.float32) if init is None else init.theta
    full = _fit_units(pop.cells, pop.occupancy, pop.spikes, *settings, theta0, reg, tol, maxiter)
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
        out = _cross_validate_units(pop.cells, pop.occupancy, pop.spikes, *settings, cv0, reg,
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
    return PopulationFit(
        weights=theta[:u, :-1].reshape(u, n_vars, slots),
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


# --- the jitted solver --------------------------------------------------------------------------


def _log_mean_exp_others(cells, occupancy, w, active):
    """Per variable v, log of the occupancy-weighted mean of exp(sum of the other variables'
    coefficients), each variable's largest active coefficient taken out before exponentiating
    (no overflow without a penalty), as ``binned``'s curves."""
    n_vars = cells.shape[0]
    peak = jnp.max(jnp.where(active, w, -jnp.inf), axis=1)
    peak = jnp.where(jnp.isfinite(peak), peak, 0.0)
    effects = jnp.stack([(w[v] - peak[v])[cells[v]] for v in range(n_vars)])  # (V, C)
    n = jnp.sum(occupancy)
    gains = []
    for v in range(n_vars):
        others = jnp.sum(effects, 0) - effects[v]
        gains.append(jnp.log(jnp.sum(occupancy * jnp.exp(others)) / n) + jnp.sum(peak) - peak[v])
    return jnp.stack(gains)


def _pull_stacked(per_slot, maps):
    """``_kernels.pull`` on (V, slots) sums and (V, slots, k) maps, stacked back to (V, k)."""
    return jnp.stack(pull(per_slot, maps))


def _problem(cells, occupancy, spikes, n_coef, include, strengths, circular, maps, is_basis,
             reg, slots):
    """Value, gradient/Hessian, penalty weights, groups, scale, kept coordinates and active
    coefficients of one unit's training cells (``_grid_problem.cell_problem`` on a whole, small cell
    table)."""
    n_vars = cells.shape[0]
    one_hot = [jax.nn.one_hot(cells[v], slots, dtype=occupancy.dtype) for v in range(n_vars)]
    pairs = [(v, u) for v in range(n_vars) for u in range(v + 1, n_vars)]
    pair_index = {(v, u): cells[v] * slots + cells[u] for v, u in pairs}
    diagonal = ~jnp.any(is_basis & include)
    n = jnp.maximum(jnp.sum(occupancy), 1.0)
    counts = _pull_stacked(jnp.stack([occupancy @ e for e in one_hot]), maps)
    in_range = include[:, None] & (jnp.arange(slots)[None, :] < n_coef[:, None])
    active = in_range if isinstance(reg, Smooth) else in_range & (counts > 0)
    keep = jnp.concatenate([active.ravel(), jnp.ones(1, bool)])
    spike_totals = jnp.concatenate([_pull_stacked(jnp.stack([spikes @ e for e in one_hot]),
                                                  maps).ravel(),
                                    jnp.sum(spikes)[None]])

    def expected(theta):
        theta = to_slots(theta, maps)
        w = theta[:-1].reshape(n_vars, slots)
        eta = theta[-1] + sum(w[v][cells[v]] for v in range(n_vars))
        return jnp.where(occupancy > 0, occupancy * jnp.exp(eta), 0.0)

    def value_grad_hess(theta):
        mu = expected(theta)
        per_bin = jnp.stack([mu @ e for e in one_hot])
        total = jnp.sum(mu)
        g = (jnp.concatenate([_pull_stacked(per_bin, maps).ravel(), total[None]])
             - spike_totals) / n
        per_pair = {(v, u): jax.ops.segment_sum(mu, pair_index[(v, u)], slots * slots)
                    for v in range(n_vars) for u in range(v + 1, n_vars)}
        h = hessian_blocks(total, per_bin, per_pair, (slots,) * n_vars) / n
        h = jax.lax.cond(diagonal, lambda a: a, lambda a: pull_hessian(a, maps), h)
        g = g * keep
        h = jnp.where(keep[:, None] & keep[None, :], h, jnp.diag(jnp.where(keep, 0.0, 1.0)))
        return (total - spike_totals @ theta) / n, g, h

    if isinstance(reg, GroupLasso):
        weights = strengths * jnp.sqrt(n_coef.astype(strengths.dtype))
    elif isinstance(reg, Smooth):
        blocks = [jnp.where(active[v][:, None] & active[v][None, :], strengths[v] * (
            runtime_roughness(n_coef[v], circular[v], slots) + SMOOTH_RIDGE * jnp.eye(slots)), 0.0)
            for v in range(n_vars)]
        weights = jax.scipy.linalg.block_diag(*blocks, jnp.zeros((1, 1)))
    else:
        weights = jnp.concatenate([jnp.where(active, strengths[:, None], 0.0).ravel(),
                                   jnp.zeros(1, strengths.dtype)])
    groups = tuple((v * slots, (v + 1) * slots) for v in range(n_vars))
    scale = jnp.maximum(jnp.sum(spikes) / n, 1e-6)
    return value_grad_hess, weights, groups, scale, keep, active, diagonal


def _log_likelihood_terms(cells, occupancy, spikes, theta, slots):
    """sum over cells of spikes * eta - occupancy * exp(eta) (log y! left out; ``theta`` holds
    per-bin effects)."""
    n_vars = cells.shape[0]
    w = theta[:-1].reshape(n_vars, slots)
    eta = theta[-1] + sum(w[v][cells[v]] for v in range(n_vars))
    return jnp.sum(jnp.where(occupancy > 0, spikes * eta - occupancy * jnp.exp(eta), 0.0))


def _solve_unit(cells, occupancy, spikes, n_coef, include, strengths, circular, maps, is_basis,
                theta0, reg, tol, maxiter):
    """One training set; without spikes it is swapped for a rate of one per sample, whose
    optimum, zero, is the start (reported as NaN by the caller)."""
    slots = (theta0.shape[0] - 1) // cells.shape[0]
    empty = jnp.sum(spikes) <= 0
    spikes = jnp.where(empty, occupancy, spikes)
    theta0 = jnp.where(empty, 0.0, theta0)
    value_grad_hess, weights, groups, scale, keep, active, diagonal = _problem(
        cells, occupancy, spikes, n_coef, include, strengths, circular, maps, is_basis, reg,
        slots)
    res = solve(value_grad_hess, theta0 * keep, reg, weights, groups, scale, tol, maxiter,
                diagonal_blocks=diagonal)
    return res, active, slots


def _sum_folds(rows):
    return jnp.ones(rows.shape[-2], rows.dtype) @ rows


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def _fit_units(cells, occupancy, spikes, n_coef, include, strengths, circular, maps, is_basis,
               theta0, reg, tol, maxiter):
    occupancy = _sum_folds(occupancy)

    def one(spk, th0):
        spk = _sum_folds(spk)
        res, active, slots = _solve_unit(cells, occupancy, spk, n_coef, include, strengths,
                                         circular, maps, is_basis, th0, reg, tol, maxiter)
        slot_theta = to_slots(res.theta, maps)
        w = slot_theta[:-1].reshape(cells.shape[0], slots)
        # a bin's effect is drawn where its coefficient is active; a basis's at every bin
        shown = jnp.where((is_basis & include)[:, None], True, active)
        log_gains = _log_mean_exp_others(cells, occupancy, w, shown)
        n = jnp.sum(occupancy)
        ll = _log_likelihood_terms(cells, occupancy, spk, slot_theta, slots) / n
        mean_y = jnp.sum(spk) / n
        ll_null = (jnp.sum(spk) * jnp.log(mean_y) - n * mean_y) / n
        return res.theta, res.converged, active, shown, w, log_gains, ll, ll_null

    theta, converged, active, shown, w, log_gains, ll, ll_null = jax.vmap(one)(spikes, theta0)
    return theta, converged, active[0], shown[0], w, log_gains, ll, ll_null


@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))
def _cross_validate_units(cells, occupancy, spikes, n_coef, include, strengths, circular, maps,
                          is_basis, theta0, reg, tol, maxiter):
    """Every (unit, fold): fit the other folds, score the fold (``_grid_fit``'s fold kernel)."""
    total_occ = _sum_folds(occupancy)

    def one(occ, spk, total_spk, th0):
        train_occ, train_spk = total_occ - occ, total_spk - spk
        res, _, slots = _solve_unit(cells, train_occ, train_spk, n_coef, include, strengths,
                                    circular, maps, is_basis, th0, reg, tol, maxiter)
        rate = jnp.sum(train_spk) / jnp.maximum(jnp.sum(train_occ), 1.0)
        log_rate = jnp.log(jnp.maximum(rate, 1e-30))
        ll_test = _log_likelihood_terms(cells, occ, spk, to_slots(res.theta, maps), slots)
        ll_test_mean = jnp.sum(spk) * log_rate - jnp.sum(occ) * rate
        return res.theta, res.converged, ll_test, ll_test_mean

    def unit(spk, th0):
        return jax.vmap(one, (0, 0, None, 0))(occupancy, spk, _sum_folds(spk), th0)

    return jax.vmap(unit)(spikes, theta0)
