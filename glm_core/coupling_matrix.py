"""The population's coupling matrix: for each ordered pair of units, how much a coupling filter from
one (the driver, a column) adds to the model of the other (the target, a row).

Each target's model is its behavioural leaves (the encoding's, with the page's strengths), fitted
on the lagged engine (``glm_core.lagged_fit``) with one lag leaf: the driver's past counts through
a raised-cosine log basis (``basis.raised_cosine_log``). An entry is the pooled held-out
bits/spike of that model minus the target's model without the coupling, on the same samples (the
first window of every session dropped in both) and the same folds; and, from the full fit, the
filter's gain exp(filter) at its largest effect (below 1: the driver's spikes suppress the
target). Only the ``MAX_UNITS`` most active units are scored: n units take n (n - 1) coupled
cross-validations and fits plus n baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._lag_problem import LAG_BASIS, LAG_COLUMNS
from .basis import lagged, raised_cosine_log
from .errors import InputError
from .lagged_fit import cross_validate_lagged, fit_lagged, lag_design

MAX_UNITS = 12
COUPLING_WINDOW_S = 0.25  # s of the driver's past that acts on the target
COUPLING_BASIS = 5
COUPLING_STRENGTH = 1e-3


@dataclass(frozen=True)
class CouplingMatrix:
    """Per ordered pair of ``units``: row i the target, column j the driver (diagonal NaN).

    Attributes:
        units: the units' names, rows and columns in this order.
        held_out_gain: (n, n) pooled held-out bits/spike that the coupling from j adds to i.
        peak_gain: (n, n) gain exp(filter) of the full fit's filter at its largest |filter|.
        peak_lag_ms: (n, n) the lag of that peak, ms.
        baseline: (n,) each target's pooled held-out bits/spike without coupling.
        window_ms: the coupling window.
    """

    units: tuple
    held_out_gain: np.ndarray
    peak_gain: np.ndarray
    peak_lag_ms: np.ndarray
    baseline: np.ndarray
    window_ms: float


def most_active(session, n: int = MAX_UNITS) -> tuple[int, ...]:
    """Indices of the ``n`` units with the most spikes in the valid samples, in session order."""
    spikes = session.counts[session.valid].sum(0)
    return tuple(sorted(int(u) for u in np.argsort(-spikes, kind="stable")[:n]))


def coupling_matrix(session, enc, units, include, strengths, regularizer="Ridge", *,
                    window_s: float = COUPLING_WINDOW_S, n_basis: int = COUPLING_BASIS,
                    coupling_strength: float = COUPLING_STRENGTH,
                    on_step: Callable[[int, int], None] | None = None) -> CouplingMatrix:
    """Score every coupling between ``units`` on top of the behavioural model.

    Args:
        session: the :class:`glm_core.session.Session`.
        enc: an encoding of the session (``explorer.encode``; any unit): its behavioural leaves,
            bins and folds.
        units: indices of the units (2 to ``MAX_UNITS``, distinct; e.g. :func:`most_active`).
        include, strengths: per behavioural leaf of ``enc``.
        regularizer: a regularizer or its name (the coupling filter's penalty too).
        window_s: the coupling window, seconds (a whole number of bins, at least 2).
        n_basis: lag basis functions of the filter (at most ``LAG_BASIS``).
        coupling_strength: the filter's penalty strength.
        on_step: called as ``on_step(models done, models)`` after each; it may raise to stop.

    Returns:
        A :class:`CouplingMatrix`; InputError on bad arguments.
    """
    units = [int(u) for u in units]
    n = len(units)
    if not 2 <= n <= MAX_UNITS or len(set(units)) != n or not all(
            0 <= u < len(session.unit_names) for u in units):
        raise InputError(f"a coupling matrix takes 2 to {MAX_UNITS} different units, got {units}")
    window = int(round(window_s / session.bin_width))
    if window < 2 or window >= session.n_valid // 2:
        raise InputError(f"a coupling window of {window_s} s is {window} bins: it needs at least "
                         "2 bins and less than half the session")
    if not 1 <= n_basis <= min(LAG_BASIS, window):
        raise InputError(f"choose 1 to {min(LAG_BASIS, window)} lag basis functions")
    kernels = raised_cosine_log(int(n_basis), window)
    rows = []
    for u in units:
        block = np.zeros((session.n_valid, LAG_COLUMNS))
        block[:, :n_basis] = lagged(session.counts[:, u], kernels)[session.valid]
        rows.append(block)
    used = ~np.isnan(rows[0]).any(1)
    n_bins, circular, bases = enc.solver_settings()
    with_coupling, without = [*include, True], [*include, False]
    all_strengths = [*strengths, coupling_strength]
    gain, peak, lag_ms, baseline = (np.full((n, n), np.nan), np.full((n, n), np.nan),
                                    np.full((n, n), np.nan), np.full(n, np.nan))
    total, done = n * n, 0
    for i, target in enumerate(units):
        counts = session.counts[session.valid, target]
        grid = enc.grid.with_counts(counts)
        args = (n_bins, with_coupling, all_strengths, regularizer)
        base = None
        for j, driver in enumerate(units):
            if j == i:
                continue
            design = lag_design(grid, counts, np.nan_to_num(rows[j]), used, [kernels],
                                session.bin_width)
            if base is None:
                base = cross_validate_lagged(grid, design, n_bins, without, all_strengths,
                                             regularizer, None, circular, bases=bases)
                baseline[i] = base.pooled
                done += 1
                _step(on_step, done, total)
            fit = fit_lagged(grid, design, *args, None, circular, bases=bases)
            cv = cross_validate_lagged(grid, design, *args, fit.theta, circular, bases=bases)
            gain[i, j] = cv.pooled - base.pooled
            f = fit.filters[0]
            top = int(np.argmax(np.abs(f.log_gain)))
            peak[i, j], lag_ms[i, j] = np.exp(f.log_gain[top]), f.lags_ms[top]
            done += 1
            _step(on_step, done, total)
    return CouplingMatrix(tuple(session.unit_names[u] for u in units), gain, peak, lag_ms,
                          baseline, 1e3 * window * session.bin_width)


def _step(on_step, done, total):
    if on_step is not None:
        on_step(done, total)
