"""The lagged leaves (spike history, coupling, event kernels) in the exports of ``glm_core.export``.

:class:`LagExport` says how one lagged leaf entered the fit; :func:`lag_entries` gives the JSON
record's ``lags`` (kernels, coefficients, the filter as log-gain and gain with its 95% band, the
truth where known); :func:`lag_csv_rows` one CSV row per lag; :func:`lag_design` and
``LAG_LINES`` the snippets' design of a leaf: the source's counts through the raised-cosine lag
kernels (``basis.lagged``), whose first rows are NaN and dropped by the fit, as NeMoS does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lag_leaves import LagLeaf

LAG_ENCODING = "raised-cosine lags"
LAG_CSV_COLUMNS = ("gain", "gain_lower", "gain_upper", "truth_gain")  # beside ``centre`` (ms)


@dataclass(frozen=True)
class LagExport:
    """One lagged leaf of a fit: ``kind`` (history, coupling, event), ``source`` (None, a
    unit's name, an event train's name), its window in bins and seconds, basis count, include
    flag and log10 strength."""

    kind: str
    source: str | None
    window_bins: int
    bin_width: float
    n_basis: int
    include: bool
    log_strength: float

    @property
    def name(self) -> str:
        return LagLeaf(self.kind, self.source).label()

    @property
    def strength(self) -> float:
        return 10.0**self.log_strength


def lag_entries(lags, fit, filters, plain) -> list[dict]:
    """The record's ``lags``: per lagged leaf its settings, lag kernels (window x basis), the
    coefficients (null when excluded), and per lag (ms) the log-gain, gain, its 95% band and the
    true gain (null where unknown).

    Args:
        lags: the fit's :class:`LagExport` per leaf; fit: its ``LaggedFit``;
        filters: ``lag_curves.FilterCurve`` per leaf; plain: JSON conversion of arrays.
    """
    entries = []
    for j, (lag, curve) in enumerate(zip(lags, filters)):
        filt = fit.filters[j]
        entries.append({
            "name": lag.name, "kind": lag.kind, "source": lag.source, "included": lag.include,
            "encoding": LAG_ENCODING, "window_bins": lag.window_bins,
            "window_ms": 1e3 * lag.window_bins * lag.bin_width, "n_basis": lag.n_basis,
            "log10_strength": lag.log_strength, "strength": lag.strength,
            "coefficients": plain(fit.lag_coef[j, :lag.n_basis]) if lag.include else None,
            "lags_ms": plain(curve.lags_ms), "log_gain": plain(filt.log_gain),
            "gain": plain(curve.gain), "gain_lower": plain(curve.lower),
            "gain_upper": plain(curve.upper), "truth_gain": plain(curve.truth),
        })
    return entries


def lag_csv_rows(record: dict, common: dict):
    """One CSV row per lag of every lagged leaf: ``centre`` is the lag in ms, ``bin`` its index,
    ``log_rate_term`` the filter, and ``LAG_CSV_COLUMNS`` the gains."""
    for lag in record.get("lags", []):
        for i, ms in enumerate(lag["lags_ms"]):
            yield {
                "variable": lag["name"], "variable_unit": "ms", "circular": False,
                "included": lag["included"], "encoding": lag["encoding"],
                "log10_strength": lag["log10_strength"], "strength": lag["strength"],
                "bin": i, "centre": ms, "log_rate_term": lag["log_gain"][i],
                **{key: lag[key][i] if lag[key] else None for key in LAG_CSV_COLUMNS},
                **common,
            }


def lag_design(lag: LagExport, unit: str) -> str:
    """The snippet's expression of a leaf's design (``LAG_LINES``' ``lagged_counts``) for the
    fitted ``unit``."""
    if lag.kind == "history":
        train = f"session.unit_counts({unit!r})"
    elif lag.kind == "coupling":
        train = f"session.unit_counts({lag.source!r})"
    else:
        train = f"session.events[{lag.source!r}]"
    return f"lagged_counts({train}, {lag.window_bins}, {lag.n_basis})"


LAG_LINES = [
    "def lagged_counts(train, window, n_basis):",
    '    """A train\'s past counts (lags 1 .. window bins) through raised-cosine lag kernels; the',
    '    first window rows are NaN, and the fit drops those samples."""',
    "    return lagged(train, raised_cosine_log(n_basis, window))[valid]",
    "",
    "",
]
