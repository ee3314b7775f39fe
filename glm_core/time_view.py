"""The model in time as the page draws it: a stretch of the recording with the observed spikes, the
cross-validated predicted rate, spikes simulated from the fit, and the behaviour.

:func:`sample_log_rates` gives the log rate of each valid sample under a bin-grid fit (or a
lagged one: behavioural leaves plus lagged rows), for one ``theta`` or each fold's; the
cross-validated rate keeps, for each sample, the fold model that did not see it
(:func:`glm_core.model_in_time.cross_validated_rate`). :func:`time_view` assembles a stretch:
rates in spikes/s, the observed counts smoothed for display, and, on request, a train simulated
bin by bin from the full fit with its spike history acting on the simulated spikes
(:func:`glm_core.model_in_time.simulate_from_fit`; a runaway is reported as capped bins).
Samples left out of the fit (not valid, or without a complete lagged row) have no predicted rate
(NaN); the simulation runs over the stretch's fitted samples one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._lag_problem import LAG_BASIS
from .errors import InputError
from .model_in_time import cross_validated_rate, simulate_from_fit, smooth_counts
from .sequential import MAX_SIMULATED_RATE_HZ

SMOOTH_S = 0.1  # display smoothing of the observed and simulated counts, seconds (Gaussian sd)


def sample_log_rates(enc, theta, samples=None) -> np.ndarray:
    """Log expected count per bin of valid samples under a fit of an encoding.

    Args:
        enc: the :class:`glm_core.explorer.Encoding` the fit was made on (its grid's cells and,
            with lagged leaves, their rows ``enc.lag``).
        theta: (n_theta,) a fit's flat vector, or (n_fits, n_theta) one per fold: the axes'
            blocks, then (with lagged leaves) the lag columns, then the intercept.
        samples: indices of the valid samples wanted (default: all).

    Returns:
        float64 (..., n_samples) log rates, NaN where a lagged row is incomplete.
    """
    grid = enc.grid
    theta = np.asarray(theta, np.float64)
    lag_rows = encoding_lag_rows(enc, samples)
    n_beh, n_lag = sum(grid.sizes), 0 if lag_rows is None else lag_rows.shape[1]
    if theta.shape[-1] != n_beh + n_lag + 1:
        raise InputError(f"theta has {theta.shape[-1]} entries; this model has "
                         f"{n_beh + n_lag + 1}")
    cells = grid.sample_cell if samples is None else grid.sample_cell[np.asarray(samples)]
    bases = enc.bases or (None,) * len(enc.binnings)
    eta = np.repeat(theta[..., -1:], cells.size, axis=-1)
    offset = 0
    for v, (leaf, size) in enumerate(zip(enc.behaviour_leaves, grid.sizes)):
        block = theta[..., offset:offset + size]
        basis = bases[leaf[0]] if len(leaf) == 1 else None
        effect = block if basis is None else block[..., :basis.shape[1]] @ np.asarray(
            basis, np.float64).T
        eta = eta + effect[..., grid.cell_slots[v][cells]]
        offset += size
    if lag_rows is not None:
        eta = eta + (lag_rows @ theta[..., n_beh:n_beh + n_lag].T).T
    return eta


def encoding_lag_rows(enc, samples=None) -> np.ndarray | None:
    """(n_samples, lag columns) float64 lagged rows of an encoding's valid samples ``samples``
    (default: all), NaN where a row is incomplete; None without lagged leaves."""
    if enc.lag is None:
        return None
    rows, used = enc.lag.rows, enc.lag.used
    if samples is not None:
        rows, used = rows[np.asarray(samples)], used[np.asarray(samples)]
    return np.where(used[:, None], np.asarray(rows, np.float64), np.nan)


@dataclass(frozen=True)
class TimeView:
    """A stretch of the recording as the "Model in time" card draws it; per-bin arrays are
    over the stretch's samples, rates in spikes/s.

    Attributes:
        time: (n,) seconds of each bin's start.
        observed: (n,) the unit's observed counts.
        observed_rate: (n,) the observed counts smoothed for display.
        predicted_rate: (n,) the cross-validated predicted rate (each fold's samples predicted
            by the model fitted without them); NaN where not fitted or not yet cross-validated.
        behaviour: per variable name its (n,) values, NaN where the sample is not valid.
        simulated: (n,) counts simulated from the fit, or None when not asked for.
        simulated_rate: (n,) the simulated counts smoothed for display, or None.
        n_capped: simulated bins whose rate hit the cap (a runaway history filter).
        cap_hz: the cap on the simulated rate.
    """

    time: np.ndarray
    observed: np.ndarray
    observed_rate: np.ndarray
    predicted_rate: np.ndarray
    behaviour: dict
    simulated: np.ndarray | None = None
    simulated_rate: np.ndarray | None = None
    n_capped: int = 0
    cap_hz: float = 0.0

    @property
    def ran_away(self) -> bool:
        """Whether the simulated rate hit its cap somewhere in the stretch."""
        return self.n_capped > 0


def stretch(session, start_s: float, window_s: float) -> tuple[int, int]:
    """The samples [start, stop) of a window of ``window_s`` seconds from ``start_s``, kept
    inside the session (a window longer than the session is the whole session)."""
    if not (np.isfinite(start_s) and np.isfinite(window_s) and window_s > 0):
        raise InputError(f"the window must start at a number of seconds and last > 0 s, got "
                         f"{start_s} and {window_s}")
    n = session.n_samples
    length = min(n, max(1, int(round(window_s / session.bin_width))))
    start = min(max(0, int(round(start_s / session.bin_width))), n - length)
    return start, start + length


def time_view(session, enc, theta, cv_theta, start: int, stop: int, *,
              smooth_s: float = SMOOTH_S, simulate_seed: int | None = None,
              max_rate_hz: float | None = None) -> TimeView:
    """The stretch ``start`` .. ``stop - 1`` of a session under a fit of ``enc``'s unit.

    Args:
        session: the :class:`glm_core.session.Session`; enc: the encoding fitted.
        theta: the full fit's flat vector (``BinnedFit.theta``).
        cv_theta: each fold's flat vector (``CVResult.theta``, one row per fold slot), or None
            while the fit is not cross-validated (the predicted rate is then NaN).
        start, stop: the stretch, in session samples (:func:`stretch`).
        smooth_s: the display smoothing (Gaussian sd, seconds) of observed and simulated counts.
        simulate_seed: simulate the unit from the full fit with this seed (its history leaf, if
            it has one, acting on the simulated spikes; couplings and events on the observed
            trains); None: no simulation.
        max_rate_hz: the simulation's rate cap (default ``MAX_SIMULATED_RATE_HZ``).

    Returns:
        A :class:`TimeView`.
    """
    if not 0 <= start < stop <= session.n_samples:
        raise InputError(f"cannot show samples {start} to {stop} of {session.n_samples}")
    bw = session.bin_width
    valid_index = np.flatnonzero(session.valid)
    lo, hi = np.searchsorted(valid_index, [start, stop])
    samples = np.arange(lo, hi)  # the stretch's valid samples, numbered among the valid ones
    where = valid_index[samples] - start  # and their place in the stretch
    counts = session.unit_counts(enc.unit)
    observed = counts[start:stop]
    margin = int(np.ceil(4 * smooth_s / bw))
    lo_m, hi_m = max(0, start - margin), min(session.n_samples, stop + margin)
    observed_rate = smooth_counts(counts[lo_m:hi_m], bw, smooth_s)[start - lo_m:
                                                                    stop - lo_m] / bw
    predicted = np.full(stop - start, np.nan)
    if cv_theta is not None and samples.size:
        folds = np.asarray(cv_theta)[: enc.grid.n_folds]
        fold = enc.grid.sample_fold[samples].astype(np.int64)
        eta = sample_log_rates(enc, folds, samples)
        predicted[where] = cross_validated_rate(eta, fold) / bw
    behaviour = {}
    for var in session.variables:
        values = np.asarray(var.values[start:stop], np.float64).copy()
        values[~session.valid[start:stop]] = np.nan
        behaviour[var.name] = values
    view = TimeView(np.arange(start, stop) * bw, observed, observed_rate, predicted, behaviour)
    if simulate_seed is None:
        return view
    return _with_simulation(view, session, enc, theta, samples, where, counts, valid_index,
                            simulate_seed, smooth_s, max_rate_hz)


def _with_simulation(view, session, enc, theta, samples, where, counts, valid_index, seed,
                     smooth_s, max_rate_hz):
    """``view`` with spikes simulated over its fitted samples from the full fit."""
    cap = MAX_SIMULATED_RATE_HZ if max_rate_hz is None else float(max_rate_hz)
    n = view.time.size
    simulated = np.zeros(n, np.int64)
    eta = sample_log_rates(enc, theta, samples)
    history = None
    kinds = [leaf.kind for leaf in enc.lags]
    if "history" in kinds:
        j = kinds.index("history")
        kernels = enc.lag.kernels[j]
        start = sum(enc.grid.sizes) + j * LAG_BASIS
        beta = np.asarray(theta, np.float64)[start:start + kernels.shape[1]]
        block = slice(j * LAG_BASIS, j * LAG_BASIS + kernels.shape[1])
        rows = encoding_lag_rows(enc, samples)[:, block]
        eta = eta - rows @ beta
        history = kernels @ beta
    fitted = np.isfinite(eta)
    n_capped = 0
    if fitted.any():
        keep = samples[fitted]
        # the fitted samples one after the other, the observed ones before them as the past
        # (as far back as the history window reaches)
        window = 0 if history is None else history.size
        past = counts[valid_index[max(0, keep[0] - window): keep[0]]]
        train = simulate_from_fit(np.concatenate([np.zeros(past.size), eta[fitted]]), history,
                                  np.concatenate([past, np.zeros(keep.size)]),
                                  session.bin_width, start=past.size, seed=seed,
                                  max_rate_hz=cap)
        simulated[where[fitted]] = train.counts
        n_capped = train.n_capped
    rate = smooth_counts(simulated, session.bin_width, smooth_s) / session.bin_width
    return replace(view, simulated=simulated, simulated_rate=rate, n_capped=n_capped,
                   cap_hz=cap)
