"""The lagged leaves' cards: one per leaf (spike history, coupling from a unit, an event kernel)
with its settings and its filter's figure, and the row that adds them (history, the coupling
picker, an event train).

Each figure is the gain exp(filter) against the lag in ms (glm_core.lag_curves): the fit, its
95% band, a dashed line at gain 1 (no effect) and, where the simulation knows it, the true gain.
It is built once by HoloViews; a refit writes the new columns into the ColumnDataSources
HoloViews created (as the tuning curves do, ``widgets/plots.py``), so a strength change sends
only data.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
from bokeh.models import DataRange1d

from glm_core.lagged_fit import MAX_LAG_LEAVES

from .controls import live_slider
from .lag_state import COUPLING, EVENT, HISTORY, WINDOW_MS, whole_bins
from .plots import MODEL_COLOR, PLOT_OPTS, TRUTH_COLOR

LAG = hv.Dimension("lag", label="lag (ms)")
GAIN = hv.Dimension("gain", label="gain (rate multiplier)")


class FilterPlot:
    """One lagged leaf's gain figure: built once by HoloViews, then fed new columns."""

    def __init__(self, curve):
        self.structure = filter_structure(curve)
        layers = {
            "band": hv.Area((curve.lags_ms, curve.lower, curve.upper), LAG,
                            [GAIN, hv.Dimension("upper", label="upper")], label="95% band")
            .opts(color=MODEL_COLOR, alpha=0.2, line_alpha=0),
            "one": hv.Curve(([curve.lags_ms[0], curve.lags_ms[-1]], [1.0, 1.0]), LAG, GAIN,
                            label="no effect").opts(color="black", line_dash="dashed",
                                                    line_width=1),
            "gain": hv.Curve((curve.lags_ms, curve.gain), LAG, GAIN, label="GLM")
            .opts(color=MODEL_COLOR, line_width=3),
        }
        if curve.truth is not None:
            layers["truth"] = hv.Curve((curve.lags_ms, curve.truth), LAG, GAIN,
                                       label="ground truth").opts(
                color=TRUTH_COLOR, line_dash="dashed", line_width=2)
        overlay = hv.Overlay(list(layers.values())).opts(
            title=curve.name, **{**PLOT_OPTS, "height": 300})
        plot = hv.renderer("bokeh").get_plot(overlay)
        self._sources = {name: sub.handles["source"]
                         for name, sub in zip(layers, plot.subplots.values())}
        self.figure = plot.state
        self.figure.y_range = DataRange1d(start=0, range_padding=0.1)
        self.figure.x_range = DataRange1d(start=0, range_padding=0.02)
        for legend in self.figure.legend:
            legend.margin = 0

    def update(self, curve) -> None:
        """Write a refit's filter into the figure's data sources."""
        for name, columns in filter_columns(curve).items():
            data = self._sources[name].data
            new = dict(zip(data, columns))
            if any(not np.array_equal(np.asarray(data[k]), v) for k, v in new.items()):
                data.update(new)

    def source(self, name: str):
        """The ColumnDataSource of the layer ``name`` ("gain", "band", "one", "truth")."""
        return self._sources[name]


def filter_structure(curve) -> tuple:
    """What decides a filter figure's glyphs: its name and whether it has a truth."""
    return curve.name, curve.truth is None


def filter_columns(curve) -> dict:
    """Each layer's columns, in its source's key order (an area: its outline)."""
    lags = curve.lags_ms
    columns = {"band": (np.concatenate([lags, lags[::-1]]),
                        np.concatenate([curve.upper, curve.lower[::-1]])),
               "one": (np.array([lags[0], lags[-1]]), np.ones(2)),
               "gain": (lags, curve.gain)}
    if curve.truth is not None:
        columns["truth"] = (lags, curve.truth)
    return columns


def _lag_card(state, row):
    """A lagged leaf's card: Include, window, basis count, strength, Remove; then its figure's
    place (filled by :class:`LagCardsView`)."""
    window = live_slider(pn.widgets.FloatSlider, row, "window_ms")
    bin_width = state.session.bin_width  # whole bins only
    window.param.update(step=1e3 * bin_width, start=whole_bins(WINDOW_MS[0], bin_width),
                        end=whole_bins(WINDOW_MS[1], bin_width))
    remove = pn.widgets.Button(name="Remove", button_type="light", css_classes=["lag-remove"])
    remove.on_click(lambda _: state.remove_lag(row))
    figure = pn.Column(sizing_mode="stretch_width", css_classes=["lag-figure"])
    card = pn.Column(
        pn.Row(f"**{row.name}**", remove),
        pn.widgets.Checkbox.from_param(row.param.include, css_classes=["lag-include"]),
        window,
        live_slider(pn.widgets.IntSlider, row, "n_basis"),
        live_slider(pn.widgets.FloatSlider, row, "log_strength"),
        figure,
        css_classes=["lag-card"], sizing_mode="stretch_width")
    return card, figure


def lag_adders(state) -> pn.Row:
    """Add a history leaf; choose the units that drive the selected unit (one coupling leaf
    each); add an event kernel of one of the session's event trains."""
    history = pn.widgets.Button(name="Add spike history", css_classes=["add-history"])
    history.on_click(lambda _: state.add_lag(HISTORY))
    picker = pn.widgets.MultiChoice(name="Coupling: units that drive this one",
                                    max_items=MAX_LAG_LEAVES, css_classes=["coupling-picker"],
                                    sizing_mode="stretch_width")
    event = pn.widgets.Select(name="Event train", css_classes=["event-select"])
    add_event = pn.widgets.Button(name="Add event kernel", css_classes=["add-event"])
    add_event.on_click(lambda _: event.value and state.add_lag(EVENT, event.value))
    echo = []  # set while the picker shows the state's couplings

    def picked(event_):
        if not echo and not state.set_couplings(event_.new):
            show()  # refused: back to the couplings the model has

    def show(*_):
        session = state.session
        if session is None:
            return
        echo.append(True)
        try:
            picker.options = [u for u in session.unit_names if u != state.unit]
            picker.value = [r.source for r in state.lags if r.kind == COUPLING]
            names = sorted(session.events)
            event.options, event.value = names, names[0] if names else None
            event.visible = add_event.visible = bool(names)
            history.disabled = any(r.kind == HISTORY for r in state.lags)
        finally:
            echo.pop()

    picker.param.watch(picked, "value")
    state.param.watch(show, ["session", "unit", "lags"])
    show()
    return pn.Row(history, picker, event, add_event, sizing_mode="stretch_width",
                  css_classes=["lag-adders"])


class LagCardsView(pn.viewable.Viewer):
    """The lagged leaves' section: the adders, then one card per leaf, each with its gain
    figure (built when its structure is new, else updated in place)."""

    def __init__(self, state, **params):
        super().__init__(**params)
        self._state = state
        self._cards = {}  # row -> (card, figure pane)
        self._plots = {}  # row -> FilterPlot
        self._grid = pn.GridBox(ncols=2, sizing_mode="stretch_width")
        self._layout = pn.Column(
            lag_adders(state), self._grid,
            sizing_mode="stretch_width", css_classes=["lag-section"])
        state.param.watch(self._rows, "lags")
        state.param.watch(self._send, "filters")
        self._rows()
        self._send()

    @property
    def plots(self) -> dict:
        """``{leaf name: FilterPlot}`` of the shown leaves."""
        return {row.name: plot for row, plot in self._plots.items()}

    def _rows(self, *_):
        rows = list(self._state.lags)
        self._cards = {row: self._cards.get(row) or _lag_card(self._state, row) for row in rows}
        self._plots = {row: plot for row, plot in self._plots.items() if row in self._cards}
        objects = [card for card, _ in self._cards.values()]
        if objects != self._grid.objects:
            self._grid.objects = objects

    def _send(self, *_):
        rows = list(self._cards)
        for row, curve in zip(rows, self._state.filters):
            card, figure = self._cards[row]
            plot = self._plots.get(row)
            if plot is None or plot.structure != filter_structure(curve):
                plot = self._plots[row] = FilterPlot(curve)
                figure.objects = [pn.pane.Bokeh(plot.figure, sizing_mode="stretch_width")]
            else:
                plot.update(curve)
        for row, (card, figure) in self._cards.items():
            figure.visible = row.include and bool(self._state.filters)

    def __panel__(self):
        return self._layout
