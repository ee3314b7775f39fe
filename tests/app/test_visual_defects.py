"""Issue 18's visual defects that show without a browser: the rate axis, the running-direction
ticks, circular curves centred on their peak (items 7, 13, 14)."""

from dataclasses import replace

import holoviews as hv
import numpy as np
import pytest
from bokeh.models import DataRange1d, GlyphRenderer, Image, Legend

from glm_core.curve_display import EDGE, centred_on_peak, value_labels
from glm_core.encoding import make_binning
from glm_core.tuning import TuningCurve
from widgets.maps import TuningMapsView
from widgets.paths import render_paths
from widgets.plots import TuningCurvePlot, TuningCurvesView
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING


@pytest.fixture(scope="module")
def state():
    s = ExplorerState(n_samples=5_000)
    s.start()
    return s


def _column(plot, layer):
    return np.asarray(plot.source(layer).data[plot.glyph(layer).glyph.y], float)


def test_a_rarely_visited_bin_is_marked_at_the_top_not_stretching_the_axis(state):
    curve = state.curves[1]
    empirical = np.array(curve.empirical, float)
    empirical[3] = 25 * np.nanmax(curve.model)  # one bin visited for a few samples
    plot = TuningCurvePlot(replace(curve, empirical=empirical))
    top = EDGE * max(np.nanmax(curve.model), np.nanmax(curve.upper), np.nanmax(curve.truth))
    shown, marked = _column(plot, "empirical"), _column(plot, "off scale")
    assert np.isnan(shown[3]) and marked[3] == pytest.approx(top)
    others = np.arange(len(empirical)) != 3
    np.testing.assert_array_equal(shown[others], empirical[others])
    assert np.isnan(marked[others]).all()
    assert plot.glyph("off scale").glyph.marker == "triangle"
    # the browser's rate axis follows every renderer's data: none is above the top
    assert isinstance(plot.figure.y_range, DataRange1d)
    for renderer in plot.figure.renderers:
        glyph, data = renderer.glyph, renderer.data_source.data
        for field in ("y", "y0", "y1"):
            if isinstance(getattr(glyph, field, None), str):
                values = np.asarray(data[getattr(glyph, field)], float)
                assert not (values[np.isfinite(values)] > top * (1 + 1e-9)).any()


def test_the_running_direction_ticks_read_the_values_it_takes():
    state = ExplorerState(source=RECORDING)
    state.start()
    view = TuningCurvesView(state)
    direction = view.plots["running direction"].figure
    ticks = direction.xaxis[0].ticker.ticks
    assert {direction.xaxis[0].major_label_overrides[t] for t in ticks} == {"-1", "+1"}
    assert direction.xaxis[0].axis_label == "running direction (+1 = away from start)"


def test_value_labels_only_where_each_bin_holds_one_value():
    binning = make_binning([-1.0, 1.0], 2)
    assert value_labels(np.array([-1.0, 1.0, 1.0, np.nan]), binning) == ("-1", "+1")
    assert value_labels(np.array([-1.0, -0.7, 1.0]), binning) is None
    assert value_labels(np.linspace(0, 1, 50), make_binning([0.0, 1.0], 8)) is None


def test_a_circular_curve_peaking_near_pi_is_drawn_as_one_peak():
    """Angles in [0, 2 pi) wrapped to [-pi, pi): a cell preferring pi had its peak split over
    both edges of the plot (issue 18, item 13)."""
    edges = np.linspace(-np.pi, np.pi, 21)
    centres = 0.5 * (edges[1:] + edges[:-1])
    rate = np.exp(3 * np.cos(centres - np.pi))  # peak at pi: both ends high
    curve_args = dict(name="heading", unit="rad", centres=centres, model=rate, empirical=rate,
                      truth=None, lower=0.8 * rate, upper=1.2 * rate)
    turned = centred_on_peak(TuningCurve(circular=True, **curve_args))
    peak = int(np.argmax(turned.model))
    assert 0 < peak < len(centres) - 1 and peak == len(centres) // 2
    assert turned.centres[peak] == pytest.approx(np.pi, abs=np.pi / 20)
    assert np.all(np.diff(turned.centres) > 0)  # one increasing axis
    np.testing.assert_allclose(np.diff(turned.centres), 2 * np.pi / 20)
    # each rate stays with its angle (mod 2 pi)
    back = np.mod(turned.centres + np.pi, 2 * np.pi) - np.pi
    order = np.argsort(back)
    np.testing.assert_allclose(back[order], centres, atol=1e-12)
    np.testing.assert_array_equal(turned.model[order], rate)
    np.testing.assert_array_equal(turned.upper[order], 1.2 * rate)
    linear = TuningCurve(circular=False, **curve_args)
    assert centred_on_peak(linear) is linear


def _mappers(view):
    """The colour mapper of each image of each shown map, in the order model, empirical, truth."""
    out = []
    for pane in view.__panel__().objects[0].objects:
        figure = pane.get_root()
        images = [r for r in figure.select({"type": GlyphRenderer}) if isinstance(r.glyph, Image)]
        out.append(images[0].glyph.color_mapper)
    return out


def _top(tuning_map):
    layers = [tuning_map.model, tuning_map.empirical, tuning_map.truth]
    return max(np.nanmax(layer) for layer in layers if layer is not None)


def test_the_maps_share_one_colour_range_from_zero_to_the_highest_rate(state):
    """Each image picked its own range: a flat GLM map at 0.83 Hz looked like a vivid place
    field beside a 50 Hz empirical map (issue 18, item 6)."""
    state.joint_map = True
    try:
        view = TuningMapsView(state)
        tuning_map = state.maps[0]
        top = _top(tuning_map)
        mappers = _mappers(view)
        assert len(mappers) == 2 + (tuning_map.truth is not None)
        assert all((m.low, m.high) == pytest.approx((0.0, top)) for m in mappers)
        state.joint_log_strength = 0.0  # the smoothest, flattest GLM map
        tuning_map = state.maps[0]
        top = _top(tuning_map)
        assert all((m.low, m.high) == pytest.approx((0.0, top)) for m in _mappers(view))
        assert np.nanmax(tuning_map.model) < 0.9 * top  # the GLM map no longer fills the range
    finally:
        state.joint_map = False


def test_the_path_plots_name_the_current_strength_and_the_best_point_in_a_legend():
    x = np.linspace(-3, 1, 9)
    mean = -(x + 1) ** 2
    figure = hv.render(render_paths({"speed": (x, mean, np.full(9, 0.1), -2.0)}))
    figures = [f for f in figure.select({"type": Legend})]
    labels = {item.label.value for legend in figures for item in legend.items}
    assert {"held-out", "current strength", "best"} <= labels
    current = next(item for legend in figures for item in legend.items
                   if item.label.value == "current strength").renderers[0]
    assert set(np.asarray(current.data_source.data[current.glyph.x])) == {-2.0}
    assert current.glyph.line_color == "#e6862a"
