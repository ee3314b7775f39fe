"""A seeded open-field session with known truth: a grid cell, a place cell, a head-direction cell
and an untuned unit.

The animal runs in a square box (``box`` cm, reflecting walls): its head direction is a random
walk on the circle, its speed a positive Ornstein-Uhlenbeck process (mean 15 cm/s, 1 s time
constant), and it moves along its head direction; the unbounded path is folded into the box,
which is the same as reflecting it at the walls. Each unit's log rate per bin is an intercept
plus its effects (``Session.unit_truth``):

- grid cell: ``log(30) * (g(x, y) + 1.5) / 4.5`` with g the sum of three cosines whose wave
  vectors are 60 degrees apart (spacing 40 cm), from 0.5 Hz between fields to 15 Hz at their
  centres;
- place cell: a 2-D Gaussian field (centre (65, 35) cm, sd 12 cm), 0.5 Hz to 15 Hz;
- head-direction cell: ``2.5 (cos(hd - pi/3) - 1)``, 20 Hz at its preferred direction;
- untuned unit: 3 Hz everywhere.

Speed affects no unit.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from .errors import InputError
from .session import Session, Variable, make_session

GRID_CELL, PLACE_CELL, HD_CELL, UNTUNED = (
    "grid cell", "place cell", "head-direction cell", "untuned unit")
GRID_SPACING = 40.0  # cm
MEAN_SPEED, SPEED_SD, SPEED_TAU = 15.0, 7.0, 1.0  # cm/s, cm/s, s


def grid_pattern(x, y, spacing=GRID_SPACING, orientation=0.1, phase=(20.0, 10.0)):
    """Sum of three plane waves 60 degrees apart: maxima 3 on a triangular lattice of the given
    spacing, minima -1.5."""
    k = 4 * np.pi / (np.sqrt(3) * spacing)
    px, py = np.asarray(x, float) - phase[0], np.asarray(y, float) - phase[1]
    return sum(np.cos(k * (np.cos(a) * px + np.sin(a) * py))
               for a in orientation + np.deg2rad([0.0, 60.0, 120.0]))


def _grid_effect(x, y):
    return np.log(30.0) * (grid_pattern(x, y) + 1.5) / 4.5


def _place_effect(x, y, centre=(65.0, 35.0), width=12.0):
    d2 = (np.asarray(x, float) - centre[0]) ** 2 + (np.asarray(y, float) - centre[1]) ** 2
    return np.log(30.0) * np.exp(-d2 / (2 * width**2))


def _direction_effect(theta, preferred=np.pi / 3, kappa=2.5):
    return kappa * (np.cos(np.asarray(theta, float) - preferred) - 1.0)


def _reflect(path, box):
    """An unbounded path folded into [0, box]: the path reflected at the walls."""
    return box - np.abs(np.mod(path, 2 * box) - box)


def log_rate(effects, intercept, values, n_samples) -> np.ndarray:
    """Intercept plus every effect, at the samples' ``values`` (name -> array)."""
    total = np.full(n_samples, float(intercept))
    for key, f in effects.items():
        total += f(*(values[n] for n in ((key,) if isinstance(key, str) else key)))
    return total


def simulate_open_field(n_samples: int = 50_000, seed: int = 0, bin_width: float = 0.02,
                        box: float = 100.0) -> Session:
    """Simulate ``n_samples`` bins of ``bin_width`` s of an open-field session in a ``box`` cm
    square; ``unit_truth`` holds each unit's log-rate effects, the grid and place cells' as a
    joint effect of ("x", "y")."""
    n_samples = int(n_samples)
    if n_samples < 2:
        raise InputError("a simulation needs at least 2 samples")
    rng = np.random.default_rng(seed)
    direction = np.mod(np.cumsum(rng.normal(0.0, 0.12, n_samples)) + rng.uniform(0, 2 * np.pi),
                       2 * np.pi) - np.pi
    decay = bin_width / SPEED_TAU  # AR(1) form of the Ornstein-Uhlenbeck process
    drive = SPEED_SD * np.sqrt(2 * decay) * rng.normal(0.0, 1.0, n_samples)
    speed = np.abs(MEAN_SPEED + lfilter([1.0], [1.0, decay - 1.0], drive))
    start = rng.uniform(0.0, box, 2)
    x = _reflect(start[0] + np.cumsum(speed * bin_width * np.cos(direction)), box)
    y = _reflect(start[1] + np.cumsum(speed * bin_width * np.sin(direction)), box)
    per_bin = np.log(bin_width)
    unit_truth = {
        GRID_CELL: ({("x", "y"): _grid_effect}, np.log(0.5) + per_bin),
        PLACE_CELL: ({("x", "y"): _place_effect}, np.log(0.5) + per_bin),
        HD_CELL: ({"head direction": _direction_effect}, np.log(20.0) + per_bin),
        UNTUNED: ({}, np.log(3.0) + per_bin),
    }
    values = {"x": x, "y": y, "head direction": direction}
    counts = np.stack([rng.poisson(np.exp(log_rate(effects, intercept, values, n_samples)))
                       for effects, intercept in unit_truth.values()], 1)
    return make_session(
        bin_width=bin_width,
        variables=(
            Variable("x", x, "cm"),
            Variable("y", y, "cm"),
            Variable("head direction", direction, "rad", circular=True, default_bins=16),
            Variable("speed", speed, "cm/s"),
        ),
        counts=counts,
        unit_names=tuple(unit_truth),
        unit_truth=unit_truth,
        source=f"open-field simulation (T={n_samples}, seed={seed})",
    )
