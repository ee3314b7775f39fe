"""The lagged leaves' filters as the page draws them: the gain exp(filter) against the lag in ms,
its 95% band and, for simulations that know it, the true gain.

A filter f(l) adds f(l) to the log rate l ms after a source event (a spike of the unit itself,
of a coupled unit, or an event of a train), so it multiplies the rate by exp(f(l)): a gain of 1
is no effect, 0.5 halves the rate, 2 doubles it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .session import Session

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class FilterCurve:
    """One lagged leaf's gain at lags 1 bin .. its window (``lags_ms``): the fit's
    (``gain``), its 95% Laplace band (``lower``, ``upper``) and, where the data set knows it,
    the true gain (``truth``; 1 past the true filter's own window)."""

    name: str
    kind: str
    lags_ms: np.ndarray
    gain: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    truth: np.ndarray | None = None


def truth_key(session: Session, leaf) -> str:
    """The key of a leaf's filter in ``Session.lag_truth``: "history", "coupling:<unit name>"
    or "event:<event name>"."""
    if leaf.kind == "history":
        return "history"
    if leaf.kind == "coupling":
        return f"coupling:{session.unit_names[_unit_index(session, leaf.source)]}"
    return f"event:{leaf.source}"


def _unit_index(session: Session, unit) -> int:
    return session.unit_names.index(unit) if isinstance(unit, str) else int(unit)


def filter_curves(session: Session, enc, fit) -> list[FilterCurve]:
    """The gain curve of each lagged leaf of ``enc`` (``explorer.with_lags``) in its fit.

    Args:
        session: the data set (its ``lag_truth`` for the true filters).
        enc: the encoding, with its lagged leaves (``enc.lags``).
        fit: its ``lagged_fit.LaggedFit`` (one ``LagFilter`` per lagged leaf).

    Returns:
        One :class:`FilterCurve` per lagged leaf, in ``enc.lags``' order; none without them.
    """
    curves = []
    for leaf, filt in zip(enc.lags, getattr(fit, "filters", ())):
        half = Z95 * np.asarray(filt.se, float)
        log_gain = np.asarray(filt.log_gain, float)
        truth = session.lag_truth_of(enc.unit, truth_key(session, leaf), log_gain.size)
        curves.append(FilterCurve(
            leaf.label(session.unit_names), leaf.kind, np.asarray(filt.lags_ms, float),
            np.exp(log_gain), np.exp(log_gain - half), np.exp(log_gain + half),
            None if truth is None else np.exp(np.asarray(truth, float))))
    return curves
