"""Each unit's significance: its held-out score against a null of circularly time-shifted spikes.

Shifting a unit's spike train in time, circularly over the session, against the behaviour keeps
its rate and its firing's own time structure but breaks its relation to the behaviour. The
statistic is the model's pooled held-out bits/spike at the current settings (the population
table's score). The behaviour does not move, so the cell table and its occupancy stay as they
are: a shifted train is only another spike total per cell and fold, i.e. one more "unit" for the
population solver, and shuffles x units are fitted in batches of ``fit_population``. The cells
are first merged over the variables left out of the model (their coefficients are zero), which
leaves few cells for a 1-D model.

p = (1 + #(null >= observed)) / (1 + shuffles); z = (observed - mean(null)) / sd(null).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import block_diag

from ._population_solver import sum_folds
from .cell_table import BinGrid, bin_grid
from .crossval import pooled_bits_per_spike
from .errors import InputError
from .population import (
    PopulationGrid,
    bucket,
    fit_population,
    population_grid,
    solver_settings,
)
from .regularizers import SMOOTH_RIDGE, Regularizer, Smooth, UnRegularized, get_regularizer
from .solvers import solve

MIN_SHIFT_S = 20.0  # the shortest shift: a unit's own firing is not correlated over longer
N_SHUFFLES = 200
BATCH = 256  # shifted trains fitted per call on the dense design (at most)
SOLVER_BATCH = 32  # and by the population solver (its problems are larger)
SHUFFLE_MIN_CELLS = 64  # cells of the merged table are padded to a power of two from here
DENSE_MAX = 2**22  # cells x coefficients^2 of the largest model fitted on its dense design
COLUMNS = 8  # the dense design's columns are padded to a multiple of this
SUMS = 16  # and its Hessian's summed entries to a power of two from this


@dataclass(frozen=True)
class Significance:
    """Per unit (first axis): the observed held-out bits/spike, the null of the shifted trains
    (units x shuffles), and the shifts in seconds. NaN for units without a score."""

    observed: np.ndarray
    null: np.ndarray
    shifts_s: np.ndarray

    @property
    def p_value(self) -> np.ndarray:
        """(1 + shuffles scoring at least the observed) / (1 + shuffles); NaN without a score."""
        scored = np.isfinite(self.observed)
        above = np.sum(np.nan_to_num(self.null, nan=-np.inf) >= self.observed[:, None], 1)
        return np.where(scored, (1.0 + above) / (1.0 + self.null.shape[1]), np.nan)

    @property
    def z_score(self) -> np.ndarray:
        """(observed - mean of the null) / its standard deviation; NaN without a score."""
        scored = np.isfinite(self.null)
        n = np.maximum(scored.sum(1), 1)
        mean = np.where(scored, self.null, 0.0).sum(1) / n
        sd = np.sqrt(np.where(scored, self.null - mean[:, None], 0.0) ** 2 @ np.ones(
            self.null.shape[1]) / n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(scored.any(1), (self.observed - mean) / sd, np.nan)


def shift_samples(n_samples: int, bin_width: float, n_shuffles: int = N_SHUFFLES,
                  min_shift_s: float = MIN_SHIFT_S, seed: int = 0, shifts_s=None) -> np.ndarray:
    """Shifts in samples: ``shifts_s`` (seconds) if given, else ``n_shuffles`` drawn uniformly
    between ``min_shift_s`` and the session's length minus ``min_shift_s`` (seeded).
    InputError for a session too short for them or a shift outside that range."""
    length = n_samples * bin_width
    low, high = float(min_shift_s), length - float(min_shift_s)
    if high < low:
        raise InputError(f"shuffles shift the spikes by at least {min_shift_s:g} s each way "
                         f"round, but the session lasts {length:.1f} s: it is too short for a "
                         "shuffle test")
    if shifts_s is None:
        if int(n_shuffles) < 1:
            raise InputError("run at least one shuffle")
        shifts_s = np.random.default_rng(seed).uniform(low, high, int(n_shuffles))
    shifts_s = np.asarray(shifts_s, float)
    if np.any(shifts_s < low - 1e-9) or np.any(shifts_s > high + 1e-9):
        raise InputError(f"a shift must be between {low:g} s and {high:.1f} s (the session "
                         f"lasts {length:.1f} s; shifts stay {min_shift_s:g} s from either end)")
    return np.rint(shifts_s / bin_width).astype(np.int64)


def merged_grid(grid: BinGrid, include, counts: np.ndarray) -> BinGrid:
    """``grid`` with its cells merged over the axes left out of the model (``include`` False),
    which keep one bin: the same folds and, for the included axes, the same bins."""
    kept = np.asarray(include, bool)
    indices = np.where(kept[:, None], grid.cell_slots, 0)[:, grid.sample_cell].T
    return bin_grid(indices, counts, grid.max_bins, grid.n_folds, grid.sizes)


def shuffle_significance(grid: BinGrid, counts: np.ndarray, valid: np.ndarray,
                         bin_width: float, n_bins, include, strengths,
                         regularizer: str | Regularizer = "Ridge", circular=None, bases=None,
                         n_shuffles: int = N_SHUFFLES, min_shift_s: float = MIN_SHIFT_S,
                         seed: int = 0, shifts_s=None, on_step=None) -> Significance:
    """Every unit's held-out score and its null of circular time shifts.

    Args:
        grid: the encoding's cell table (``Encoding.grid``: the valid samples, their folds).
        counts: (samples, units) spike counts of the whole session, valid or not: a shift
            moves them along the session's time bins.
        valid: (samples,) the samples in ``grid``.
        bin_width: seconds per sample.
        n_bins, include, strengths, regularizer, circular, bases: the model, as
            ``population.fit_population`` takes it (``population.leaf_design``).
        n_shuffles, min_shift_s, seed, shifts_s: the shifts (:func:`shift_samples`).
        on_step: called as ``on_step(shuffles done, shuffles)`` after each batch; it may raise
            to stop.

    Returns:
        A :class:`Significance`.
    """
    counts = np.asarray(counts)
    valid = np.asarray(valid, bool)
    if counts.ndim != 2 or counts.shape[0] != valid.size or valid.sum() != grid.sample_cell.size:
        raise InputError("the counts and valid samples do not match the cell table")
    shifts = shift_samples(counts.shape[0], bin_width, n_shuffles, min_shift_s, seed, shifts_s)
    n_units = counts.shape[1]
    merged = merged_grid(grid, include, counts[valid, 0])
    # the left-out axes keep one bin there, and no basis
    n_bins = [n if keep else 1 for n, keep in zip(n_bins, include)]
    bases = [b if keep else None for b, keep in zip(bases or [None] * len(n_bins), include)]
    reg = get_regularizer(regularizer)
    pop = population_grid(merged, counts[valid], SHUFFLE_MIN_CELLS)
    design = dense_design(pop, n_bins, include, strengths, reg, circular, bases)
    # shifts per batch, every unit once per shift; the solver's batches are smaller, so that
    # the progress moves
    per_batch = max(1, (BATCH if design is not None else SOLVER_BATCH) // n_units)
    plan = np.concatenate([[0], shifts])  # shift 0: the observed score, fitted the same way
    plan = np.concatenate([plan, np.full(-plan.size % per_batch, plan[-1])])
    row = np.full(counts.shape[0], -1, np.int64)  # each sample's (fold, cell) row, -1: invalid
    row[valid] = merged.sample_fold.astype(np.int64) * merged.n_cells + merged.sample_cell
    spiking = np.nonzero(counts)
    scores, fit = [], None
    for start in range(0, plan.size, per_batch):
        batch = plan[start:start + per_batch]
        pop = _with_spikes(pop, row, (*spiking, counts[spiking]), batch, n_units)
        if design is None:  # a large model (a 2-D map) or Lasso / GroupLasso: the solver's
            fit = fit_population(pop, n_bins, include, strengths, reg, circular,
                                 init=fit, bases=bases)
            held_out = fit.held_out
        else:
            held_out = dense_held_out(pop, design)
        scores.append(held_out.reshape(len(batch), n_units))
        if on_step is not None:
            on_step(min(start + per_batch - 1, shifts.size), shifts.size)
    scores = np.concatenate(scores)[: shifts.size + 1]
    return Significance(observed=scores[0], null=scores[1:].T,
                        shifts_s=shifts * float(bin_width))


def _with_spikes(pop: PopulationGrid, row, spiking, shifts, n_units) -> PopulationGrid:
    """``pop`` with the spikes of the ``n_units`` units shifted by each of ``shifts`` (samples),
    one unit per (shift, unit) in that order, totalled per fold and cell in one bincount over
    the session's nonzero counts ``spiking`` (samples, units, counts); ``row`` is each sample's
    (fold, cell) row of ``pop``, -1 where it is not valid. A count at sample t moves to t +
    shift."""
    times, units, values = spiking
    n_rows = pop.occupancy.shape[0] * pop.cell_slots.shape[1]
    n_trains = len(shifts) * n_units
    rows = row[(times[None, :] + np.asarray(shifts)[:, None]) % row.size]  # (shifts, nonzero)
    train = np.arange(len(shifts))[:, None] * n_units + units[None, :]
    landed = rows >= 0
    totals = np.bincount((train * n_rows + rows)[landed], np.broadcast_to(
        values, rows.shape)[landed].astype(float), n_trains * n_rows)
    totals = totals.reshape(n_trains, pop.occupancy.shape[0], -1)
    spikes = np.zeros((bucket(n_trains, 8), *pop.spikes.shape[1:]), np.float32)
    spikes[:n_trains, :, : totals.shape[2]] = totals
    return replace(pop, spikes=jnp.asarray(spikes), fold_spikes=totals.sum(2),
                   cell_spikes=totals.sum(1),
                   fold_log_factorial=np.zeros((n_trains, totals.shape[1])))  # unused here


def dense_design(pop: PopulationGrid, n_bins, include, strengths, reg, circular=None,
                 bases=None):
    """The model on ``pop``'s cells as a dense design, for :func:`dense_held_out`: ``(X, W,
    keep, sums, entry)`` with X (cells, P) the intercept then the included axes'
    coefficients (each cell's bin through the axis's map), W (P, P) the penalty 0.5 theta' W
    theta, keep (folds, P) each fold's free coefficients (``_population_solver``'s active ones:
    for Smooth every one in range, else those with training samples), and the Hessian's
    distinct entries: the entry (i, j) of X' diag(mu) X is mu @ (x_i * x_j), for one-hot axes
    the mu of one cell (a pair of bins of a merged table), a bin's sum or the total. ``sums``
    (cells, S) holds the distinct columns x_i * x_j that are not one cell's indicator, the last
    one zero, and ``entry`` (P, P) the position of each entry in [mu, mu @ sums], so that the
    Hessian costs cells x S, S a few dozen, instead of cells x P^2. None where the model is
    too large (``DENSE_MAX``) or its penalty is not smooth."""
    if not reg.smooth:
        return None
    n_coef, include, strengths, maps, _, rough = solver_settings(
        pop.sizes, n_bins, include, strengths, circular, bases)
    n_cells = pop.cell_slots.shape[1]
    columns, blocks = [np.ones((n_cells, 1), np.float32)], [np.zeros((1, 1))]
    for v in np.flatnonzero(include):
        k = int(n_coef[v])
        columns.append(maps[v][pop.cell_slots[v], :k])
        if isinstance(reg, Smooth):
            blocks.append(strengths[v] * (rough[v][:k, :k] + SMOOTH_RIDGE * np.eye(k)))
        else:
            blocks.append(np.eye(k) * (0.0 if isinstance(reg, UnRegularized) else strengths[v]))
    used = sum(c.shape[1] for c in columns)
    n_cols, capacity = -(-used // COLUMNS) * COLUMNS, pop.cells.shape[1]
    if capacity * n_cols**2 > DENSE_MAX:
        return None
    x = np.zeros((capacity, n_cols), np.float32)
    x[:n_cells, :used] = np.hstack(columns)
    w = np.zeros((n_cols, n_cols), np.float32)
    w[:used, :used] = block_diag(*blocks)
    occupancy = np.asarray(pop.occupancy, float)
    trained = (occupancy.sum(0) - occupancy) @ np.abs(x) > 0
    keep = (np.arange(n_cols) < used) & (trained | isinstance(reg, Smooth))
    keep[:, 0] = True
    return (x, w, keep, *_distinct_products(x[:n_cells, :used], capacity, n_cols))


def _distinct_products(x, capacity, n_cols):
    """``(sums, entry)`` of :func:`dense_design` for the used columns ``x`` (cells, used),
    padded to ``capacity`` cells, ``n_cols`` columns and a power of two of sums."""
    i, j = np.triu_indices(x.shape[1])
    distinct, inverse = np.unique((x[:, i] * x[:, j]).T, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    nonzero = distinct != 0
    single = (nonzero.sum(1) == 1) & (distinct.sum(1) == 1)  # the indicator of one cell
    summed = np.flatnonzero(~single & nonzero.any(1))
    sums = np.zeros((capacity, bucket(summed.size + 1, SUMS)), np.float32)
    sums[: x.shape[0], : summed.size] = distinct[summed].T
    position = np.full(len(distinct), capacity + sums.shape[1] - 1)  # the zero sum
    position[single] = np.argmax(nonzero[single], 1)
    position[summed] = capacity + np.arange(summed.size)
    entry = np.full((n_cols, n_cols), capacity + sums.shape[1] - 1, np.int32)
    entry[i, j] = position[inverse]
    entry[j, i] = position[inverse]
    return sums, entry


def dense_held_out(pop: PopulationGrid, design) -> np.ndarray:
    """Every unit's pooled held-out bits/spike on ``pop``'s folds, fitted on a
    :func:`dense_design`: the scores of ``fit_population``, without its full fits. Each fold
    starts at its training mean rate, each indicator column at its log ratio of spikes to
    expected (a shifted train's optimum is near it; a warm start from another shift's optimum
    is not, and the batch waits for its slowest problem)."""
    ll_test, ll_test_mean = jax.device_get(_dense_cross_validate(
        *design, pop.occupancy, pop.spikes))
    u = pop.n_units
    trained = pop.fold_spikes.sum(1, keepdims=True) - pop.fold_spikes > 0
    gain = np.where(trained, np.asarray(ll_test[:u], float) - ll_test_mean[:u], np.nan)
    scored = np.isfinite(gain)
    return pooled_bits_per_spike(np.where(scored, gain, 0.0),
                                 np.where(scored, pop.fold_spikes, 0.0))


@partial(jax.jit, static_argnames=("tol", "maxiter"))
def _dense_cross_validate(x, w, keep, sums, entry, occupancy, spikes, tol=1e-6,
                          maxiter=100):
    """Every (unit, fold): fit the other folds on the dense design (:func:`dense_design`) from
    the training mean rate and the bins' log ratios, score the fold: the held-out
    log-likelihood terms of the model and of that mean rate."""
    total_occ = sum_folds(occupancy)
    indicator = jnp.all((x == 0) | (x == 1), 0)

    def one(occ, spk, total_spk, kp):
        train_occ, train_spk = total_occ - occ, total_spk - spk
        rate = jnp.sum(train_spk) / jnp.maximum(jnp.sum(train_occ), 1.0)
        # without spikes (a padding train) the problem is swapped for a rate of one per sample,
        # whose optimum, zero, is the start (NaN later)
        empty = jnp.sum(train_spk) <= 0
        train_spk = jnp.where(empty, train_occ, train_spk)
        n = jnp.maximum(jnp.sum(train_occ), 1.0)
        y = x.T @ train_spk
        both = kp[:, None] & kp[None, :]
        inert = jnp.diag(jnp.where(kp, 0.0, 1.0))

        def value_grad_hess(theta):
            mu = jnp.where(train_occ > 0, train_occ * jnp.exp(x @ theta), 0.0)
            h = jnp.concatenate([mu, mu @ sums])[entry] / n
            return ((jnp.sum(mu) - y @ theta) / n, (x.T @ mu - y) / n * kp,
                    jnp.where(both, h, inert))

        log_rate = jnp.log(jnp.maximum(rate, 1e-30))
        # an indicator column starts at its log ratio of spikes to those of the mean rate,
        # one spike added to each (a Newton step from the flat start overshoots by far)
        expected = x.T @ (train_occ * rate)
        theta0 = jnp.where(indicator & kp, jnp.log((y + 1.0) / (expected + 1.0)), 0.0)
        theta0 = jnp.where(empty, 0.0, theta0.at[0].set(log_rate))
        scale = jnp.maximum(jnp.sum(train_spk) / n, 1e-6)
        res = solve(value_grad_hess, theta0, Smooth(), jnp.where(both, w, 0.0), (), scale,
                    tol, maxiter)
        eta = x @ res.theta
        ll_test = jnp.sum(jnp.where(occ > 0, spk * eta - occ * jnp.exp(eta), 0.0))
        return ll_test, jnp.sum(spk) * log_rate - jnp.sum(occ) * rate

    def unit(spk):
        return jax.vmap(one, (0, 0, None, 0))(occupancy, spk, sum_folds(spk), keep)

    return jax.vmap(unit)(spikes)
