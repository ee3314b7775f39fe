"""The Decode card without a browser (issue 20): what it decodes (the open field's default 2-D
map, with its joint leaf), that a new window or prior decodes again from the same fits (nothing
refitted, nothing compiled), a click on a time point shows that window's posterior, the
downloads, and bad input in the card's message."""

import json

import numpy as np
import pytest

from tests.compile_counts import CompileCounter
from widgets.decode import decode_view, nearest_window
from widgets.state import ExplorerState
from widgets.vocabulary import OPEN_FIELD


@pytest.fixture(scope="module")
def decoded():
    state = ExplorerState(source=OPEN_FIELD, n_samples=10_000, open_field_units=12, n_folds=4)
    state.start()
    assert state.session.unit_names[4] == "place cell 5" and len(state.session.unit_names) == 12
    view = decode_view(state)
    assert state.joint_map  # the default model's 2-D map (a joint leaf) decodes as it is
    state.decode()
    return state, view


def test_the_card_decodes_the_map_and_shows_the_summary(decoded):
    state, view = decoded
    decoding = state.decoding
    assert state.decode_target == ("x", "y") and decoding.names == ("x", "y")
    assert decoding.grid_shape == (20, 20) and decoding.posterior.shape[1] == 400
    assert state.decode_message == "" and state.population is not None
    summary = next(p for p in view.objects if "decode-summary" in p.css_classes)
    assert f"Median error {decoding.median_error:.3g} cm" in summary.object
    assert decoding.window_bins == 12  # 250 ms of 20 ms bins, rounded


def test_a_new_window_prior_or_target_decodes_again_without_refitting(decoded):
    state, _ = decoded
    population = state.population
    with CompileCounter() as compiles:
        state.decode_window_ms = 500.0
        assert state.decoding.window_bins == 25
        state.decode_prior = "continuity"
        assert state.decoding.sigma == 2.0
        state.decode_sigma = 4.0
        assert state.decoding.sigma == 4.0
        state.decode_target = "head direction"
        assert state.decoding.names == ("head direction",) and state.decoding.unit == "rad"
    assert compiles.count == 0 and state.population is population
    state.param.update(decode_prior="flat", decode_window_ms=250.0, decode_target=("x", "y"))


def test_a_click_shows_that_windows_posterior_and_the_downloads(decoded):
    state, view = decoded
    decoding = state.decoding
    plots_row = view.objects[-2]
    posterior_map = plots_row.objects[1]
    assert posterior_map.visible and not plots_row.objects[0].visible
    i = nearest_window(decoding, decoding.time_s[40] + 0.01)
    assert i == 40
    tap = posterior_map.objects[0].object.streams[0]  # the window pipe
    view.plots.taps[0].event(x=float(decoding.time_s[40]) + 0.01, y=0.0)  # a click near 40
    shown, index = tap.data
    assert shown is decoding and index == 40
    image = posterior_map.objects[0].object[()]
    np.testing.assert_allclose(image.Image.I.dimension_values(2, flat=False).T,
                               decoding.posterior[40].reshape(20, 20), rtol=1e-6)
    csv_download, json_download = view.objects[-1].objects
    lines = csv_download.callback().getvalue().splitlines()
    assert len(lines) == decoding.error.size + 1 and lines[0].startswith('"time_s","fold"')
    summary = json.loads(json_download.callback().getvalue())
    assert summary["median_error"] == pytest.approx(decoding.median_error)


def test_bad_input_says_so_in_the_card(decoded):
    state, _ = decoded
    state.decode_window_ms = 20_000.0  # longer than a fold's sections (10,000 x 20 ms / 20)
    assert state.decoding is None
    assert "longer than a fold's shortest contiguous section" in state.decode_message
    state.decode_window_ms = 250.0
    assert state.decoding is not None and state.decode_message == ""
    state.decode_target = "x"  # one variable of the 2-D map
    assert state.decoding is None and "x is part of the model's 2-D map" in state.decode_message
    state.decode_target = ("x", "y")
    assert state.decoding is not None
    state.variables[3].include = False  # speed out: the fits change
    assert "The fits changed" in state.decode_message
    state.decode_target = "speed"
    assert state.decoding is None and "speed is not in the model" in state.decode_message
    state.variables[3].include = True
    state.decode_target = ("x", "y")
    assert state.decoding is not None
    state.seed = 1  # a new data set: nothing decoded
    assert state.decoding is None and state.decode_message == ""
