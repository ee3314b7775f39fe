"""Cross-validated decoding: what a session's population says about its behaviour.

The maps used to decode a fold are fitted without it. The population fit already fits every unit
on every fold's complement (``PopulationFit.cv_theta``, one vmapped call), so nothing is refitted
here: :func:`fold_maps` turns those fold fits into each unit's log rate at every state (once per
fit and target), and :func:`decode_windows` cuts each fold's contiguous sections into windows of a
whole number of bins and decodes them: one product counts @ log rates per fold (in groups of
units, for the error against the number of units), then the flat or continuity prior
(``decoding.decode_posterior``; the filter starts again at each section).

A state is a bin of the decoded variable, a bin of the model's joint 2-D leaf, or a cell of the
product grid of two 1-D variables' bins (row-major, the first variable slowest). The other
variables in the model enter at their mean effect over the fold's training samples (the
occupancy-weighted mean of exp(their summed effects), as the tuning curves do). The decoded value
is the posterior mode's bin centre; the true value the mean of the window's samples (the circular
mean for an angle); the error the distance between them in the variable's unit (wrapped for an
angle, Euclidean on a 2-D map).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .decoding import decode_posterior
from .errors import InputError
from .population import leaf_design

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


def fold_log_rates(fit, pop, axes, n_states, bin_width: float, bases=None) -> np.ndarray:
    """Each unit's log rate (Hz) at every state, as fitted without each fold.

    Args:
        fit: a ``population.PopulationFit`` with cross-validation (``cv_theta``).
        pop: its ``population.PopulationGrid`` (each axis with its ``sizes`` bin slots).
        axes: the decoded axes of the fit: one (a variable, or a joint 2-D leaf), or two
            variables (their product grid).
        n_states: per decoded axis its bins ((nx, ny) for a joint leaf: nx * ny states).
        bin_width: the samples' width in seconds.
        bases: per axis None or its (bins, k) basis, as given to ``fit_population``.

    Returns:
        (folds, units, states) float64 log rates; NaN for a unit whose training folds have no
        spikes.
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
    log_rate = np.where(trained[..., None], log_rate - np.log(bin_width), np.nan)
    return log_rate.transpose(1, 0, 2)


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


@dataclass(frozen=True)
class FoldMaps:
    """What a target is decoded with, whatever the window and prior: one population fit's
    maps, each fold's fitted without it (:func:`fold_maps`; made once per fit and target).

    ``names``/``unit``/``circular``/``centres``: as :class:`Decoding`'s; ``variables`` the
    session's indices of ``names``; ``log_rates`` (folds, units, states) float64 each unit's log
    rate in Hz (NaN for a unit left out of a fold: no spikes in its training folds);
    ``order`` the units used, most informative first; ``notes`` what was left out and why.
    """

    names: tuple[str, ...]
    unit: str
    circular: bool
    centres: tuple[np.ndarray, ...]
    variables: tuple[int, ...]
    log_rates: np.ndarray
    order: np.ndarray
    notes: tuple[str, ...]

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(c.size for c in self.centres)


def fold_maps(session, encoding, fit, pop, variables) -> FoldMaps:
    """The maps that decode ``variables``, each fold's fitted without it.

    Args:
        session: the ``session.Session``.
        encoding: the ``explorer.Encoding`` the population was fitted on.
        fit: its ``population.PopulationFit``, with cross-validation.
        pop: the ``population.PopulationGrid`` of ``fit``.
        variables: a variable's name; or two names (x, y): the model's 2-D map when they form
            its joint leaf (its nx * ny states), else the product grid of two 1-D variables.

    Returns:
        A :class:`FoldMaps`. InputError when a variable is not in the model, is part of a 2-D
        map decoded without its pair, or fewer than 2 units have spikes.
    """
    names = (variables,) if isinstance(variables, str) else tuple(variables)
    index = [session.names.index(n) if n in session.names else None for n in names]
    if not 1 <= len(names) <= 2 or None in index:
        raise InputError(f"decode one variable or two (a 2-D map) of {list(session.names)}, "
                         f"not {list(names)}")
    var = [session.variables[i] for i in index]
    if len(var) == 2 and any(v.circular for v in var):
        raise InputError("a 2-D map pairs two linear variables")
    leaves = encoding.behaviour_leaves
    leaf_of = {v: a for a, leaf in enumerate(leaves) for v in leaf}
    joint = leaves[leaf_of[index[0]]]
    if len(index) == 2 and len(joint) == 2 and set(joint) == set(index):
        index, axes = list(joint), [leaf_of[index[0]]]  # the joint leaf's own (x, y) order
        n_states = [tuple(encoding.n_bins[i] for i in index)]
    else:
        for i in index:
            if len(leaves[leaf_of[i]]) == 2:
                x, y = (session.names[v] for v in leaves[leaf_of[i]])
                raise InputError(f"{session.names[i]} is part of the model's 2-D map: decode "
                                 f"the map ({x}, {y}), or untick '2-D map' and fit all units "
                                 "again")
        axes = [leaf_of[i] for i in index]
        n_states = [encoding.n_bins[i] for i in index]
    var = [session.variables[i] for i in index]
    for a, v in zip(axes, var):
        if not np.any(fit.active[a]):
            raise InputError(f"{v.name} is not in the model: tick its Include box and fit all "
                             "units again to decode it")
    log_rates = fold_log_rates(fit, pop, axes, n_states, session.bin_width,
                               leaf_design(encoding)[2])
    order, notes = _ranked_units(fit, session.unit_names)
    lost = np.isnan(log_rates[:, order]).any(2).sum(0)
    notes += tuple(f"{session.unit_names[u]}: no spikes in the training folds of {k} fold(s), "
                   "left out there" for u, k in zip(order, lost) if k)
    return FoldMaps(
        names=tuple(v.name for v in var), unit=var[0].unit, circular=var[0].circular,
        centres=tuple(np.asarray(encoding.binnings[i].centres, float) for i in index),
        variables=tuple(index), log_rates=log_rates, order=order, notes=notes)


def decode_session(session, encoding, fit, pop, variables, window_s: float, sigma=None,
                   on_step: Callable | None = None) -> Decoding:
    """Decode ``variables`` from every unit of ``session``, cross-validated:
    :func:`decode_windows` with the :func:`fold_maps` of ``fit`` (arguments as theirs)."""
    return decode_windows(session, encoding, fold_maps(session, encoding, fit, pop, variables),
                          window_s, sigma, on_step)


def decode_windows(session, encoding, maps: FoldMaps, window_s: float, sigma=None,
                   on_step: Callable | None = None) -> Decoding:
    """Decode every window of ``session`` with the fold maps ``maps``.

    Each fold's windows get one float32 product (counts @ log rates) per group of units of the
    error-against-units curve, accumulated: the last is the posterior's log likelihood.

    Args:
        session, encoding: as :func:`fold_maps`'s.
        maps: the :class:`FoldMaps` of the decoded target.
        window_s: the window's length in seconds (rounded to a whole number of bins).
        sigma: None for a flat prior; else the continuity prior's SD in bins per window.
        on_step: optional ``on_step(done, total)``: after the likelihoods, after the posterior.

    Returns:
        A :class:`Decoding`. InputError when the window is shorter than a bin or longer than a
        fold's section.
    """
    sample_fold = encoding.grid.sample_fold
    bins = window_bins(window_s, session.bin_width, sample_fold)
    var = [session.variables[i] for i in maps.variables]
    windows = _windows(session, sample_fold, bins, [v.values for v in var], maps.circular)
    centres = np.stack([c.ravel() for c in np.meshgrid(*maps.centres, indexing="ij")], 1)
    order, seconds = maps.order, bins * session.bin_width
    steps = [n for n in UNIT_STEPS if n < len(order)] + [len(order)]
    n_windows, n_states = windows["fold"].size, maps.log_rates.shape[2]
    curve = np.full((len(steps), n_windows, centres.shape[1]), np.nan)
    log_lik = np.full((n_windows, n_states), np.nan)
    for fold in np.unique(windows["fold"]):
        rows = np.flatnonzero(windows["fold"] == fold)
        usable = np.isfinite(maps.log_rates[fold, order, 0])
        ranked = order[usable]  # per step, its first ``ends[i]`` units
        ends = np.concatenate([[0], np.cumsum(usable)])[steps]
        # float32, windows x states: each group of units one product of [counts, 1] with
        # [log rates; -rate * window] (the rate term inside the product), accumulated
        log_rates = maps.log_rates[fold, ranked].astype(np.float32)
        counts = windows["counts"][rows][:, ranked].astype(np.float32)  # (windows, units)
        ones = np.ones((rows.size, 1), np.float32)
        total, start = np.zeros((rows.size, n_states), np.float32), 0
        for i, end in enumerate(ends):
            if end > start:
                terms = np.vstack([log_rates[start:end],
                                   -seconds * np.exp(log_rates[start:end]).sum(0)])
                total += np.hstack([counts[:, start:end], ones]) @ terms
                start = end
            if end > 0:
                curve[i, rows] = centres[np.argmax(total, 1)]
        if ranked.size:
            log_lik[rows] = total
    if on_step is not None:
        on_step(1, 2)
    circular = maps.circular and len(maps.centres) == 1
    posterior = np.full((n_windows, n_states), np.nan, np.float32)
    groups = windows["fold"] if sigma is None else windows["section"]
    for key in np.unique(groups):
        rows = np.flatnonzero(groups == key)
        if np.isfinite(log_lik[rows[0], 0]):
            posterior[rows] = decode_posterior(
                log_lik[rows], sigma=sigma,
                grid_shape=maps.grid_shape if len(maps.centres) == 2 else None,
                circular=circular)
    lost = ~np.isfinite(posterior).any(1)
    decoded = np.where(lost[:, None], np.nan,
                       centres[np.argmax(np.nan_to_num(posterior, nan=-1.0), 1)])
    if on_step is not None:
        on_step(2, 2)
    return Decoding(
        names=maps.names, unit=maps.unit, circular=maps.circular, centres=maps.centres,
        window_bins=bins, window_s=seconds, sigma=sigma, time_s=windows["time"],
        fold=windows["fold"], true=windows["true"], decoded=decoded,
        error=_distance(decoded, windows["true"], circular), posterior=posterior,
        units=tuple(session.unit_names[u] for u in order), notes=maps.notes,
        units_curve=np.asarray(steps),
        units_error=np.array([np.nanmedian(_distance(d, windows["true"], circular))
                              for d in curve]))


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
    # each window's counts in one reduceat (an end at the last sample is the array's end)
    bounds = np.stack([first, first + bins], 1).ravel()
    counts = np.add.reduceat(session.counts[valid], bounds[:-1] if bounds[-1] == valid.size
                             else bounds)[::2]
    true = []
    for v in values:
        x = np.asarray(v, float)[valid][take]
        true.append(np.angle(np.exp(1j * x).mean(1)) if circular else x.mean(1))
    return {"take": take, "section": section, "fold": sample_fold[first],
            "time": (valid[take].mean(1) + 0.5) * session.bin_width, "true": np.stack(true, 1),
            "counts": counts.astype(float)}


def _distance(decoded, true, circular) -> np.ndarray:
    """Per window: |decoded - true| (wrapped on the circle), or the Euclidean distance in 2-D."""
    diff = np.abs(decoded - true)
    if circular:
        diff = np.minimum(diff, 2 * np.pi - diff)
    return np.sqrt(np.sum(diff**2, 1))
