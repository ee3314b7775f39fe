"""Sidebar controls and status views bound to an :class:`ExplorerState`."""

from __future__ import annotations

import panel as pn

from glm_core.loaders import MAX_UPLOAD_BYTES

from .state import SIMULATION, UPLOAD

def data_controls(state) -> pn.Column:
    """Data source, simulation settings, bin width, upload, unit and regularizer type."""
    # No accepted_filetypes: browsers report .npz and .nwb under varying MIME types, so the type
    # is checked on the server, with a message, like everything else about the file.
    upload = pn.widgets.FileDropper(
        multiple=False, previews=[],
        max_file_size=f"{MAX_UPLOAD_BYTES // 2**20}MB", sizing_mode="stretch_width")
    upload.param.watch(lambda e: _send_upload(state, e.new), "value")
    source = pn.widgets.Select.from_param(state.param.source, name="data source")
    n_samples = pn.widgets.IntInput.from_param(state.param.n_samples)
    seed = pn.widgets.IntInput.from_param(state.param.seed)
    bin_width = pn.widgets.FloatInput.from_param(state.param.bin_width)
    unit = pn.widgets.Select.from_param(state.param.unit)
    regularizer = pn.widgets.Select.from_param(state.param.regularizer)

    def show(source):
        n_samples.visible = seed.visible = source == SIMULATION
        bin_width.visible = source != SIMULATION
        upload.visible = source == UPLOAD

    show(state.source)
    state.param.watch(lambda e: show(e.new), "source")
    note = pn.pane.Markdown(
        f"Upload .npz, .csv or .nwb, at most {MAX_UPLOAD_BYTES // 2**20} MB (schema in the "
        "README).", visible=upload.param.visible, margin=(0, 10))
    return pn.Column(source, n_samples, seed, bin_width, upload, note, unit, regularizer,
                     sizing_mode="stretch_width")


def _send_upload(state, files: dict):
    """Hand the newest file to the state as (name, bytes); FileDropper decodes text files."""
    if files:
        name, data = list(files.items())[-1]
        state.upload = (name, data.encode() if isinstance(data, str) else data)


def variable_controls(state) -> pn.Column:
    """One card per variable: include, bin count, log10 strength (sliders act on release)."""
    column = pn.Column(sizing_mode="stretch_width")

    def build(rows):
        column.objects = [
            pn.Param(
                row,
                parameters=["include", "n_bins", "log_strength"],
                widgets={"n_bins": {"type": pn.widgets.IntSlider, "throttled": True},
                         "log_strength": {"type": pn.widgets.FloatSlider, "throttled": True}},
                name=f"{row.name} ({row.unit})" if row.unit else row.name,
                sizing_mode="stretch_width",
                css_classes=["variable-row"],
            )
            for row in rows
        ]

    build(state.variables)
    state.param.watch(lambda e: build(e.new), "variables")
    return column


def stats_view(state) -> pn.pane.Markdown:
    """Fit statistics as a small table."""

    def table(stats):
        if not stats:
            return "Fitting..."
        lines = ["| statistic | value |", "|---|---|"]
        for key, value in stats.items():
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"| {key} | {text} |")
        return "\n".join(lines)

    return pn.pane.Markdown(pn.bind(table, state.param.stats), name="Fit statistics",
                            sizing_mode="stretch_width")


def error_view(state) -> pn.pane.Alert:
    """The current problem, if any, in a red box."""
    return pn.pane.Alert(state.param.error, alert_type="danger",
                         visible=state.param.error.rx.bool(), sizing_mode="stretch_width")
