"""HoloViews views of the explorer state: tuning curves updated in place, and behaviour traces.

Each variable gets one ``hv.DynamicMap`` fed by a ``Pipe`` stream: a refit sends new curve data
down the pipe and Bokeh patches the existing plot. Toggling a variable flips its pane's
``visible``; the plots are rebuilt only when a data set is loaded.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

hv.extension("bokeh", logo=False)
hv.renderer("bokeh").webgl = False  # a few hundred points: canvas draws them sooner

PLOT_OPTS = dict(responsive=True, height=360, framewise=True, show_grid=True,
                 tools=["hover"], legend_position="top", legend_cols=3)


def _axis(curve):
    label = f"{curve.name} ({curve.unit})" if curve.unit else curve.name
    return hv.Dimension(curve.name, label=label)


def render_curve(data) -> hv.Overlay:
    """Model, empirical and (simulations only) ground-truth rates of one variable (``data`` is a
    ``TuningCurve``, the name a ``Pipe`` stream gives it)."""
    curve = data
    x = _axis(curve)
    layers = []
    if curve.truth is not None:
        layers.append(hv.Curve((curve.centres, curve.truth), x, _rate("truth"),
                               label="ground truth").opts(color="#888888", line_dash="dashed",
                                                          line_width=2))
    layers += [
        hv.Scatter((curve.centres, curve.empirical), x, _rate("empirical"), label="empirical")
        .opts(color="#e6862a", size=7),
        hv.Curve((curve.centres, curve.model), x, _rate("model"), label="GLM")
        .opts(color="#1f5fa8", line_width=3),
        hv.Scatter((curve.centres, curve.model), x, _rate("model"))
        .opts(color="#1f5fa8", size=4),
    ]
    return hv.Overlay(layers).opts(title=curve.name, ylim=(0, None), **PLOT_OPTS)


def _rate(name):
    return hv.Dimension(name, label="rate (Hz)")


class TuningCurvesView(pn.viewable.Viewer):
    """A grid of tuning-curve plots, one per variable of the loaded session.

    Plots are built when a data set brings variables the grid does not show yet; a data set with
    the same variables (another seed, length or unit) reuses them and only streams new data.
    """

    def __init__(self, state, **params):
        super().__init__(**params)
        self._state = state
        self._pipes = {}
        self._panes = {}
        self._layout = None
        self._rows = None
        self._grid = pn.GridBox(ncols=2, sizing_mode="stretch_width")
        state.param.watch(self._send, "curves")

    def _build(self, curves):
        self._layout = _layout(curves)
        self._pipes = {c.name: hv.streams.Pipe(data=c) for c in curves}
        # Toggle a wrapper: setting ``visible`` on the HoloViews pane itself is forwarded to the
        # Bokeh figure, which rejects it (panel 1.9 / bokeh 3.9).
        self._panes = {
            c.name: pn.Column(
                pn.pane.HoloViews(hv.DynamicMap(render_curve, streams=[self._pipes[c.name]]),
                                  sizing_mode="stretch_width", name=c.name),
                sizing_mode="stretch_width")
            for c in curves
        }
        self._grid.objects = list(self._panes.values())

    def _follow(self, rows):
        """Show each plot exactly when its variable is included."""
        self._rows = rows
        for row in rows:
            pane = self._panes[row.name]
            pane.visible = row.include
            row.param.watch(lambda e, pane=pane: setattr(pane, "visible", e.new), "include")

    def _send(self, event):
        if _layout(event.new) != self._layout:
            self._build(event.new)
        else:
            for curve in event.new:
                self._pipes[curve.name].send(curve)
        if self._rows is not self._state.variables:
            self._follow(self._state.variables)

    def __panel__(self):
        return self._grid


def _layout(curves):
    """What decides the plots' structure: the variables and whether a ground truth is drawn."""
    return [(c.name, c.truth is None) for c in curves]


def traces_view(state) -> pn.pane.HoloViews:
    """Behaviour traces and the unit's spike counts, redrawn when a data set or unit is chosen."""

    def draw(session, unit):
        if session is None or unit not in session.unit_names:
            return hv.Layout([hv.Curve([])])
        return traces(session, unit)

    return pn.pane.HoloViews(pn.bind(draw, state.param.session, state.param.unit),
                             sizing_mode="stretch_width")


def traces(session, unit, max_points: int = 3000) -> hv.Layout:
    """The first ``max_points`` samples of every behavioural variable and of the unit's spike
    counts against time; samples left out of the fit (not valid) are greyed."""
    n = min(session.n_samples, max_points)
    t = hv.Dimension("time", label="time (s)")
    time = np.arange(n) * session.bin_width
    valid = session.valid[:n]
    rows = [(_axis(var), var.values[:n]) for var in session.variables]
    rows.append((hv.Dimension("spikes", label=f"{unit} (spikes/bin)"),
                 session.unit_counts(unit)[:n]))
    plots = [
        (hv.Curve((time, values), t, dim).opts(color="#bbbbbb")
         * hv.Curve((time, np.where(valid, values, np.nan)), t, dim).opts(color="#333333"))
        .opts(responsive=True, height=130, title="", show_grid=True)
        for dim, values in rows
    ]
    return hv.Layout(plots).cols(1).opts(shared_axes=True)
