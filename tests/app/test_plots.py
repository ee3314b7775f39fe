"""Tuning-curve figures without a browser: built once by HoloViews, then updated in place;
few-valued variables as points; 95% bands; axes, legend; the notebook explorer."""

from dataclasses import replace

import numpy as np
import panel as pn
import pytest
from bokeh.models import ColumnDataSource, Legend, Line, Patch, Scatter, Segment

from glm_core.curve_display import centred_on_peak
from tests.compile_counts import CompileCounter
from widgets import explorer
from widgets.plots import TuningCurvePlot, TuningCurvesView, tuning_curve_plot
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING


def banded(curve, width=0.2):
    """``curve`` with a band of +-``width`` around the model rate."""
    return replace(curve, lower=curve.model * (1 - width), upper=curve.model * (1 + width))


@pytest.fixture(scope="module")
def state():
    s = ExplorerState(n_samples=5_000)
    s.start()
    return s


def test_a_refit_updates_the_same_figures_with_the_new_curves(state):
    view = TuningCurvesView(state)
    figures = {name: plot.figure for name, plot in view.plots.items()}
    state.variables[0].log_strength = -0.5
    try:
        assert {name: plot.figure for name, plot in view.plots.items()} == figures
        for curve in map(centred_on_peak, state.curves):  # as drawn
            data = view.plots[curve.name].source("model").data
            x, y = list(data.values())
            np.testing.assert_array_equal(x, curve.centres)
            np.testing.assert_array_equal(y, curve.model)
    finally:
        state.variables[0].log_strength = -3.0


def test_axes_say_what_they_show_and_the_legend_is_outside(state):
    view = TuningCurvesView(state)
    units = {"position": "a.u.", "speed": "a.u./bin", "head direction": "rad"}
    for name, plot in view.plots.items():
        assert plot.figure.xaxis[0].axis_label == f"{name} ({units[name]})"
        assert plot.figure.yaxis[0].axis_label == "rate (Hz)"
        assert not any(isinstance(r, Legend) for r in plot.figure.center)
        assert any(isinstance(r, Legend) for r in plot.figure.above + plot.figure.right)


def test_a_two_valued_variable_is_drawn_as_points_not_a_line():
    state = ExplorerState(source=RECORDING)
    state.start()
    view = TuningCurvesView(state)
    direction = view.plots["running direction"]
    glyphs = [r.glyph for r in direction.figure.renderers]
    assert not any(isinstance(g, Line) for g in glyphs)
    assert isinstance(direction.glyph("model").glyph, Scatter)
    assert direction.figure.xaxis[0].axis_label == "running direction (+1 = away from start)"
    assert any(isinstance(r.glyph, Line) for r in view.plots["linear position"].figure.renderers)


def test_bands_are_shaded_and_toggled_without_rebuilding(state):
    curve = banded(state.curves[0])
    plot = TuningCurvePlot(curve)
    band = plot.glyph("band")
    assert isinstance(band.glyph, Patch) and band.visible
    x, y = plot.source("band").data["x"], plot.source("band").data["y"]
    np.testing.assert_array_equal(x, np.r_[curve.centres, curve.centres[::-1]])
    np.testing.assert_array_equal(y, np.r_[curve.upper, curve.lower[::-1]])
    wider = banded(state.curves[0], 0.5)
    plot.update(wider)
    np.testing.assert_array_equal(plot.source("band").data["y"], np.r_[wider.upper,
                                                                    wider.lower[::-1]])
    plot.show_bands(False)
    assert not band.visible and plot.glyph("band") is band


def test_the_band_of_a_few_valued_variable_is_error_bars_inside_the_rate_axis(state):
    """Segments (glyphs) rather than Bokeh's Whisker annotation: the browser's rate axis, which
    follows the renderers only, then makes room for the upper bar (issue 18, item 7)."""
    curve = banded(state.curves[0])
    few = replace(curve, centres=curve.centres[:2], model=curve.model[:2],
                  empirical=curve.empirical[:2], truth=None, lower=curve.lower[:2],
                  upper=curve.upper[:2])
    plot = TuningCurvePlot(few)
    bars = plot.glyph("band")
    assert isinstance(bars.glyph, Segment) and bars.visible
    assert bars in plot.figure.renderers
    data = plot.source("band").data
    np.testing.assert_array_equal(data[bars.glyph.y0], few.lower)
    np.testing.assert_array_equal(data[bars.glyph.y1], few.upper)
    np.testing.assert_array_equal(data[bars.glyph.x0], few.centres)
    np.testing.assert_array_equal(data[bars.glyph.x1], few.centres)
    wider = banded(few, 0.5)
    plot.update(wider)
    np.testing.assert_array_equal(plot.source("band").data[bars.glyph.y1], wider.upper)
    plot.show_bands(False)
    assert not bars.visible


def test_the_view_follows_the_show_bands_setting(state):
    view = TuningCurvesView(state)
    state.curves = [banded(c) for c in state.curves]
    bands = [plot.glyph("band") for plot in view.plots.values()]
    assert all(b is not None and b.visible for b in bands)
    state.show_bands = False
    assert [plot.glyph("band") for plot in view.plots.values()] == bands
    assert not any(b.visible for b in bands)
    state.show_bands = True


def test_explorer_renders_in_a_notebook_and_sessions_share_only_read_only_data():
    first = explorer(n_samples=4_000)  # compiles the solvers for this shape once
    with CompileCounter() as counter:
        second = explorer(n_samples=4_000)
    assert counter.count == 0
    assert first.state.session is second.state.session  # one data set, shared read-only
    second.state.variables[0].log_strength = -0.5
    assert first.state.variables[0].log_strength == -3.0
    assert not np.array_equal(first.state.curves[0].model, second.state.curves[0].model)

    with pn.config.set(console_output="disable"):  # the console needs IPython, a kernel's
        bundle, _ = first._repr_mimebundle_()
    assert "application/vnd.holoviews_exec.v0+json" in bundle and "text/html" in bundle
    root, _ = next(iter(first._models.values()))  # the model the notebook displays
    models = {s.data["model"].tobytes() for s in root.select({"type": ColumnDataSource})
              if "model" in s.data}
    for curve in map(centred_on_peak, first.state.curves):  # as drawn
        assert curve.model.tobytes() in models, curve.name


def test_a_later_figure_of_the_same_structure_is_an_independent_copy(state):
    """Sessions get copies of one HoloViews-built figure: each with its own models and ids, fed
    its own curve and settings, never writing into another's."""
    curve = state.curves[0]
    first = tuning_curve_plot(curve)
    second = tuning_curve_plot(curve, show_bands=False, presentation=True)
    ids = [{m.id for m in plot.figure.references()} for plot in (first, second)]
    assert len(ids[1]) == len(ids[0]) and not ids[0] & ids[1]
    doubled = replace(curve, model=2 * curve.model)
    second.update(doubled)
    for plot, expected in ((first, curve.model), (second, doubled.model)):
        np.testing.assert_array_equal(plot.source("model").data["model"], expected)
        assert plot.glyph("model points").data_source is plot.source("model")
    assert first.glyph("band").visible and not second.glyph("band").visible
    assert (first.figure.title.text_font_size, second.figure.title.text_font_size) == (
        "15px", "27px")
    assert second.figure.xaxis[0].axis_label == first.figure.xaxis[0].axis_label
