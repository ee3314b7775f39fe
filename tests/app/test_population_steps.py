""""Fit all units" counts its steps (issue 17): the population fit calls ``on_step`` after every
unit's fit and after their held-out scores, so the job's progress reads "k/n", and a Cancel
(``on_step`` raising ``Cancelled``) stops it between the two."""

import numpy as np
import pytest

from widgets.jobs import Cancelled
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING


@pytest.fixture(scope="module")
def state():
    state = ExplorerState(source=RECORDING)
    state.start()
    return state


def test_the_population_job_reaches_n_of_n(state):
    steps = []
    _, fit = state._population_job(True)(lambda done, total: steps.append((done, total)))
    assert steps == [(1, 2), (2, 2)]
    assert np.isfinite(fit.test_bits_per_spike).any()
    steps.clear()
    state._population_job(False)(lambda done, total: steps.append((done, total)))
    assert steps == [(1, 1)]  # without held-out scores: one step


def test_a_cancel_stops_the_population_job_between_its_steps(state):
    steps = []

    def cancel_at_first(done, total):
        steps.append((done, total))
        raise Cancelled

    with pytest.raises(Cancelled):
        state._population_job(True)(cancel_at_first)
    assert steps == [(1, 2)]  # the held-out scores never started
    assert state.population is None  # nothing applied
