"""A seeded synthetic session with known tuning: a place field, head-direction tuning, no speed
effect.

    position  = cumsum(N(0, 0.3))        speed = |diff(position)|
    direction = wrap(cumsum(N(0, 0.2)))  in [-pi, pi)
    log rate  = -(position - c)^2 / (2 (0.3 sd)^2) + cos(direction) - 1,   c = mean(position)
    counts    ~ Poisson(exp(log rate))   per time bin
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .encoding import bin_index, make_binning
from .errors import InputError
from .session import Session, Variable, make_session


def _place_field(x, centre, width):
    return -((x - centre) ** 2) / (2.0 * width**2)


def _direction_tuning(theta):
    return np.cos(theta) - 1.0


def _no_effect(x):
    return np.zeros_like(np.asarray(x, float))


def simulate_session(n_samples: int = 10_000, seed: int = 0, bin_width: float = 0.02) -> Session:
    """Simulate ``n_samples`` time bins of ``bin_width`` seconds; ``truth`` holds each variable's
    log-rate effect."""
    if int(n_samples) < 2:
        raise InputError("a simulation needs at least 2 samples")
    rng = np.random.default_rng(seed)
    position = np.cumsum(rng.normal(0.0, 0.3, n_samples))
    speed = np.abs(np.diff(position, prepend=position[0]))
    direction = np.mod(np.cumsum(rng.normal(0.0, 0.2, n_samples)) + np.pi, 2 * np.pi) - np.pi
    place = partial(_place_field, centre=position.mean(), width=0.3 * position.std())
    log_rate = place(position) + _direction_tuning(direction)
    counts = rng.poisson(np.exp(log_rate))
    return make_session(
        bin_width=bin_width,
        variables=(
            Variable("position", position, "a.u."),
            Variable("speed", speed, "a.u./bin"),
            Variable("head direction", direction, "rad", circular=True),
        ),
        counts=counts,
        unit_names=("simulated unit",),
        truth={"position": place, "speed": _no_effect, "head direction": _direction_tuning},
        source=f"simulation (T={n_samples}, seed={seed})",
    )


def simulate_binned_truth(n_samples: int = 10_000, seed: int = 0, bin_width: float = 0.02,
                          bins=(10, 6, 8)) -> Session:
    """A session whose true log rate is piecewise constant on the explorer's own bins: position
    (a reflected random walk in [0, 1]) and head direction (a random walk on the circle) each get
    one random effect per bin; speed has none. With the same bin counts, a one-hot GLM can
    represent the truth exactly, which makes its bands and variable selection checkable."""
    if int(n_samples) < 2:
        raise InputError("a simulation needs at least 2 samples")
    rng = np.random.default_rng(seed)
    position = np.abs(np.mod(np.cumsum(rng.normal(0.0, 0.05, n_samples)) + 1.0, 2.0) - 1.0)
    speed = np.abs(np.diff(position, prepend=position[0]))
    direction = np.mod(np.cumsum(rng.normal(0.0, 0.2, n_samples)) + np.pi, 2 * np.pi) - np.pi
    n_pos, _, n_dir = bins
    pos_binning = make_binning(position, n_pos)
    dir_binning = make_binning(direction, n_dir, circular=True)
    pos_effect = rng.normal(0.0, 0.5, n_pos)
    dir_effect = rng.normal(0.0, 0.5, n_dir)
    place = partial(_binned_effect, binning=pos_binning, effect=pos_effect)
    heading = partial(_binned_effect, binning=dir_binning, effect=dir_effect)
    intercept = np.log(0.3)
    counts = rng.poisson(np.exp(intercept + place(position) + heading(direction)))
    return make_session(
        bin_width=bin_width,
        variables=(
            Variable("position", position, "a.u.", default_bins=n_pos),
            Variable("speed", speed, "a.u./bin", default_bins=bins[1]),
            Variable("head direction", direction, "rad", circular=True, default_bins=n_dir),
        ),
        counts=counts,
        unit_names=("simulated unit",),
        truth={"position": place, "speed": _no_effect, "head direction": heading},
        truth_intercept=intercept,
        source=f"piecewise-constant simulation (T={n_samples}, seed={seed})",
    )


def _binned_effect(x, binning, effect):
    return effect[bin_index(x, binning)]


def simulate_place_cells(session: Session, n_units: int, seed: int = 0) -> np.ndarray:
    """Spike counts (samples, ``n_units``) of place cells on ``session``'s ``position``: unit i
    has log rate -3 + 3 exp(-(position - c_i)^2 / (2 w^2)) per bin, its centre c_i uniform
    between the 5th and 95th percentiles of position, w 5% of that span. Counts are int16,
    simulated one unit at a time, so 200 units at T = 1e6 fit in memory."""
    if int(n_units) < 1:
        raise InputError("simulate at least one unit")
    rng = np.random.default_rng(seed)
    position = session.variable("position").values
    low, high = np.percentile(position, [5, 95])
    width = 0.05 * (high - low)
    counts = np.empty((int(n_units), position.size), np.int16)
    for i, centre in enumerate(rng.uniform(low, high, int(n_units))):
        field = np.exp(-((position - centre) ** 2) / (2.0 * width**2))
        counts[i] = rng.poisson(np.exp(-3.0 + 3.0 * field))
    return counts.T
