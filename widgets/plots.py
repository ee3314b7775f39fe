"""The tuning-curve figures: built once by HoloViews, then updated in place.

Each variable's tuning-curve figure is built once by HoloViews (layers, axes, labels, legend,
styles, hover) from its first curve. A refit then writes the new columns straight into the
ColumnDataSources HoloViews created, and both axes follow the data in the browser (Bokeh
``DataRange1d``), so that a refit (inside the one ``pn.io.hold`` the state opens around it) reaches
the browser as one small patch of data and nothing else. Re-rendering a HoloViews ``DynamicMap``
instead costs tens of milliseconds per plot on the server and re-sends ranges and glyph
properties. Plots are rebuilt only when their structure changes (another data set's variables, a
ground truth, bands, or a variable turning into a few-valued one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import holoviews as hv
import numpy as np
import panel as pn
from bokeh.model import Model
from bokeh.models import DataRange1d, FixedTicker

from glm_core.curve_display import centred_on_peak, off_scale, on_scale

from ._compat import copy_models, figure_copies, serialize

hv.extension("bokeh", logo=False)
hv.renderer("bokeh").webgl = False  # a few hundred points: canvas draws them sooner

FEW_BINS = 4  # at most this many bins: points with error bars, no line joining them
PLOT_OPTS = dict(responsive=True, height=360, show_grid=True, tools=["hover"],
                 # "top": above the plot, outside; two columns fit the narrowest figure (a
                 # 1024 px window, presentation fonts) without spilling over its neighbours
                 legend_position="top", legend_cols=2,
                 # sizes unlike Bokeh's defaults, so they are sent and presentation mode scales
                 # what the browser shows (an unsent default would give way to a theme's size)
                 fontsize={"title": "15px", "labels": "14px", "ticks": "12px", "legend": "12px"})
MODEL_COLOR, EMPIRICAL_COLOR, TRUTH_COLOR = "#1f5fa8", "#e6862a", "#666666"
# Presentation mode (a projector at the back of a lecture hall): font sizes and line width scale,
# figures grow taller and go one per row, so that the larger text leaves the data its room.
PRESENTATION_SCALE = 1.8
PRESENTATION_HEIGHT = 1.4
# Below 1280 px the two columns beside the sidebar and the Fit table leave figures about 160 px
# wide: one per row there. (The children's grid cells are set by Bokeh's own stylesheet.)
NARROW_CSS = """
@media (max-width: 1279px) {
  :host { grid-template-columns: minmax(0, 1fr) !important; }
  :host > div { grid-column: 1 !important; grid-row: auto !important; }
}
"""


def axis(curve) -> hv.Dimension:
    """The x dimension of a variable's (or its curve's) plots, labelled with its unit."""
    label = f"{curve.name} ({curve.unit})" if curve.unit else curve.name
    return hv.Dimension(curve.name, label=label)


def _rate(name):
    return hv.Dimension(name, label="rate (Hz)")


def _band(curve):
    """The 95% band ``(lower, upper)`` in Hz, where the curve has one."""
    return None if curve.lower is None or curve.upper is None else (curve.lower, curve.upper)


def _empirical_layers(curve, size: int) -> list[Layer]:
    """The empirical rates as dots, and those above the rate axis as triangles at its top."""
    x = axis(curve)
    return [
        Layer("empirical",
              lambda c: hv.Scatter((c.centres, on_scale(c)), x, _rate("empirical"),
                                   label="empirical").opts(color=EMPIRICAL_COLOR, size=size),
              lambda c: (c.centres, on_scale(c))),
        Layer("off scale",
              lambda c: hv.Scatter((c.centres, off_scale(c)), x,
                                   hv.Dimension("off", label="empirical, off scale (Hz)"))
              .opts(color=EMPIRICAL_COLOR, marker="triangle", size=size + 3),
              lambda c: (c.centres, off_scale(c))),
    ]


@dataclass(frozen=True)
class Layer:
    """One glyph of a tuning-curve figure: the HoloViews element that draws it first, and the
    columns of its data source (in the source's key order) for a later curve."""

    name: str
    element: Callable
    columns: Callable


def line_layers(curve) -> list[Layer]:
    """A many-valued variable: the GLM rate as a line (with a dot per bin, unless it is a smooth
    basis curve), the empirical rate as dots, the ground truth dashed and the 95% band
    shaded."""
    x = axis(curve)
    layers = []
    if _band(curve):
        layers.append(Layer(
            "band",
            # Distinct labels: HoloViews looks dimensions up by label as well as by name.
            lambda c: hv.Area((c.centres, *_band(c)), x,
                              [_rate("lower"), hv.Dimension("upper", label="upper (Hz)")],
                              label="GLM 95% band").opts(color=MODEL_COLOR, alpha=0.2,
                                                         line_alpha=0),
            lambda c: (np.concatenate([c.centres, c.centres[::-1]]),
                       np.concatenate([_band(c)[1], _band(c)[0][::-1]]))))
    if curve.truth is not None:
        layers.append(Layer(
            "truth",
            lambda c: hv.Curve((c.centres, c.truth), x, _rate("truth"), label="ground truth")
            .opts(color=TRUTH_COLOR, line_dash="dashed", line_width=2),
            lambda c: (c.centres, c.truth)))
    layers += [
        *_empirical_layers(curve, 7),
        Layer("model",
              lambda c: hv.Curve((c.centres, c.model), x, _rate("model"), label="GLM")
              .opts(color=MODEL_COLOR, line_width=3),
              lambda c: (c.centres, c.model)),
    ]
    if not _smooth(curve):
        layers.append(Layer("model points",
                            lambda c: hv.Scatter((c.centres, c.model), x, _rate("model"))
                            .opts(color=MODEL_COLOR, size=4),
                            lambda c: (c.centres, c.model)))
    return layers


def point_layers(curve) -> list[Layer]:
    """A variable with a few values (e.g. a running direction): points with error bars, since a
    line between two directions means nothing. The bars are segments (glyphs, unlike Bokeh's
    Whisker annotation), so that the rate axis makes room for them."""
    x = axis(curve)
    layers = []
    if _band(curve):
        layers.append(Layer(
            "band",
            lambda c: hv.Segments((c.centres, _band(c)[0], c.centres, _band(c)[1]),
                                  [x, _rate("lower"), "x1", hv.Dimension("upper",
                                                                         label="upper (Hz)")],
                                  label="GLM 95% band").opts(color=MODEL_COLOR, line_width=3),
            lambda c: (c.centres, c.centres, *_band(c))))
    if curve.truth is not None:
        layers.append(Layer(
            "truth",
            lambda c: hv.Scatter((c.centres, c.truth), x, _rate("truth"), label="ground truth")
            .opts(color=TRUTH_COLOR, marker="dash", size=28, line_width=3),
            lambda c: (c.centres, c.truth)))
    layers += [
        *_empirical_layers(curve, 10),
        Layer("model",
              lambda c: hv.Scatter((c.centres, c.model), x, _rate("model"), label="GLM")
              .opts(color=MODEL_COLOR, size=14),
              lambda c: (c.centres, c.model)),
    ]
    return layers


def few_valued(curve) -> bool:
    return len(curve.centres) <= FEW_BINS


def _smooth(curve) -> bool:
    return getattr(curve, "smooth", False)


def structure(curve) -> tuple:
    """What decides a figure's glyphs; a curve with another structure needs a new figure."""
    return (curve.name, curve.truth is None, _band(curve) is None, few_valued(curve),
            _smooth(curve), tuple(curve.centres) if few_valued(curve) else None,
            getattr(curve, "labels", None))


class TuningCurvePlot:
    """One variable's tuning-curve figure: built once by HoloViews, then fed new columns."""

    def __init__(self, curve, show_bands: bool = True, presentation: bool = False):
        self.structure = structure(curve)
        self._layers = (point_layers if few_valued(curve) else line_layers)(curve)
        overlay = hv.Overlay([layer.element(curve) for layer in self._layers])
        plot = hv.renderer("bokeh").get_plot(overlay.opts(title=curve.name, **PLOT_OPTS))
        self._handles = [sub.handles for sub in plot.subplots.values()]
        self.figure = plot.state
        for renderer in self.figure.renderers:  # BokehJS derives them: 15 fewer models a figure
            renderer.selection_glyph = renderer.nonselection_glyph = "auto"
            renderer.muted_glyph = "auto"
        points = self._layer_handles("model points")
        if points is not None:  # the model's dots read the line's source: one copy per refit
            points["source"] = points["glyph_renderer"].data_source = self.source("model")
        # Ranges follow the data in the browser: the server never sends a range. The rate axis
        # follows the model, its band and the truth; empirical rates above them are clamped.
        self.figure.y_range = DataRange1d(start=0, range_padding=0.2)
        if few_valued(curve):
            self.figure.x_range = DataRange1d(range_padding=1.0)
            self.figure.xaxis.ticker = FixedTicker(ticks=list(curve.centres))
            if getattr(curve, "labels", None):  # the values the bins hold, not their centres
                self.figure.xaxis.major_label_overrides = {
                    float(c): label for c, label in zip(curve.centres, curve.labels)}
        else:
            self.figure.x_range = DataRange1d(range_padding=0.02)
        for legend in self.figure.legend:  # flush with the plot area, never over it
            legend.margin = 0
        self.show_bands(show_bands)
        self._normal = {(model, prop): getattr(model, prop) for model, prop in self._sized()}
        self.present(presentation)

    def copy(self, serialized) -> TuningCurvePlot:
        """A plot of the same structure with its own Bokeh models (fresh ids), rebuilt from this
        plot's ``serialized`` figure (``_compat.serialize``): several times cheaper than
        building it again through HoloViews."""
        figure, ids = copy_models(serialized)
        models = {model.id: model for model in figure.references()}

        def same(model):
            return models.get(ids.get(model.id)) if isinstance(model, Model) else None

        plot = object.__new__(TuningCurvePlot)
        plot.structure, plot._layers, plot.figure = self.structure, self._layers, figure
        plot._handles = [{key: same(model) for key, model in handles.items() if same(model)}
                         for handles in self._handles]
        plot._normal = {(same(model), prop): value for (model, prop), value in self._normal.items()}
        return plot

    def update(self, curve) -> None:
        """Write a refit's curve into the figure's data sources."""
        for layer, handles in zip(self._layers, self._handles):
            data = handles["source"].data
            new = dict(zip(data, layer.columns(curve)))
            changed = {k: v for k, v in new.items() if not _same(data[k], v)}
            if changed:  # only the changed columns travel (all of them if the length changed)
                data.update(new if len(changed) < len(new) and _resized(data, new) else changed)

    def show_bands(self, show: bool) -> None:
        band = self.glyph("band")
        if band is not None:
            band.visible = show

    def present(self, on: bool) -> None:
        """Large fonts, thick lines and a taller figure for a projector (``on``), or the normal
        ones."""
        for (model, prop), normal in self._normal.items():
            if prop == "height":  # whole pixels
                setattr(model, prop, round(normal * (PRESENTATION_HEIGHT if on else 1.0)))
            else:
                setattr(model, prop, _scaled(normal, PRESENTATION_SCALE if on else 1.0))

    def _sized(self):
        """(model, property) of every font size and line width that presentation mode scales."""
        fig = self.figure
        yield fig, "height"
        yield fig.title, "text_font_size"
        for axis in (*fig.xaxis, *fig.yaxis):
            yield axis, "axis_label_text_font_size"
            yield axis, "major_label_text_font_size"
        for legend in fig.legend:
            yield legend, "label_text_font_size"
        for handles in self._handles:
            glyph = handles["glyph"]
            for prop in ("line_width", "size"):
                if prop in glyph.properties() and isinstance(getattr(glyph, prop), (int, float)):
                    yield glyph, prop

    def glyph(self, name: str):
        """What draws the layer ``name`` ("model", "band", ...): a glyph renderer; None if the
        figure has no such layer."""
        handles = self._layer_handles(name)
        return None if handles is None else handles.get("glyph_renderer", handles["glyph"])

    def source(self, name: str):
        """The ColumnDataSource of the layer ``name``."""
        return self._layer_handles(name)["source"]

    def _layer_handles(self, name):
        return next((h for layer, h in zip(self._layers, self._handles) if layer.name == name),
                    None)


def _scaled(value, factor: float):
    """A font size ("13px", "1.2em") or a width times ``factor``."""
    if isinstance(value, str):
        number = value.rstrip("abcdefghijklmnopqrstuvwxyz%")
        return f"{float(number) * factor:g}{value[len(number):]}"
    return value * factor


def _same(old, new) -> bool:
    old = np.asarray(old)
    return old.shape == new.shape and np.array_equal(old, new, equal_nan=True)


def _resized(data, new) -> bool:
    return any(len(data[k]) != len(v) for k, v in new.items())


_built = {}  # (structure, unit) -> (plot, its serialized figure): per process, never shown
MAX_BUILT = 64


def tuning_curve_plot(curve, show_bands: bool = True,
                      presentation: bool = False) -> TuningCurvePlot:
    """A figure for ``curve``: HoloViews builds the first of each structure (and unit) in a
    server process; later ones (other sessions, other data) are copies of it fed this curve
    (where Bokeh is a tested version; otherwise each is built by HoloViews)."""
    if not figure_copies():
        return TuningCurvePlot(curve, show_bands, presentation)
    key = (structure(curve), curve.unit)
    if key not in _built:
        if len(_built) >= MAX_BUILT:
            del _built[next(iter(_built))]
        plot = TuningCurvePlot(curve)
        _built[key] = plot, serialize(plot.figure)
    template, serialized = _built[key]
    plot = template.copy(serialized)
    plot.update(curve)
    plot.show_bands(show_bands)
    plot.present(presentation)
    return plot


class TuningCurvesView(pn.viewable.Viewer):
    """A grid of tuning-curve plots, one per variable of the loaded session.

    A figure is built when a variable needs one of another structure; otherwise (another
    strength, seed, length, unit, ...) its data sources are updated in place.
    """

    def __init__(self, state, **params):
        super().__init__(**params)
        self._state = state
        self._plots = {}
        self._panes = {}
        self._rows = None
        self._grid = pn.GridBox(ncols=1 if state.presentation else 2,
                                sizing_mode="stretch_width", stylesheets=[NARROW_CSS])
        state.param.watch(self._send, "curves")
        state.param.watch(self._show_bands, "show_bands")
        state.param.watch(self._present, "presentation")
        self._send(None)

    @property
    def plots(self) -> dict:
        """``{variable name: TuningCurvePlot}`` of the shown data set."""
        return dict(self._plots)

    def _send(self, event):
        curves = [centred_on_peak(curve) for curve in self._state.curves]
        if [c.name for c in curves] != list(self._plots):
            self._plots, self._panes = {}, {}
        include = {row.name: row.include for row in self._state.variables}
        for curve in curves:
            plot = self._plots.get(curve.name)
            if plot is None or plot.structure != structure(curve):
                self._plots[curve.name] = tuning_curve_plot(curve, self._state.show_bands,
                                                            self._state.presentation)
                # Toggle a wrapper: ``visible`` on the Bokeh pane is forwarded to the figure.
                self._panes[curve.name] = pn.Column(
                    pn.pane.Bokeh(self._plots[curve.name].figure, sizing_mode="stretch_width"),
                    visible=include.get(curve.name, True), sizing_mode="stretch_width")
            else:
                plot.update(curve)
        objects = [self._panes[c.name] for c in curves]
        if objects != self._grid.objects:
            self._grid.objects = objects
        if self._rows is not self._state.variables:
            self._rows = self._state.variables
            for row in self._rows:
                row.param.watch(self._follow_include, "include")

    def _follow_include(self, event):
        """Show each plot exactly when its variable is included."""
        pane = self._panes.get(event.obj.name)
        if pane is not None:
            pane.visible = event.new

    def _show_bands(self, event):
        for plot in self._plots.values():
            plot.show_bands(event.new)

    def _present(self, event):
        self._grid.ncols = 1 if event.new else 2
        for plot in self._plots.values():
            plot.present(event.new)

    def __panel__(self):
        return self._grid
