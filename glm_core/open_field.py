"""A seeded open-field session with known truth: a grid cell, a place cell, a head-direction cell
and an untuned unit, and on request a population of more place, grid and head-direction cells.

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

Speed affects no unit. With ``n_units`` above 4, units 5 onwards repeat place, grid, place,
head-direction cell, each with its own field drawn from a second seeded stream (the behaviour and
the first four units stay the same): place fields centred anywhere in the inner 80% of the box
(sd 8 to 15 cm, 0.5 Hz to a peak of 8 to 20 Hz), grids of spacing 35 to 60 cm at any orientation
and phase (0.5 Hz to 8 to 15 Hz), head-direction cells preferring any direction (concentration
1.5 to 3, peak 10 to 25 Hz).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.signal import lfilter

from .errors import InputError
from .session import Session, Variable, make_session

GRID_CELL, PLACE_CELL, HD_CELL, UNTUNED = (
    "grid cell", "place cell", "head-direction cell", "untuned unit")
GRID_SPACING = 40.0  # cm
MEAN_SPEED, SPEED_SD, SPEED_TAU = 15.0, 7.0, 1.0  # cm/s, cm/s, s
MAX_UNITS = 200  # of the simulated population


def grid_pattern(x, y, spacing=GRID_SPACING, orientation=0.1, phase=(20.0, 10.0)):
    """Sum of three plane waves 60 degrees apart: maxima 3 on a triangular lattice of the given
    spacing, minima -1.5."""
    k = 4 * np.pi / (np.sqrt(3) * spacing)
    px, py = np.asarray(x, float) - phase[0], np.asarray(y, float) - phase[1]
    return sum(np.cos(k * (np.cos(a) * px + np.sin(a) * py))
               for a in orientation + np.deg2rad([0.0, 60.0, 120.0]))


def _grid_effect(x, y, gain=np.log(30.0), spacing=GRID_SPACING, orientation=0.1,
                 phase=(20.0, 10.0)):
    return gain * (grid_pattern(x, y, spacing, orientation, phase) + 1.5) / 4.5


def _place_effect(x, y, centre=(65.0, 35.0), width=12.0, gain=np.log(30.0)):
    d2 = (np.asarray(x, float) - centre[0]) ** 2 + (np.asarray(y, float) - centre[1]) ** 2
    return gain * np.exp(-d2 / (2 * width**2))


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


def population_truth(n_units: int, seed: int, box: float, bin_width: float) -> dict:
    """Name -> (effects, intercept) of the simulated units after the first four (see the module
    docstring), from the seeded stream ``(seed, 1)``."""
    rng = np.random.default_rng([seed, 1])
    per_bin, base = np.log(bin_width), np.log(0.5)
    truth = {}
    for i in range(4, n_units):
        kind = i % 4
        if kind in (0, 2):
            effect = partial(_place_effect, centre=tuple(rng.uniform(0.1 * box, 0.9 * box, 2)),
                             width=rng.uniform(8.0, 15.0), gain=np.log(rng.uniform(8, 20) / 0.5))
            truth[f"place cell {i + 1}"] = ({("x", "y"): effect}, base + per_bin)
        elif kind == 1:
            spacing = rng.uniform(35.0, 60.0)
            effect = partial(_grid_effect, gain=np.log(rng.uniform(8, 15) / 0.5), spacing=spacing,
                             orientation=rng.uniform(0, np.pi / 3),
                             phase=tuple(rng.uniform(0, spacing, 2)))
            truth[f"grid cell {i + 1}"] = ({("x", "y"): effect}, base + per_bin)
        else:
            effect = partial(_direction_effect, preferred=rng.uniform(-np.pi, np.pi),
                             kappa=rng.uniform(1.5, 3.0))
            truth[f"head-direction cell {i + 1}"] = ({"head direction": effect},
                                                     np.log(rng.uniform(10, 25)) + per_bin)
    return truth


def simulate_open_field(n_samples: int = 50_000, seed: int = 0, bin_width: float = 0.02,
                        box: float = 100.0, n_units: int = 4) -> Session:
    """Simulate ``n_samples`` bins of ``bin_width`` s of an open-field session in a ``box`` cm
    square with ``n_units`` units (4 to ``MAX_UNITS``; the first four always the same);
    ``unit_truth`` holds each unit's log-rate effects, the grid and place cells' as a joint
    effect of ("x", "y")."""
    n_samples = int(n_samples)
    if n_samples < 2:
        raise InputError("a simulation needs at least 2 samples")
    if not 4 <= int(n_units) <= MAX_UNITS:
        raise InputError(f"the open field simulates 4 to {MAX_UNITS} units, not {n_units}")
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
        **population_truth(int(n_units), seed, box, bin_width),
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
        source=f"open-field simulation (T={n_samples}, seed={seed}"
               + (f", {int(n_units)} units)" if int(n_units) != 4 else ")"),
    )
