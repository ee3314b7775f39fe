"""Best strengths' coordinate ascent (``explorer.ascent_strengths``, coarse-to-fine): against a
brute force of the same objective, every point of every path, and its progress callback."""

import numpy as np
import pytest

from glm_core import explorer
from glm_core.simulation import simulate_session

GRID = np.linspace(-6.0, 0.0, 25)
TOL = 1e-4  # bits/spike: the held-out score's plateaus here (its SE is about 0.05)


def mean_scores(enc, include, logs, leaf):
    """Brute force: the pooled held-out score at every grid point of one leaf's path."""
    return np.array([s.pooled for s in explorer.path(enc, include, [10.0**x for x in logs],
                                                   "Lasso", leaf, GRID)])


def exhaustive_ascent(enc, include, logs, rounds=2):
    """The reference: coordinate ascent over every grid point of every path."""
    logs = list(logs)
    for _ in range(rounds):
        for leaf, keep in enumerate(include):
            if keep:
                logs[leaf] = float(GRID[int(np.nanargmax(mean_scores(enc, include, logs,
                                                                     leaf)))])
    return logs


@pytest.fixture(scope="module")
def problem():
    session = simulate_session(6_000, seed=1)
    return explorer.encode(session, 0, [12, 8, 10]), [True, True, True]


def test_ascent_reaches_the_grid_optimum_of_each_path(problem):
    enc, include = problem
    steps = []
    logs = explorer.ascent_strengths(enc, include, [-3.0] * 3, "Lasso", GRID,
                                     on_step=lambda done, total: steps.append((done, total)))
    assert all(x in GRID for x in logs)
    for leaf in range(3):
        means = mean_scores(enc, include, logs, leaf)
        here = int(np.flatnonzero(GRID == logs[leaf])[0])
        best = int(np.nanargmax(means))
        # at the path's optimum within one grid step, or on its plateau
        assert abs(here - best) <= 1 or means[here] >= means[best] - TOL, (leaf, here, best)
    reference = exhaustive_ascent(enc, include, [-3.0] * 3)

    def score(x):
        return explorer.cross_validate_encoding(enc, include, [10.0**v for v in x], "Lasso").pooled

    assert score(logs) >= score(reference) - TOL
    # progress: one step per scored point, fewer than the exhaustive ascent's 2 x 3 x 25
    done = [d for d, _ in steps]
    assert done == list(range(1, len(done) + 1)) and len(done) < 2 * 3 * 25 * 0.7
    assert all(d <= t for d, t in steps)


def test_on_step_may_stop_the_ascent(problem):
    enc, include = problem

    class Stop(Exception):
        pass

    def stop(done, total):
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        explorer.ascent_strengths(enc, include, [-3.0] * 3, "Lasso", GRID, on_step=stop)
