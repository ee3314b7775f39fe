"""The behaviour traces: every behavioural variable and the unit's spike counts against time."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from .plots import axis


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
    # The name goes in the title, the unit on the y axis: a name and unit together were longer
    # than a trace is high, and were cut.
    rows = [(axis(var), var.name, var.unit or var.name, var.values[:n])
            for var in session.variables]
    rows.append((hv.Dimension("spikes", label=f"{unit} (spikes/bin)"), str(unit), "spikes/bin",
                 session.unit_counts(unit)[:n]))
    plots = [
        (hv.Curve((time, values), t, dim).opts(color="#bbbbbb")
         * hv.Curve((time, np.where(valid, values, np.nan)), t, dim).opts(color="#333333"))
        .opts(responsive=True, height=150, title=title, ylabel=ylabel, show_grid=True,
              fontsize={"title": "13px"})
        for dim, title, ylabel, values in rows
    ]
    return hv.Layout(plots).cols(1).opts(shared_axes=True)
