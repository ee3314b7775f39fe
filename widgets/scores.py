"""The fit's statistics as the page and the exports hold them: numbers only (formatting is the
stats view's), for the held-out scores and for the time a fit took."""

from __future__ import annotations

HELD_OUT = "held-out bits/spike"
SE_SUFFIX = " SE"  # a statistic "<name> SE" is the standard error of "<name>"


def cv_statistics(cv) -> dict:
    """The statistics of a glm_core ``CVResult``: the pooled held-out and training scores, the
    held-out score's standard error, the per-fold scores and spikes, and the pooled pseudo-R2.

    Args:
        cv: a ``CVResult``.

    Returns:
        name -> float, or list of floats per fold.
    """
    return {
        HELD_OUT: cv.pooled,
        HELD_OUT + SE_SUFFIX: cv.pooled_se,
        "train bits/spike": cv.train_pooled,
        "held-out pseudo-R2": cv.test_pseudo_r2,
        "held-out bits/spike per fold": [float(x) for x in cv.test_bits_per_spike],
        "spikes per fold": [float(x) for x in cv.test_spikes],
    }


def fit_timing(shared: bool, timer) -> dict:
    """How the fit shown was obtained: a shared first fit (no time of its own), or a refit whose
    solver time is reported apart from any compilation it needed.

    Args:
        shared: whether the fit is the process's shared first fit (a cache lookup).
        timer: the ``glm_core.timing.Timer`` around the fit.

    Returns:
        name -> str or float (ms).
    """
    if shared:
        return {"fit": "shared first fit (computed once for every tab)"}
    timing = {"refit time (ms)": 1e3 * (timer.seconds - timer.compile_seconds)}
    if timer.compile_seconds > 0:
        timing["compile time (ms)"] = 1e3 * timer.compile_seconds
    return timing
