"""The held-out score's buttons as jobs (widgets/jobs.py, heldout_jobs.py) outside a server: they
run synchronously, with glm_core's answers; a job's InputError reaches the page's message."""

import numpy as np
import pytest

from glm_core import explorer
from glm_core.errors import InputError
from widgets.heldout_jobs import PATH_POINTS
from widgets.jobs import Jobs
from widgets.state import ExplorerState


@pytest.fixture(scope="module")
def state():
    state = ExplorerState(n_samples=3_000, seed=2)
    state.start()
    state.regularizer = "Lasso"
    return state


def test_best_strengths_moves_the_sliders_to_the_ascents_answer_and_draws_its_paths(state):
    enc, start = state.encoding, [r.log_strength for r in state.variables]
    # from the page's warm start (its last cross-validation), as the job does
    expected = explorer.best_strengths(enc, [True] * 3, start, "Lasso", PATH_POINTS,
                                       init=state._cv.theta)
    state.best_strengths()
    logs = [r.log_strength for r in state.variables]
    assert logs == [round(x, 2) for x in expected]
    assert set(state.paths) == {r.name for r in state.variables}
    for row in state.variables:
        x, mean, _, current = state.paths[row.name]
        assert current == row.log_strength and np.array_equal(x, PATH_POINTS)
    reference = explorer.path(enc, [True] * 3, [10.0**x for x in logs], "Lasso", 0,
                              PATH_POINTS)
    # the page's path is warm-started from its last cross-validation, this one cold: Lasso's
    # weakest points stop at the solver's tolerance from different sides (about 0.01 apart)
    assert np.allclose(state.paths[state.variables[0].name][1], [s.pooled for s in reference],
                       atol=0.02)


def test_selection_is_glm_cores_forward_selection(state):
    strengths = [10.0**r.log_strength for r in state.variables]
    state.select_variables()
    expected = explorer.forward_select_encoding(state.encoding, strengths, "Lasso")
    assert state.selection.selected == expected.selected


def test_a_jobs_input_error_goes_to_failed_and_nothing_is_applied():
    jobs, applied, failed = Jobs(), [], []

    def compute(on_step):
        on_step(1, 2)
        raise InputError("no data")

    jobs.run("test", compute, applied.append, failed.append)
    assert [str(e) for e in failed] == ["no data"] and not applied and not jobs.running
