"""Cross-validated decoding: what a session's population says about its behaviour.

The maps used to decode a fold are fitted without it. The population fit already fits every unit
on every fold's complement (``PopulationFit.cv_theta``, one vmapped call), so nothing is refitted
here: :func:`fold_rates` turns those fold fits into each unit's rate at every state, and
:func:`decode_session` cuts each fold's contiguous sections into windows of a whole number of
bins and decodes them with :func:`decoding.bayes_decode` (flat or continuity prior; the filter
starts again at each section).

A state is a bin of the decoded variable, or a cell of the product grid of two variables' bins
(row-major, the first variable slowest). The other variables in the model enter at their mean
effect over the fold's training samples (the occupancy-weighted mean of exp(their summed
effects), as the tuning curves do). The decoded value is the posterior mode's bin centre; the true
value the mean of the window's samples (the circular mean for an angle); the error the distance
between them in the variable's unit (wrapped for an angle, Euclidean on a 2-D map).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .decoding import bayes_decode, log_likelihood
from .errors import InputError

UNIT_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)  # error against units


@dataclass(frozen=True)
class Decoding:
    """A session decoded window by window, each fold with maps fitted without it.

    ``names``/``unit``/``circular``: the decoded variable(s); ``centres`` per axis the states'
    bin centres; ``window_bins`` bins make a window of ``window_s`` s; ``sigma`` the continuity
    prior's SD in bins per window (None: flat). Per window (first axis): ``time_s`` its centre,
    ``fold``, ``true`` and ``decoded`` (windows, axes), ``error``, ``posterior`` (windows,
    states; float32). ``units``: the units used, most informative (held-out score) first;
    ``notes``: what was left out and why. ``units_curve[i]`` units (the most informative ones)
    decode with median error ``units_error[i]`` (with the flat prior, whatever ``sigma``).
    """

    names: tuple[str, ...]
    unit: str
    circular: bool
    centres: tuple[np.ndarray, ...]
    window_bins: int
    window_s: float
    sigma: float | None
    time_s: np.ndarray
    fold: np.ndarray
    true: np.ndarray
    decoded: np.ndarray
    error: np.ndarray
    posterior: np.ndarray
    units: tuple[str, ...]
    notes: tuple[str, ...]
    units_curve: np.ndarray
    units_error: np.ndarray

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """States per axis: (n,) for a variable, (nx, ny) for a 2-D map."""
        return tuple(c.size for c in self.centres)

    @property
    def median_error(self) -> float:
        return float(np.nanmedian(self.error))

    @property
    def mean_error(self) -> float:
        return float(np.nanmean(self.error))

    def to_csv(self) -> str:
        """Per window: time, fold, true and decoded value of each variable, and the error."""
        header = ["time_s", "fold", *(f"true {n}" for n in self.names),
                  *(f"decoded {n}" for n in self.names), f"error ({self.unit})"]
        columns = [self.time_s, self.fold, *self.true.T, *self.decoded.T, self.error]
        rows = [",".join(f'"{h}"' for h in header)]
        rows += [",".join(f"{v:.6g}" for v in row) for row in zip(*columns)]
        return "\n".join(rows) + "\n"

    def summary(self) -> dict:
        """The error summary: settings, median and mean error, units, and error against units."""
        return {"decoded": list(self.names), "unit": self.unit,
                "window_ms": 1e3 * self.window_s, "window_bins": self.window_bins,
                "prior": "flat" if self.sigma is None else "continuity",
                "sigma_bins_per_window": self.sigma, "windows": int(self.error.size),
                "median_error": self.median_error, "mean_error": self.mean_error,
                "units": list(self.units), "notes": list(self.notes),
                "error_against_units": {"units": self.units_curve.tolist(),
                                        "median_error": self.units_error.tolist()}}

    def summary_json(self) -> str:
        return json.dumps(self.summary(), indent=1)


def fold_rates(fit, pop, axes, n_states, bin_width: float, bases=None) -> np.ndarray:
    """Each unit's rate (Hz) at every state, as fitted without each fold.

    Args:
        fit: a ``population.PopulationFit`` with cross-validation (``cv_theta``).
        pop: its ``population.PopulationGrid`` (each axis with its ``sizes`` bin slots).
        axes: the decoded axes of the fit: one (a variable, or a joint 2-D leaf), or two
            variables (their product grid).
        n_states: per decoded axis its bins ((nx, ny) for a joint leaf: nx * ny states).
        bin_width: the samples' width in seconds.
        bases: per axis None or its (bins, k) basis, as given to ``fit_population``.

    Returns:
        (folds, units, states) float64; NaN for a unit whose training folds have no spikes.
    """
    if fit.cv_theta is None:
        raise InputError("decoding needs the population's fold fits: fit all units with "
                         "cross-validation first")
    n_units, n_axes = pop.n_units, len(pop.sizes)
    theta = np.asarray(fit.cv_theta, float)[:n_units]  # (U, K, sum(sizes) + 1)
    starts = np.cumsum((0, *pop.sizes))
    bases = list(bases or (None,) * n_axes)
    effects = []  # per axis (U, K, sizes[a]): the effect at each bin slot
    for a, basis in enumerate(bases):
        coef = theta[..., starts[a]:starts[a + 1]]
        effects.append(coef if basis is None else np.pad(
            coef[..., :basis.shape[1]] @ basis.T,
            ((0, 0), (0, 0), (0, pop.sizes[a] - basis.shape[0]))))
    occupancy = np.asarray(pop.occupancy, float)[:, :pop.cell_slots.shape[1]]  # (K, C)
    # the other axes' effects depend only on their bins: sum the cells per combination of them
    rest = [a for a in range(n_axes) if a not in axes]
    combos, combo = np.unique(pop.cell_slots[rest], axis=1, return_inverse=True)
    occupancy = np.stack([np.bincount(combo.ravel(), k, combos.shape[1]) for k in occupancy])
    train = occupancy.sum(0) - occupancy  # (K, combinations)
    others = sum((effects[a][..., combos[i]] for i, a in enumerate(rest)),
                 np.zeros((n_units, pop.n_folds, combos.shape[1])))
    top = others.max(-1, keepdims=True)
    log_gain = np.log(np.einsum("ukc,kc->uk", np.exp(others - top), train)
                      / train.sum(1)) + top[..., 0]
    sizes = [int(np.prod(n)) for n in n_states]
    state = np.zeros((n_units, pop.n_folds) + tuple(sizes))
    for i, (a, n) in enumerate(zip(axes, sizes)):
        shape = [1] * len(axes)
        shape[i] = n
        state = state + effects[a][..., :n].reshape(n_units, pop.n_folds, *shape)
    log_rate = (theta[..., -1] + log_gain)[..., None] + state.reshape(n_units, pop.n_folds, -1)
    trained = pop.fold_spikes.sum(1, keepdims=True) - pop.fold_spikes > 0  # (U, K)
    rates = np.where(trained[..., None], np.exp(log_rate), np.nan) / bin_width
    return rates.transpose(1, 0, 2)


def window_bins(window_s: float, bin_width: float, sample_fold: np.ndarray) -> int:
    """The window as a whole number of bins (the nearest); InputError when it is shorter than a
    bin or longer than the shortest contiguous section of a fold."""
    if not (np.ndim(window_s) == 0 and np.isfinite(window_s) and window_s > 0):
        raise InputError(f"the window must be a positive number of seconds, got {window_s!r}")
    if window_s < bin_width * (1 - 1e-9):
        raise InputError(f"a window of {1e3 * window_s:g} ms is shorter than a bin "
                         f"({1e3 * bin_width:g} ms)")
    bins = max(1, int(round(window_s / bin_width)))
    shortest = np.diff(section_starts(sample_fold)).min()
    if bins > shortest:
        raise InputError(f"a window of {1e3 * window_s:g} ms is longer than a fold's shortest "
                         f"contiguous section ({1e3 * shortest * bin_width:g} ms): choose a "
                         "shorter window or fewer folds")
    return bins


def section_starts(sample_fold: np.ndarray) -> np.ndarray:
    """Where each run of one fold begins, and the end: (sections + 1,)."""
    change = np.flatnonzero(np.diff(sample_fold)) + 1
    return np.concatenate([[0], change, [sample_fold.size]])


def decode_session(session, encoding, fit, pop, variables, window_s: float, sigma=None,
                   on_step: Callable | None = None) -> Decoding:
    """Decode ``variables`` from every unit of ``session``, cross-validated.

    Args:
        session: the ``session.Session``.
        encoding: the ``explorer.Encoding`` the population was fitted on (1-D leaves).
        fit: its ``population.PopulationFit``, with cross-validation.
        pop: the ``population.PopulationGrid`` of ``fit``.
        variables: the decoded variable's name, or two names (x, y) for a 2-D map.
        window_s: the window's length in seconds (rounded to a whole number of bins).
        sigma: None for a flat prior; else the continuity prior's SD in bins per window.
        on_step: optional ``on_step(done, total)``: after the posterior, after the curve.

    Returns:
        A :class:`Decoding`. InputError when a variable is not in the model, the window is
        shorter than a bin or longer than a fold's section, or fewer than 2 units have spikes.
    """
    names = (variables,) if isinstance(variables, str) else tuple(variables)
    index = [session.names.index(n) if n in session.names else None for n in names]
    if not 1 <= len(names) <= 2 or None in index:
        raise InputError(f"decode one variable or two (a 2-D map) of {list(session.names)}, "
                         f"not {list(names)}")
    var = [session.variables[i] for i in index]
    if len(var) == 2 and any(v.circular for v in var):
        raise InputError("a 2-D map pairs two linear variables")
    if encoding.pairs:
        raise InputError("the population is fitted on 1-D leaves: untick '2-D map' to decode")
    for i, v in zip(index, var):
        if not np.any(fit.active[i]):
            raise InputError(f"{v.name} is not in the model: tick its Include box and fit all "
                             "units again to decode it")
    n_states = tuple(encoding.n_bins[i] for i in index)
    rates = fold_rates(fit, pop, index, n_states, session.bin_width, encoding.bases)
    sample_fold = encoding.grid.sample_fold
    bins = window_bins(window_s, session.bin_width, sample_fold)
    order, notes = _ranked_units(fit, session.unit_names)
    windows = _windows(session, sample_fold, bins, [v.values for v in var], var[0].circular)
    centres = tuple(np.asarray(encoding.binnings[i].centres, float) for i in index)
    decoder = _Decoder(rates, windows, bins * session.bin_width, n_states, var[0].circular,
                       centres)
    decoded, posterior = decoder.posterior(order, sigma)
    error = _distance(decoded, windows["true"], var[0].circular)
    if on_step is not None:
        on_step(1, 2)
    steps = [n for n in UNIT_STEPS if n < len(order)] + [len(order)]
    curve = [np.nanmedian(_distance(d, windows["true"], var[0].circular))
             for d in decoder.modes(order, steps)]
    if on_step is not None:
        on_step(2, 2)
    lost = np.isnan(rates[:, order]).any(2).sum(0)
    notes += tuple(f"{session.unit_names[u]}: no spikes in the training folds of {k} fold(s), "
                   "left out there" for u, k in zip(order, lost) if k)
    return Decoding(
        names=names, unit=var[0].unit, circular=var[0].circular, centres=centres,
        window_bins=bins, window_s=bins * session.bin_width, sigma=sigma,
        time_s=windows["time"], fold=windows["fold"], true=windows["true"], decoded=decoded,
        error=error, posterior=posterior, units=tuple(session.unit_names[u] for u in order),
        notes=notes, units_curve=np.asarray(steps), units_error=np.asarray(curve))


def _ranked_units(fit, unit_names):
    """Units with spikes, by held-out score (best first, unscored last), and notes naming the
    ones left out."""
    spiking = np.flatnonzero(fit.has_spikes)
    notes = tuple(f"{unit_names[u]}: no spikes, left out" for u in np.flatnonzero(
        ~fit.has_spikes))
    if spiking.size < 2:
        raise InputError(f"decoding needs at least 2 units with spikes; this session has "
                         f"{spiking.size}")
    score = fit.held_out[spiking]
    order = spiking[np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")]
    return order, notes


def _windows(session, sample_fold, bins, values, circular) -> dict:
    """Windows of ``bins`` consecutive valid samples inside each fold's sections: per window its
    section, fold, centre time, true value per variable and per-unit counts."""
    valid = np.flatnonzero(session.valid)
    starts = section_starts(sample_fold)
    first = np.concatenate([np.arange(a, b - bins + 1, bins) for a, b in
                            zip(starts[:-1], starts[1:])])
    take = first[:, None] + np.arange(bins)[None, :]  # (windows, bins) valid-sample indices
    section = np.searchsorted(starts, first, side="right") - 1
    true = []
    for v in values:
        x = np.asarray(v, float)[valid][take]
        true.append(np.angle(np.exp(1j * x).mean(1)) if circular else x.mean(1))
    return {"take": take, "section": section, "fold": sample_fold[first],
            "time": (valid[take].mean(1) + 0.5) * session.bin_width, "true": np.stack(true, 1),
            "counts": session.counts[valid][take].sum(1, dtype=float)}


class _Decoder:
    """Decodes the windows with chosen units (indices), each fold with its own rates; a unit
    without rates in a fold is left out there."""

    def __init__(self, rates, windows, window_s, n_states, circular, centres):
        self.rates, self.windows, self.window_s = rates, windows, window_s
        self.grid = n_states if len(n_states) == 2 else None
        self.circular = circular and self.grid is None
        self.centres = np.stack([c.ravel() for c in np.meshgrid(*centres, indexing="ij")], 1)

    def _groups(self, by):
        """(fold, rows) per fold, or per section (the filter restarts at each)."""
        keys = self.windows[by]
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            yield self.windows["fold"][rows[0]], rows

    def _usable(self, fold, units):
        return units[np.isfinite(self.rates[fold][units]).all(1)]

    def _values(self, scores):
        """The mode's centre per row of ``scores``; NaN where no state is possible."""
        lost = ~np.isfinite(scores).any(1)
        mode = np.argmax(np.where(lost[:, None], 0.0, np.nan_to_num(scores, nan=-np.inf)), 1)
        return np.where(lost[:, None], np.nan, self.centres[mode])

    def posterior(self, units, sigma):
        """(decoded values, float32 posterior) with ``units``; flat prior, or the continuity
        prior of ``sigma`` bins per window."""
        posterior = np.full((self.windows["fold"].size, self.rates.shape[2]), np.nan,
                            np.float32)
        for fold, rows in self._groups("fold" if sigma is None else "section"):
            keep = self._usable(fold, units)
            if keep.size:
                posterior[rows] = bayes_decode(
                    self.rates[fold][keep], self.windows["counts"][rows][:, keep],
                    self.window_s, sigma=sigma, grid_shape=self.grid, circular=self.circular)
        return self._values(posterior), posterior

    def modes(self, order, steps):
        """Per count n of ``steps``: the flat prior's decoded values with the first n units of
        ``order``; one pass, each step adding its units' log likelihood."""
        decoded = np.full((len(steps), self.windows["fold"].size, self.centres.shape[1]), np.nan)
        for fold, rows in self._groups("fold"):
            log_lik = np.zeros((rows.size, self.rates.shape[2]))
            for i, (start, stop) in enumerate(zip([0, *steps[:-1]], steps)):
                new = self._usable(fold, order[start:stop])
                if new.size:
                    log_lik += log_likelihood(self.rates[fold][new],
                                              self.windows["counts"][rows][:, new],
                                              self.window_s)
                if stop > 0 and self._usable(fold, order[:stop]).size:
                    decoded[i, rows] = self._values(log_lik)
        return decoded


def _distance(decoded, true, circular) -> np.ndarray:
    """Per window: |decoded - true| (wrapped on the circle), or the Euclidean distance in 2-D."""
    diff = np.abs(decoded - true)
    if circular:
        diff = np.minimum(diff, 2 * np.pi - diff)
    return np.sqrt(np.sum(diff**2, 1))
