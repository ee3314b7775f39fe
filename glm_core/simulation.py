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
