"""The population's coupling matrix: for each ordered pair of units, how much a coupling filter from
one (the driver, a column) adds to the model of the other (the target, a row).

Each target's model is its behavioural leaves (the encoding's, with the page's strengths) plus
one lagged leaf, the driver's past counts (``lag_leaves.LagLeaf("coupling", driver)``), fitted by
the explorer's own calls (``explorer.fit``, ``explorer.cross_validate_encoding``, which run the
lagged engine). An entry is the pooled held-out bits/spike of that model minus the target's model
without the coupling, on the same samples (the first window of the session dropped in both) and
the same folds; and, from the full fit, the filter's gain exp(filter) at its largest effect (below
1: the driver's spikes suppress the target). Only the ``MAX_UNITS`` most active units are scored:
n units take n (n - 1) coupled fits and cross-validations plus n baselines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import explorer
from .errors import InputError
from .lag_leaves import LagLeaf, with_lags

MAX_UNITS = 12
COUPLING_WINDOW_S = 0.25  # s of the driver's past that acts on the target (in whole bins)
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
        enc: an encoding of the session (``explorer.encode``; any unit; its lagged leaves, if
            any, are left out): its behavioural leaves, bins and folds.
        units: indices of the units (2 to ``MAX_UNITS``, distinct; e.g. :func:`most_active`).
        include, strengths: per behavioural leaf of ``enc``.
        regularizer: a regularizer or its name (the coupling filter's penalty too).
        window_s: the coupling window, seconds, rounded to whole bins.
        n_basis: lag basis functions of the filter.
        coupling_strength: the filter's penalty strength.
        on_step: called as ``on_step(models done, models)`` after each; it may raise to stop.

    Returns:
        A :class:`CouplingMatrix`; InputError on bad arguments.
    """
    units = [int(u) for u in units]
    n = len(units)
    if n < 2 and len(session.unit_names) < 2:
        raise InputError("a coupling matrix needs at least two units, and this data set has one")
    if not 2 <= n <= MAX_UNITS or len(set(units)) != n or not all(
            0 <= u < len(session.unit_names) for u in units):
        raise InputError(f"a coupling matrix takes 2 to {MAX_UNITS} different units, got {units}")
    n_leaves = len(enc.behaviour_leaves)
    if len(include) != n_leaves or len(strengths) != n_leaves:
        raise InputError(f"expected include flags and strengths for {n_leaves} behavioural "
                         "leaves")
    window_s = round(window_s / session.bin_width) * session.bin_width
    behaviour = with_lags(enc, session, ())
    settings = ([*include, False], [*strengths, coupling_strength], regularizer)
    coupled = ([*include, True], *settings[1:])
    gain, peak, lag_ms, baseline = (np.full((n, n), np.nan), np.full((n, n), np.nan),
                                    np.full((n, n), np.nan), np.full(n, np.nan))
    total, done = n * n, 0
    for i, target in enumerate(units):
        enc_i = explorer.with_unit(behaviour, session, target)
        base = None
        for j, driver in enumerate(units):
            if j == i:
                continue
            pair = with_lags(enc_i, session, [LagLeaf("coupling", driver, window_s, n_basis)])
            if base is None:
                base = explorer.cross_validate_encoding(pair, *settings)
                baseline[i] = base.pooled
                done += 1
                _step(on_step, done, total)
            fit = explorer.fit(pair, *coupled)
            cv = explorer.cross_validate_encoding(pair, *coupled, fit.theta)
            gain[i, j] = cv.pooled - base.pooled
            f = fit.filters[0]
            top = int(np.argmax(np.abs(f.log_gain)))
            peak[i, j], lag_ms[i, j] = np.exp(f.log_gain[top]), f.lags_ms[top]
            done += 1
            _step(on_step, done, total)
    return CouplingMatrix(tuple(session.unit_names[u] for u in units), gain, peak, lag_ms,
                          baseline, 1e3 * window_s)


def _step(on_step, done, total):
    if on_step is not None:
        on_step(done, total)
