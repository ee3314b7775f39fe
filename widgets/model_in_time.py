"""The "Model in time" card: a stretch of the recording, the observed spikes against the
cross-validated predicted rate, the behaviour below on the same time axis, and on request spikes
simulated from the fit beside the real ones.

The figures are built once per data set's variables (HoloViews ``DynamicMap``s fed by ``Pipe``
streams, one shared time axis: pan and zoom along time move every row) and updated in place once
each refit is cross-validated (``state.settled``), only while the card is open. The numbers are
``glm_core.time_view``'s; no maths here.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from glm_core.errors import InputError
from glm_core.time_view import stretch, time_view

from .plots import axis

WINDOWS_S = (5.0, 10.0, 20.0, 60.0)
DEFAULT_WINDOW_S = 20.0
SIMULATION_SEED = 0  # one draw per fit, so that toggling shows the same simulated train
OBSERVED, PREDICTED, SIMULATED = "#555555", "#1f5fa8", "#e6862a"
TIME = hv.Dimension("time", label="time (s)")
RATE = hv.Dimension("rate", label="rate (spikes/s)")
TOOLS = dict(tools=["xpan", "xwheel_zoom", "reset"], active_tools=["xpan", "xwheel_zoom"],
             default_tools=[])


class ModelInTimeView(pn.viewable.Viewer):
    """The card's controls, message and figures for one session's state.

    Args:
        state: the session's :class:`~widgets.state.ExplorerState`.
        card: the card that holds the view; while it is collapsed nothing is recomputed.
    """

    def __init__(self, state, card=None, **params):
        super().__init__(**params)
        self._state = state
        self._card = card
        self._stale = False
        self._names = None  # the behaviour variables the figures were built for
        self.data = None  # the last glm_core TimeView shown
        self.window = pn.widgets.Select(name="window (s)", options=list(WINDOWS_S),
                                        value=DEFAULT_WINDOW_S, width=110,
                                        css_classes=["time-window"])
        self.start = pn.widgets.FloatSlider(name="start (s)", start=0.0, end=1.0, step=0.5,
                                            value=0.0, width=320, css_classes=["time-start"])
        self.simulate = pn.widgets.Checkbox(name="simulate spikes from the fit", value=False,
                                            css_classes=["simulate-toggle"])
        self.message = pn.pane.Markdown("", css_classes=["time-message"],
                                        sizing_mode="stretch_width")
        self._pipes = {}
        self._pane = pn.pane.HoloViews(None, sizing_mode="stretch_width",
                                       css_classes=["time-figures"])
        self.window.param.watch(self._refresh, "value")
        self.start.param.watch(self._refresh, "value_throttled")
        self.simulate.param.watch(self._refresh, "value")
        state.param.watch(self._refresh, "settled")
        if card is not None:
            card.param.watch(self._opened, "collapsed")
        self._layout = pn.Column(pn.Row(self.window, self.start, self.simulate),
                                 self.message, self._pane, sizing_mode="stretch_width")
        self._refresh()

    def __panel__(self):
        return self._layout

    def _opened(self, event):
        if not event.new and self._stale:
            self._refresh()

    def _refresh(self, *_):
        if self._card is not None and self._card.collapsed:
            self._stale = True
            return
        self._stale = False
        state = self._state
        session, enc, fit = state.session, state.encoding, state.fit
        if session is None or enc is None or fit is None:
            self.message.object = "*No fit to show yet.*"
            return
        duration = session.n_samples * session.bin_width
        window = min(float(self.window.value), duration)
        end = max(duration - window, 0.0) or 1.0
        self.start.value = min(self.start.value, end)  # inside a shorter data set's range
        self.start.param.update(end=end, step=max(session.bin_width, 0.5))
        start, stop = stretch(session, self.start.value, window)
        try:
            view = time_view(session, enc, fit.theta, None if state.cv is None else state.cv.theta,
                             start, stop,
                             simulate_seed=SIMULATION_SEED if self.simulate.value else None)
        except InputError as err:
            self.message.object = f"**{err}**"
            return
        self.data = view
        self.message.object = describe(view, session.bin_width)
        self._draw(view, session)

    def _draw(self, view, session):
        names = [var.name for var in session.variables]
        if names != self._names:  # another data set's variables: new figures
            self._names = names
            self._pipes = {"rates": hv.streams.Pipe(data=None),
                           "raster": hv.streams.Pipe(data=None),
                           **{name: hv.streams.Pipe(data=None) for name in names}}
            self._pane.object = figures(self._pipes, session.variables)
        for name, data in plot_data(view).items():
            self._pipes[name].send(data)


def describe(view, bin_width: float) -> str:
    """The card's line under its controls: what is drawn, and whether a simulation ran away."""
    spikes = int(view.observed.sum())
    text = (f"{spikes} observed spikes in {view.time.size * bin_width:g} s. The predicted rate "
            "is cross-validated: each fold's samples are predicted by the model fitted without "
            "them.")
    if np.all(np.isnan(view.predicted_rate)):
        text = f"{spikes} observed spikes. The cross-validated rate follows once the fit rests."
    if view.simulated is None:
        return text
    if view.ran_away:
        return (f"**The simulation ran away**: its rate hit the cap of {view.cap_hz:g} spikes/s "
                f"in {view.n_capped} of {view.time.size} bins. Each simulated spike raises the "
                "rate of the next through the history filter; an unregularised history filter "
                "can excite itself like this. A stronger penalty keeps it stable.")
    return (text + f" Simulated from the fit, bin by bin: {int(view.simulated.sum())} spikes "
            "(orange).")


def plot_data(view) -> dict:
    """Per figure row the columns it draws (rates, raster ticks, each behaviour trace)."""
    t = view.time
    empty = np.full(t.size, np.nan)
    observed_t = t[view.observed > 0]
    simulated_t = t[view.simulated > 0] if view.simulated is not None else np.zeros(0)
    out = {
        "rates": {"time": t, "observed": view.observed_rate, "predicted": view.predicted_rate,
                  "simulated": empty if view.simulated_rate is None else view.simulated_rate},
        "raster": {"observed": observed_t, "simulated": simulated_t},
    }
    out.update({name: {"time": t, "values": values} for name, values in view.behaviour.items()})
    return out


def figures(pipes, variables) -> hv.Layout:
    """The rates, the raster and one trace per behaviour variable, on one shared time axis."""
    def rates(data):
        if data is None:
            data = {key: [] for key in ("time", "observed", "predicted", "simulated")}
        t = data["time"]
        return (hv.Curve((t, data["observed"]), TIME, RATE, label="observed (smoothed)")
                .opts(color=OBSERVED)
                * hv.Curve((t, data["predicted"]), TIME, RATE, label="predicted (cross-validated)")
                .opts(color=PREDICTED, line_width=2)
                * hv.Curve((t, data["simulated"]), TIME, RATE, label="simulated (smoothed)")
                .opts(color=SIMULATED)).opts(
            title="observed and predicted rate", height=220, responsive=True, show_grid=True,
            legend_position="top_left", framewise=True, **TOOLS)

    def raster(data):
        ticks = {"observed": [], "simulated": []} if data is None else data
        row = hv.Dimension("row", label="spikes", range=(-0.1, 2.0))

        def segments(times, low, label, color):
            return hv.Segments([(x, low, x, low + 0.8) for x in times],
                               [TIME, row, "time_end", "row_end"], label=label).opts(
                color=color, line_width=1.5)

        return (segments(ticks["observed"], 1.1, "observed", OBSERVED)
                * segments(ticks["simulated"], 0.1, "simulated", SIMULATED)).opts(
            title="spikes", height=130, responsive=True, yticks=[(0.5, "simulated"),
                                                                 (1.5, "observed")],
            show_legend=False, framewise=True, **TOOLS)

    def trace(var):
        dim = axis(var)

        def draw(data):
            data = data or {"time": [], "values": []}
            return hv.Curve((data["time"], data["values"]), TIME, dim).opts(
                color="#333333", title=var.name, ylabel=var.unit or var.name, height=130,
                responsive=True, show_grid=True, framewise=True, **TOOLS)
        return draw

    plots = [hv.DynamicMap(rates, streams=[pipes["rates"]]),
             hv.DynamicMap(raster, streams=[pipes["raster"]])]
    plots += [hv.DynamicMap(trace(var), streams=[pipes[var.name]]) for var in variables]
    return hv.Layout(plots).cols(1).opts(shared_axes=True)
