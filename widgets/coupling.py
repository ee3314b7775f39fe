"""The coupling matrix in the population card: a "Coupling matrix" button (a job, its progress
with the card's other jobs) and the matrix, units x units, once computed. No maths here: the
numbers are ``glm_core.coupling_matrix``'s (see ``widgets/coupling_jobs.py``)."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn

from glm_core.coupling_matrix import COUPLING_WINDOW_S, MAX_UNITS

INTRO = (f"**Coupling matrix**: does one unit's past predict another's spikes beyond the "
         f"behaviour? Each entry adds a filter of the driver's last {1e3 * COUPLING_WINDOW_S:g} "
         "ms to the target's model and scores it on held-out data (one cross-validated fit per "
         f"pair, so at most the {MAX_UNITS} most active units).")


def coupling_heatmap(matrix) -> hv.HeatMap:
    """Rows the targets, columns the drivers; colour the held-out gain (bits/spike); the hover
    adds the filter's peak gain and its lag."""
    names = [str(u) for u in matrix.units]
    data = [(names[j], names[i], float(matrix.held_out_gain[i, j]),
             float(matrix.peak_gain[i, j]), float(matrix.peak_lag_ms[i, j]))
            for i in range(len(names)) for j in range(len(names))]
    finite = np.abs(matrix.held_out_gain[np.isfinite(matrix.held_out_gain)])
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return hv.HeatMap(
        data, kdims=[hv.Dimension("driver", label="driver (its past)"),
                     hv.Dimension("target", label="target unit")],
        vdims=[hv.Dimension("gain", label="held-out gain (bits/spike)"),
               hv.Dimension("peak", label="peak gain of the filter"),
               hv.Dimension("lag", label="at lag (ms)")]).opts(
        title="coupling: held-out bits/spike added", cmap="RdBu_r", clim=(-top, top),
        colorbar=True, tools=["hover"], invert_yaxis=True, responsive=True, min_height=360,
        min_width=360, clipping_colors={"NaN": "#eeeeee"}, xrotation=45)


def coupling_view(state) -> pn.Column:
    """The button, what the matrix shows and, once computed for the shown data set, the
    matrix."""
    button = pn.widgets.Button(name="Coupling matrix", css_classes=["coupling-button"])
    button.on_click(lambda _: state.compute_coupling())

    def draw(coupling, session):
        if coupling is None or coupling[0] is not session:
            return hv.Div("<p class='coupling-message'>Press <b>Coupling matrix</b> to score "
                          "every coupling.</p>").opts(height=40)
        matrix = coupling[1]
        return coupling_heatmap(matrix).opts(
            xlabel=f"driver (its past; {len(matrix.units)} of {len(session.unit_names)} units)")

    return pn.Column(pn.pane.Markdown(INTRO), button,
                     pn.pane.HoloViews(pn.bind(draw, state.param.coupling, state.param.session),
                                       sizing_mode="stretch_width",
                                       css_classes=["coupling-matrix"]),
                     sizing_mode="stretch_width")
