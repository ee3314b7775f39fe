"""The coupling matrix in the population card without a browser: the button's job gives
glm_core's coupling matrix of the most active units with the page's behavioural model (the
history simulation opens with a history leaf, which the matrix leaves out), the card draws it as
a units x units heatmap, and another data set clears it."""

import holoviews as hv
import numpy as np

from glm_core.coupling_matrix import coupling_matrix, most_active
from widgets.coupling import coupling_view
from widgets.state import ExplorerState
from widgets.vocabulary import HISTORY_SIMULATION, SIMULATION


def shown(pane):
    return pane.object() if callable(pane.object) else pane.object


def test_the_coupling_job_gives_glm_cores_matrix_and_draws_it():
    state = ExplorerState(source=HISTORY_SIMULATION, n_samples=12_000)
    state.start()
    assert state.error == "" and len(state.session.unit_names) == 3
    assert state.encoding.lags  # the history leaf
    view = coupling_view(state)
    pane = view.objects[-1]
    assert isinstance(shown(pane), hv.Div)
    state.compute_coupling()
    session, matrix = state.coupling
    assert session is state.session
    include, strengths = state._settings()
    n = len(state.encoding.behaviour_leaves)
    expected = coupling_matrix(session, state.encoding, most_active(session), include[:n],
                               strengths[:n], state.regularizer)
    np.testing.assert_array_equal(matrix.held_out_gain, expected.held_out_gain)
    np.testing.assert_array_equal(matrix.peak_gain, expected.peak_gain)
    heat = shown(pane)
    assert isinstance(heat, hv.HeatMap) and len(heat) == 9
    a, b = session.unit_names.index("cell A"), session.unit_names.index("cell B")
    assert np.nanargmax(matrix.held_out_gain) == a * 3 + b  # A is driven by B
    state.source = SIMULATION
    assert isinstance(shown(pane), hv.Div)  # the matrix was of the other data set
