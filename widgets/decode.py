"""The Decode card: what the population knows about the behaviour, cross-validated.

Choose what to decode (a variable, or the 2-D map), the window and the prior; *Decode* runs the
state's decoding job (``widgets/decode_jobs.py``). The figures are HoloViews DynamicMaps fed by
``Pipe``s, built once and updated in place: decoded against true over time (one figure per
decoded variable; a click on a time point shows that window's posterior), the error histogram and
the median error against the number of units. The summary gives the median and mean error in the
variable's unit; the downloads give each window as CSV and the summary as JSON. No maths here.
"""

from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import panel as pn
from holoviews.streams import Pipe, Tap

from .controls import bounded_input
from .jobs import job_progress

TIME_OPTS = dict(responsive=True, height=240, tools=["hover", "tap"],
                 active_tools=["box_zoom"], toolbar="above", show_grid=True)
SMALL_OPTS = dict(responsive=True, height=240, tools=["hover"], toolbar="above")


def summary_text(decoding) -> str:
    """The error summary as Markdown: median and mean error, windows, prior, units, notes."""
    if decoding is None:
        return "Nothing decoded yet: press *Decode*."
    unit = f" {decoding.unit}" if decoding.unit else ""
    prior = ("flat prior" if decoding.sigma is None
             else f"continuity prior (sigma {decoding.sigma:g} bins per window)")
    lines = [f"**Median error {decoding.median_error:.3g}{unit}**, mean "
             f"{decoding.mean_error:.3g}{unit}, over {decoding.error.size:,} windows of "
             f"{1e3 * decoding.window_s:g} ms ({decoding.window_bins} bins), {prior}, "
             f"{len(decoding.units)} units; each fold decoded with maps fitted without it."]
    lines += [f"- {note}" for note in decoding.notes]
    return "\n".join(lines)


def nearest_window(decoding, time_s) -> int | None:
    """The window whose centre is nearest ``time_s``; None without a decoding."""
    if decoding is None or time_s is None or decoding.time_s.size == 0:
        return None
    return int(np.argmin(np.abs(decoding.time_s - time_s)))


class DecodePlots:
    """The card's figures, each a DynamicMap on a Pipe."""

    def __init__(self):
        self.decoding = Pipe(data=None)  # the Decoding
        self.window = Pipe(data=(None, None))  # (Decoding, window index)
        # a DynamicMap of one element per layer: a Tap on a DynamicMap of an Overlay gets no
        # events from the browser (HoloViews 1.22)
        true = [hv.DynamicMap(lambda data, a=a: self._layer(data, a, "true"),
                              streams=[self.decoding]) for a in (0, 1)]
        self.over_time = [(t * hv.DynamicMap(lambda data, a=a: self._layer(data, a, "decoded"),
                                             streams=[self.decoding])).opts(
            title="decoded and true over time (click a time point for its posterior)",
            legend_position="top_right") for a, t in enumerate(true)]
        self.taps = [Tap(source=t, x=None, y=None) for t in true]
        self.posterior_line = hv.DynamicMap(self._posterior_line, streams=[self.window])
        self.posterior_map = hv.DynamicMap(self._posterior_map, streams=[self.window])
        self.histogram = hv.DynamicMap(self._histogram, streams=[self.decoding])
        self.units = hv.DynamicMap(self._units, streams=[self.decoding])

    @staticmethod
    def _layer(data, axis, layer):
        """The true (a line) or decoded (dots) values of variable ``axis`` over time."""
        if data is None or axis >= len(data.names):
            time, values = [], []
        else:
            time = data.time_s
            values = (data.true if layer == "true" else data.decoded)[:, axis]
        value = hv.Dimension("value", label=_label(data, axis))
        if layer == "true":
            return hv.Curve((time, values), "time (s)", value, label="true").opts(
                color="#444444", **TIME_OPTS)
        return hv.Scatter((time, values), "time (s)", value, label="decoded").opts(
            color="#d62728", size=4, **TIME_OPTS)

    @staticmethod
    def _posterior_line(data):
        decoding, i = data
        if decoding is None or i is None or len(decoding.names) != 1:
            xs, p, true, title = [], [], 0.0, "posterior"
        else:
            xs, p = decoding.centres[0], decoding.posterior[i]
            true, title = float(decoding.true[i, 0]), _window_title(decoding, i)
        dim = hv.Dimension("state", label=_label(decoding, 0))
        return (hv.Curve((xs, p), dim, "probability").opts(color="#1f77b4")
                * hv.VLine(true).opts(color="#444444", line_dash="dashed")).opts(
            title=title, **SMALL_OPTS)

    @staticmethod
    def _posterior_map(data):
        decoding, i = data
        if decoding is None or i is None or len(decoding.names) != 2:
            xs, ys, p = np.arange(2.0), np.arange(2.0), np.zeros((2, 2))
            true, title = (0.0, 0.0), "posterior"
        else:
            xs, ys = decoding.centres
            p = decoding.posterior[i].reshape(xs.size, ys.size)
            true, title = tuple(decoding.true[i]), _window_title(decoding, i)
        dims = [hv.Dimension("x", label=_label(decoding, 0)),
                hv.Dimension("y", label=_label(decoding, 1))]
        return (hv.Image((xs, ys, np.asarray(p, float).T), dims, "probability").opts(
            cmap="viridis", colorbar=True)
            * hv.Points([true], dims, label="true").opts(color="white", size=10,
                                                           marker="x")).opts(
            title=title, **SMALL_OPTS)

    @staticmethod
    def _histogram(data):
        error = [] if data is None else data.error[np.isfinite(data.error)]
        counts, edges = np.histogram(error, bins=30) if len(error) else ([], [0.0])
        unit = f" ({data.unit})" if data is not None and data.unit else ""
        return hv.Histogram((edges, counts), kdims=[hv.Dimension("error", label=f"error{unit}")],
                            vdims=["windows"]).opts(title="error histogram", color="#7f7f7f",
                                            **SMALL_OPTS)

    @staticmethod
    def _units(data):
        n, error = ([], []) if data is None else (data.units_curve, data.units_error)
        unit = f" ({data.unit})" if data is not None and data.unit else ""
        error_dim = hv.Dimension("median error", label=f"median error{unit}")
        return (hv.Curve((n, error), "units", error_dim)
                * hv.Scatter((n, error), "units", error_dim).opts(size=6)).opts(
            title="error against units (most informative first)", logx=True, **SMALL_OPTS)


def _label(decoding, axis) -> str:
    if decoding is None or axis >= len(decoding.names):
        return "value"
    return f"{decoding.names[axis]} ({decoding.unit})" if decoding.unit else \
        decoding.names[axis]


def _window_title(decoding, i) -> str:
    return (f"posterior of the window at {decoding.time_s[i]:.2f} s "
            f"(fold {decoding.fold[i] + 1}; true value marked)")


def decode_view(state) -> pn.Column:
    """The Decode card: its settings, the Decode button (a job, with its progress), the summary,
    the figures and the downloads."""
    refused = pn.pane.Alert("", alert_type="warning", visible=False, margin=(0, 10),
                            css_classes=["refused-value"])
    target = pn.widgets.Select.from_param(state.param.decode_target, width=240,
                                          css_classes=["decode-target"])
    window = bounded_input(pn.widgets.FloatInput, state, "decode_window_ms", refused)
    window.param.update(width=140, sizing_mode="fixed", css_classes=["decode-window"])
    prior = pn.widgets.RadioButtonGroup.from_param(state.param.decode_prior,
                                                   css_classes=["decode-prior"])
    sigma = bounded_input(pn.widgets.FloatInput, state, "decode_sigma", refused)
    sigma.param.update(width=220, sizing_mode="fixed",
                       visible=state.param.decode_prior.rx() == "continuity")
    button = pn.widgets.Button(name="Decode", button_type="primary", width=120,
                               css_classes=["decode-button"])
    button.on_click(lambda _: state.decode())
    message = pn.pane.Alert(state.param.decode_message, alert_type="warning",
                            visible=state.param.decode_message.rx().rx.bool(),
                            css_classes=["decode-message"])
    summary = pn.pane.Markdown(summary_text(state.decoding), css_classes=["decode-summary"],
                               sizing_mode="stretch_width")
    plots = DecodePlots()
    # shown and hidden as Columns: toggling a rendered HoloViews pane's own ``visible`` makes
    # Panel 1.x set a 'design' attribute on the Bokeh figure (a server traceback)
    second = pn.Column(pn.pane.HoloViews(plots.over_time[1], sizing_mode="stretch_width"),
                       sizing_mode="stretch_width", visible=False)
    posterior_line = pn.Column(pn.pane.HoloViews(plots.posterior_line,
                                                 sizing_mode="stretch_width"),
                               sizing_mode="stretch_width")
    posterior_map = pn.Column(pn.pane.HoloViews(plots.posterior_map,
                                                sizing_mode="stretch_width"),
                              sizing_mode="stretch_width", visible=False)
    downloads = [pn.widgets.FileDownload(
        callback=lambda: io.StringIO(state.decoding.to_csv()), filename="decoding.csv",
        label="Download windows (CSV)", button_type="light", width=220, disabled=True),
        pn.widgets.FileDownload(
        callback=lambda: io.StringIO(state.decoding.summary_json()),
        filename="decoding_summary.json", label="Download error summary (JSON)",
        button_type="light", width=260, disabled=True)]

    def show(decoding):
        two = decoding is not None and len(decoding.names) == 2
        summary.object = summary_text(decoding)
        plots.decoding.send(decoding)
        plots.window.send((decoding, 0 if decoding is not None else None))
        second.visible, posterior_map.visible, posterior_line.visible = two, two, not two
        for download in downloads:
            download.disabled = decoding is None

    def tapped(event):
        i = nearest_window(state.decoding, event.new)
        if i is not None:
            plots.window.send((state.decoding, i))

    for tap in plots.taps:
        tap.param.watch(tapped, "x")
    show(state.decoding)
    state.param.watch(lambda e: show(e.new), "decoding")
    view = pn.Column(
        pn.Row(target, window, prior, sigma, button, sizing_mode="stretch_width"), refused,
        job_progress(state.jobs), message, summary,
        pn.pane.HoloViews(plots.over_time[0], sizing_mode="stretch_width"), second,
        pn.Row(posterior_line, posterior_map, pn.pane.HoloViews(plots.histogram),
               pn.pane.HoloViews(plots.units), sizing_mode="stretch_width"),
        pn.Row(*downloads), sizing_mode="stretch_width", css_classes=["decode-view"])
    view.plots = plots  # the figures and their streams, for scripting the card
    return view
