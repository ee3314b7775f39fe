"""Seeded synthetic sessions with known truth.

``simulate_session``: one unit with a place field, head-direction tuning, no speed effect.

    position  = cumsum(N(0, 0.3))        speed = |diff(position)|
    direction = wrap(cumsum(N(0, 0.2)))  in [-pi, pi)
    log rate  = -(position - c)^2 / (2 (0.3 sd)^2) + cos(direction) - 1,   c = mean(position)
    counts    ~ Poisson(exp(log rate))   per time bin

``simulate_history_session``: three units with spike history, a coupling and an event kernel
(known filters, ``Session.lag_truth``), sampled bin by bin (see its docstring).
``simulate_binned_truth`` and ``simulate_place_cells``: see their docstrings.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .encoding import bin_index, make_binning
from .errors import InputError
from .sequential import MAX_SIMULATED_RATE_HZ, causal_filter, simulate_with_history
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


# --- known lag filters -------------------------------------------------------------------------

CELL_A, CELL_B, CELL_C = "cell A", "cell B", "cell C"
EVENT = "reward"
HISTORY_WINDOW, COUPLING_WINDOW, EVENT_WINDOW = 0.25, 0.25, 0.5  # s
EVENT_RATE = 0.1  # rewards per second


def burst_history(lag):
    """Log-rate change ``lag`` seconds after a spike of cell A: a refractory dip (-4 at 10 ms,
    recovering with a 15 ms time constant), then a burst bump (+1 at 60 ms, sd 20 ms)."""
    ms = np.asarray(lag, float) * 1e3
    return -4.0 * np.exp(-(ms - 10.0) / 15.0) + np.exp(-((ms - 60.0) ** 2) / (2 * 20.0**2))


def refractory_history(lag):
    """Log-rate change after a spike of cells B and C: a refractory dip only (-3 at 10 ms,
    recovering with a 20 ms time constant)."""
    return -3.0 * np.exp(-(np.asarray(lag, float) * 1e3 - 10.0) / 20.0)


def coupling_kernel(lag):
    """Log-rate change of cell A ``lag`` seconds after a spike of cell B: an alpha function
    peaking at +1 at 30 ms."""
    ratio = np.asarray(lag, float) / 0.03
    return ratio * np.exp(1.0 - ratio)


def reward_kernel(lag):
    """Log-rate change of cell A ``lag`` seconds after a reward: +1.2 at 150 ms (sd 60 ms)."""
    return 1.2 * np.exp(-((np.asarray(lag, float) - 0.15) ** 2) / (2 * 0.06**2))


def simulate_history_session(n_samples: int = 100_000, seed: int = 0, bin_width: float = 0.01
                             ) -> Session:
    """Three units whose truth has lag filters on top of place and head-direction tuning.

    Behaviour: position a reflected random walk in [0, 1], head direction a random walk on the
    circle, speed |diff(position)| (no effect). Rewards arrive as a Poisson train
    (``EVENT_RATE``), the session's event ``"reward"``. Log rate per bin, with lags in bins
    l = 1..W and ``f(l * bin_width)`` the filters above:

    - cell B (the driver): log(5 Hz) + 1.5 field(0.45) + refractory history;
    - cell A (the target): log(3 Hz) + 2 field(0.6) + (cos(direction) - 1) / 2 + burst history
      + coupling from cell B + reward kernel;
    - cell C (A's twin): A's field and direction tuning + refractory history, no coupling: it
      shares A's place field, so a model without position sees it "drive" A.

    field(c) = exp(-(position - c)^2 / (2 0.1^2)). Cells B and C are sampled first, then A, each
    bin by bin (:func:`glm_core.sequential.simulate_with_history`, rate capped at
    ``MAX_SIMULATED_RATE_HZ``: the mean rates stay bounded over any length, and the cap binds in
    about 0.1% of cell A's bins, in bursts at the centre of its field). ``unit_truth`` holds the
    behavioural effects and intercepts (the log rate with no recent spike, coupling or reward);
    ``lag_truth`` the filters per lag.
    """
    n_samples = int(n_samples)
    window = _window(EVENT_WINDOW, bin_width)
    if n_samples < 2 * window:
        raise InputError(f"a simulation with lag filters needs at least {2 * window} samples")
    rng = np.random.default_rng(seed)
    position = np.abs(np.mod(np.cumsum(rng.normal(0.0, 0.01, n_samples)) + 1.5, 2.0) - 1.0)
    speed = np.abs(np.diff(position, prepend=position[0]))
    direction = np.mod(np.cumsum(rng.normal(0.0, 0.1, n_samples)) + np.pi, 2 * np.pi) - np.pi
    rewards = rng.poisson(EVENT_RATE * bin_width, n_samples).astype(float)
    field_a = partial(_field, centre=0.6, height=2.0)
    field_b = partial(_field, centre=0.45, height=1.5)
    heading = _half_cosine
    no_speed = {"speed": _no_effect}
    unit_truth = {
        CELL_A: ({"position": field_a, "head direction": heading, **no_speed},
                 np.log(3.0 * bin_width)),
        CELL_B: ({"position": field_b, "head direction": _no_effect, **no_speed},
                 np.log(5.0 * bin_width)),
        CELL_C: ({"position": field_a, "head direction": heading, **no_speed},
                 np.log(3.0 * bin_width)),
    }
    lags = {name: np.arange(1, _window(w, bin_width) + 1) * bin_width
            for name, w in (("history", HISTORY_WINDOW), ("coupling", COUPLING_WINDOW),
                            ("event", EVENT_WINDOW))}
    lag_truth = {
        CELL_A: {"history": burst_history(lags["history"]),
                 f"coupling:{CELL_B}": coupling_kernel(lags["coupling"]),
                 f"event:{EVENT}": reward_kernel(lags["event"])},
        CELL_B: {"history": refractory_history(lags["history"])},
        CELL_C: {"history": refractory_history(lags["history"])},
    }
    values = {"position": position, "head direction": direction, "speed": speed}
    seeds = rng.integers(0, 2**63, 3)
    counts = {}
    for name, unit_seed in zip((CELL_B, CELL_C, CELL_A), seeds):
        effects, intercept = unit_truth[name]
        drive = intercept + sum(f(values[key]) for key, f in effects.items())
        filters = lag_truth[name]
        if f"coupling:{CELL_B}" in filters:
            drive = drive + causal_filter(counts[CELL_B], filters[f"coupling:{CELL_B}"])
        if f"event:{EVENT}" in filters:
            drive = drive + causal_filter(rewards, filters[f"event:{EVENT}"])
        counts[name] = simulate_with_history(drive, filters["history"], seed=unit_seed,
                                             max_count=MAX_SIMULATED_RATE_HZ * bin_width).counts
    return make_session(
        bin_width=bin_width,
        variables=(
            Variable("position", position, "a.u."),
            Variable("speed", speed, "a.u./bin", default_include=False),
            Variable("head direction", direction, "rad", circular=True),
        ),
        counts=np.column_stack([counts[name] for name in unit_truth]),
        unit_names=tuple(unit_truth),
        truth=unit_truth[CELL_A][0],
        truth_intercept=unit_truth[CELL_A][1],
        unit_truth=unit_truth,
        lag_truth=lag_truth,
        events={EVENT: rewards},
        source=f"simulation with spike history (T={n_samples}, seed={seed})",
    )


def _window(seconds: float, bin_width: float) -> int:
    return max(2, int(round(seconds / bin_width)))


def _field(x, centre, height, width=0.1):
    return height * np.exp(-((np.asarray(x, float) - centre) ** 2) / (2.0 * width**2))


def _half_cosine(theta):
    return 0.5 * (np.cos(theta) - 1.0)
