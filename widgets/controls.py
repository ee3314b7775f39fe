"""Sidebar controls and status views bound to an :class:`ExplorerState`."""

from __future__ import annotations

import html

import numpy as np
import panel as pn

from glm_core.loaders import MAX_UPLOAD_BYTES

from ._compat import (
    file_dropper_loaded,
    file_dropper_scripts,
    release_at_session_end,
    slider_type,
)
from .jobs import in_server, job_progress
from .scores import SE_SUFFIX
from .share import RECORDING_BIN_WIDTH
from .vocabulary import BINS, HISTORY_SIMULATION, OPEN_FIELD, RECORDING, SIMULATION, UPLOAD

LIVE_INTERVAL_MS = 80  # refits while a slider is dragged: at most about 12 per second
# Loads FilePond's scripts into the page, once, when the uploaded-file source is first chosen,
# then ticks ``ready`` (the server then makes the upload box). Loaded with the page, FilePond
# redraws on every animation frame, upload box or not: about 6% of a core per open tab.
JS_LOAD_FILEPOND = """
if (cb_obj.value !== upload || ready.active) return;
const done = () => { ready.active = true; };
if (window.FilePond) { done(); return; }
const next = (i) => {
  if (i === urls.length) { done(); return; }
  const script = document.createElement('script');
  script.src = urls[i];
  script.onload = () => next(i + 1);
  document.head.appendChild(script);
};
next(0);
"""


def data_controls(state) -> pn.Column:
    """Data source, simulation settings, bin width, upload, unit and regularizer type. The upload
    box (FilePond) is made when the uploaded-file source is first chosen, once the browser has
    loaded FilePond's scripts (JS_LOAD_FILEPOND); a served page does not load them before."""
    upload = pn.Column(sizing_mode="stretch_width")
    source = pn.widgets.Select.from_param(state.param.source, name="data source",
                                          stylesheets=[INPUT_CSS])
    # FilePond is on the page already where it is not served (a notebook loads the extension)
    ready = pn.widgets.Checkbox(value=not in_server(), visible=False,
                                css_classes=["filepond-ready"])
    load = source.jscallback(value=JS_LOAD_FILEPOND, args={
        "ready": ready, "upload": UPLOAD, "urls": file_dropper_scripts()})
    if in_server():
        release_at_session_end(load, source)
    refused = pn.pane.Alert("", alert_type="warning", visible=False, margin=(0, 10),
                            css_classes=["refused-value"])
    n_samples, seed, folds, units = (bounded_input(pn.widgets.IntInput, state, name, refused)
                                     for name in ("n_samples", "seed", "n_folds",
                                                  "open_field_units"))
    bin_width = bounded_input(pn.widgets.FloatInput, state, "bin_width", refused,
                              lambda: (RECORDING_BIN_WIDTH if state.source == RECORDING
                                       else state.param.bin_width.bounds))
    unit = pn.widgets.Select.from_param(state.param.unit, stylesheets=[INPUT_CSS])
    regularizer = pn.widgets.Select.from_param(state.param.regularizer, stylesheets=[INPUT_CSS])

    def show(source):
        n_samples.visible = seed.visible = source in (SIMULATION, HISTORY_SIMULATION)
        units.visible = source == OPEN_FIELD
        bin_width.visible = source not in (SIMULATION, HISTORY_SIMULATION)
        upload.visible = source == UPLOAD
        if upload.visible and not upload.objects and ready.value:
            upload.objects = [*upload_box(state)]

    show(state.source)
    state.param.watch(lambda e: show(e.new), "source")
    ready.param.watch(lambda e: show(state.source), "value")
    note = pn.pane.Markdown(
        f"Upload .npz, .csv or .nwb, at most {MAX_UPLOAD_BYTES // 2**20} MB (schema in the "
        "README).", visible=upload.param.visible, margin=(0, 10))
    return pn.Column(source, n_samples, seed, units, bin_width, upload, note,
                     progress_view(state),
                     unit, regularizer, folds, refused, ready,
                     sizing_mode="stretch_width")


def bounded_input(widget_type, state, name: str, refused: pn.pane.Alert, limits=None):
    """A number box for ``state``'s setting ``name`` that holds only values the model uses: a
    typed value outside ``limits()`` (default: the parameter's bounds) is replaced in the box by
    the nearest allowed value, which is used, and ``refused`` says so.

    Args:
        widget_type: Panel's IntInput or FloatInput.
        state: the ExplorerState; name: one of its numeric parameters.
        refused: the alert that explains a replaced value (hidden by the next accepted one).
        limits: returns (low, high) for the current data source.
    Returns:
        The widget.
    """
    p = state.param[name]
    limits = limits or (lambda: p.bounds)
    # No start/end in the browser: Bokeh's Spinner keeps its old value, silently, when a typed
    # one is out of range; the server bounds it instead, visibly.
    widget = widget_type(name=p.label, value=getattr(state, name), step=p.step or 1,
                         sizing_mode="stretch_width", stylesheets=[INPUT_CSS])

    echo = []  # set while the box shows a value it did not type: no new notice, none hidden

    def show(value):
        echo.append(value)
        try:
            widget.value = value
        finally:
            echo.pop()

    def apply(event):
        if event.new is None:  # an emptied box: back to the setting
            show(getattr(state, name))
            return
        low, high = limits()
        kept = min(max(event.new, low), high)
        if kept != event.new:
            refused.object = (f"**{p.label}:** {event.new:g} is outside {low:g} to {high:g}, "
                              f"so {kept:g} is used.")
            refused.visible = True
            show(kept)
        elif not echo:
            refused.visible = False
        setattr(state, name, kept)

    widget.param.watch(apply, "value")
    state.param.watch(lambda e: show(e.new), name)
    return widget


REFUSED_CSS = ":host { color: #b02a37; }"
# A <select> or <input> keeps the browser's own font size (13.33 px), not the page's: in
# presentation mode (widgets/page.py) the boxes, their options and values take its size.
INPUT_CSS = ("select, option, input:not([type=checkbox]) "
             "{ font-size: var(--presentation-input-font-size, 13.3333px); }")


def upload_box(state) -> tuple[pn.Column, pn.pane.Markdown]:
    """The upload box and, under it, what became of the last file. A file the loader refuses
    gets a fresh box (FilePond's green "Upload complete" only says the bytes arrived) and a red
    note that the page still shows the previous data."""
    box = pn.Column(sizing_mode="stretch_width")
    note = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width",
                            css_classes=["upload-rejected"], stylesheets=[REFUSED_CSS])
    pending = []  # the name of a file sent to the state and not yet loaded or refused

    def sent(files):
        if files:
            pending[:] = [list(files)[-1]]
            note.visible = False

    def loaded(event):
        pending.clear()

    def refused(event):
        if pending and event.new:
            shown = state.session.source if state.session is not None else "nothing"
            note.object = (f"**{pending[0]} was not loaded**: {event.new} The page still shows "
                           f"{shown}.")
            note.visible = True
            pending.clear()
            box.objects = [_file_dropper(state, sent)]

    state.param.watch(loaded, "session")
    state.param.watch(refused, "error", onlychanged=False)
    box.objects = [_file_dropper(state, sent)]
    return box, note


def _file_dropper(state, sent) -> pn.widgets.FileDropper:
    # No accepted_filetypes: browsers report .npz and .nwb under varying MIME types, so the type
    # is checked on the server, with a message, like everything else about the file.
    file_dropper_loaded()
    dropper = pn.widgets.FileDropper(
        multiple=False, previews=[],
        max_file_size=f"{MAX_UPLOAD_BYTES // 2**20}MB", sizing_mode="stretch_width")
    dropper.param.watch(lambda e: sent(e.new), "value")  # first: a refusal may come at once
    dropper.param.watch(lambda e: _send_upload(state, e.new), "value")
    return dropper


def model_actions(state) -> pn.Column:
    """Buttons that ask the held-out score: best strengths, which variables matter; the
    running job's progress and Cancel button."""
    best = pn.widgets.Button(name="Best strengths", button_type="primary")
    best.on_click(lambda _: state.best_strengths())
    paths = pn.widgets.Button(name="Regularization paths")
    paths.on_click(lambda _: state.update_paths())
    select = pn.widgets.Button(name="Which variables matter?")
    select.on_click(lambda _: state.select_variables())
    apply = pn.widgets.Button(name="Apply selection", disabled=True)
    apply.on_click(lambda _: state.apply_selection())

    def table(selection):
        apply.disabled = selection is None or not selection.selected
        if selection is None:
            return ""
        names = [state.encoding.leaf_name(leaf, [v.name for v in state.session.variables])
                 for leaf in range(len(state.encoding.leaves))]
        lines = ["| step | added | pooled gain (bits/spike) | p (Wilcoxon) |",
                 "|---|---|---|---|"]
        for i, step in enumerate(selection.steps, 1):
            verdict = names[step.chosen] + ("" if step.added else " (not added)")
            lines.append(f"| {i} | {verdict} | {step.pooled_gain:+.4f} | {step.p_value:.3g} |")
        chosen = ", ".join(names[v] for v in selection.selected) or "none"
        return "\n".join(lines + ["", f"**Selected:** {chosen}",
                                  "", selection_reason(selection, names)])

    return pn.Column(pn.Row(best, paths), pn.Row(select, apply), job_progress(state.jobs),
                     pn.pane.Markdown(pn.bind(table, state.param.selection),
                                      name="Variable selection"),
                     sizing_mode="stretch_width")


def selection_reason(selection, names) -> str:
    """Why forward selection stopped where it did, in words: the test could not reach alpha
    with these folds, the gain was below the minimum, or the test did not find it."""
    step = selection.steps[-1]
    if step.added:
        return "Every variable was added."
    name, alpha = names[step.chosen], selection.alpha
    n = round(-np.log2(step.smallest_p))
    if step.smallest_p >= alpha:
        return (f"{name} was not added: with {n} folds the smallest p-value the one-sided "
                f"Wilcoxon test can give is 2^-{n} = {step.smallest_p:.3g}, not below "
                f"{alpha:g}, however large the gain (+{step.pooled_gain:.4f} bits/spike). "
                f"Choose at least {int(np.ceil(-np.log2(alpha) + 1e-9))} folds, or judge by "
                "the gains and the paths.")
    if step.pooled_gain < selection.min_gain:
        return (f"{name} was not added: its held-out gain ({step.pooled_gain:+.4f} bits/spike)"
                f" is below the minimum of {selection.min_gain:g} bits/spike.")
    return (f"{name} was not added: its gain is not consistent across folds "
            f"(p = {step.p_value:.3g}, not below {alpha:g}).")


def progress_view(state) -> pn.Row:
    """An indeterminate bar and "Reading <file>..." while a data set is read; hidden otherwise."""
    return pn.Row(
        pn.indicators.Progress(active=True, value=-1, width=60, height=12, margin=(12, 5)),
        pn.pane.Str(state.param.progress, margin=(5, 5)),
        visible=state.param.progress.rx.bool(), css_classes=["reading-progress"],
        sizing_mode="stretch_width")


def _send_upload(state, files: dict):
    """Hand the newest file to the state as (name, bytes); FileDropper decodes text files."""
    if files:
        name, data = list(files.items())[-1]
        state.upload = (name, data.encode() if isinstance(data, str) else data)


def variable_controls(state) -> pn.Column:
    """One card per variable: include, bin count, log10 strength. With the 2-D map on, the
    paired variables' own bins, strength and encoding are disabled (the map's sliders set
    them)."""
    column = pn.Column(sizing_mode="stretch_width")
    cards = []

    def build(rows):
        cards[:] = [(row, *_variable_card(row)) for row in rows]
        column.objects = [card for _, card, _ in cards]
        disable_paired()

    def disable_paired(*_):
        paired = set(state.map_variables() or ()) if state.joint_map else set()
        for row, _, own in cards:
            for widget in own:
                widget.disabled = row.name in paired

    build(state.variables)
    state.param.watch(lambda e: build(e.new), "variables")
    state.param.watch(disable_paired, ["joint_map", "session"])
    return column


def _variable_card(row) -> tuple[pn.Column, list]:
    """The card, and its widgets that a 2-D map overrides (bins, strength, encoding)."""
    details = ", ".join(x for x in (row.unit, "circular" if row.circular else "") if x)
    title = f"{row.name} ({details})" if details else row.name
    n_bins = live_slider(pn.widgets.IntSlider, row, "n_bins")
    n_basis = live_slider(pn.widgets.IntSlider, row, "n_basis")
    strength = live_slider(pn.widgets.FloatSlider, row, "log_strength")
    encoding = pn.widgets.Select.from_param(row.param.encoding, sizing_mode="stretch_width",
                                            stylesheets=[INPUT_CSS])

    def show(encoding):  # the bin count for bins, the basis size for a basis
        n_bins.visible, n_basis.visible = encoding == BINS, encoding != BINS

    show(row.encoding)
    row.param.watch(lambda e: show(e.new), "encoding")
    card = pn.Column(
        f"**{title}**",
        pn.widgets.Checkbox.from_param(row.param.include),
        n_bins,
        strength,
        encoding,
        n_basis,
        css_classes=["variable-row"],
        sizing_mode="stretch_width",
    )
    return card, [n_bins, strength, encoding, n_basis]


def live_slider(widget_type, obj, name: str):
    """A slider whose curves follow while it is dragged, at most every ``LIVE_INTERVAL_MS``,
    and land exactly on the value it is released at; ``widget_type`` is Panel's IntSlider or
    FloatSlider, applied as soon as a value arrives where Panel is a tested version."""
    p = obj.param[name]
    widget = slider_type(widget_type)(name=p.label, start=p.bounds[0], end=p.bounds[1],
                                      step=p.step or 1, value=getattr(obj, name),
                                      sizing_mode="stretch_width")
    from_widget = []  # set while the widget's own value is applied

    def apply(value):
        from_widget.append(value)
        try:
            setattr(obj, name, value)
        finally:
            from_widget.pop()

    def follow(event):
        # Only values the app sets (Best strengths, Apply selection) move the slider: echoing a
        # throttled value back would undo keys pressed since, while it was being applied.
        if not from_widget:
            widget.value = event.new

    throttle = Throttle(apply, LIVE_INTERVAL_MS)
    widget.param.watch(lambda e: throttle(e.new), "value")
    widget.param.watch(lambda e: throttle.apply_now(e.new), "value_throttled")
    obj.param.watch(follow, name)
    return widget


class Throttle:
    """Passes values on at most once per ``interval_ms``: a value after a quiet spell at once (a
    key press refits without waiting), then, while values keep coming, the latest of each
    interval when it ends (immediately outside a server, where there is no event loop)."""

    def __init__(self, apply, interval_ms: int):
        self._apply = apply
        self._interval_ms = interval_ms
        self._pending = []
        self._cooling = False

    def __call__(self, value):
        if not in_server():
            self._apply(value)
        elif self._cooling:
            self._pending = [value]
        else:
            self.apply_now(value)
            self._cool()

    def apply_now(self, value):
        self._pending = []
        self._apply(value)

    def _cool(self):
        self._cooling = True
        pn.state.add_periodic_callback(self._fire, period=self._interval_ms, count=1)

    def _fire(self):
        self._cooling = False
        if self._pending:
            self.apply_now(self._pending.pop())
            self._cool()


STATS_CSS = ("table {border-collapse: collapse; width: 100%} "
             "th, td {text-align: left; padding: 3px 8px; border-bottom: 1px solid #ddd}")


def stats_view(state) -> pn.pane.HTML:
    """Fit statistics as a small table, one row per entry of ``state.stats``, redrawn once the
    settings rest (``settled``, with the held-out score): a key press repaints only the curves.
    A new data set or unit clears it until its own statistics are in."""
    pane = pn.pane.HTML(stats_table(state.stats), name="Fit statistics",
                        sizing_mode="stretch_width", stylesheets=[STATS_CSS])

    def show(event):
        pane.object = stats_table(state.stats if event.name == "settled" else {})

    state.param.watch(show, ["settled", "session", "unit"])
    return pane


def stats_table(stats: dict) -> str:
    """``stats`` as an HTML table (a plain table: a refit re-sends only this text). A statistic
    with a standard error ("<name> SE") shows as "value ± SE"; per-fold lists are left to the
    exports."""
    if not stats:
        return "Fitting..."
    rows = "".join(
        f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(_shown(stats, key))}</td></tr>"
        for key, value in stats.items()
        if not isinstance(value, list) and not (key.endswith(SE_SUFFIX)
                                                and key[: -len(SE_SUFFIX)] in stats))
    return f"<table><tr><th>statistic</th><th>value</th></tr>{rows}</table>"


def _shown(stats: dict, key: str) -> str:
    value, se = stats[key], stats.get(key + SE_SUFFIX)
    if se is not None:
        return f"{value:.4f} ± {se:.4f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def error_view(state) -> pn.Column:
    """The current problem, if any, in a red box; below it, in a yellow one, the settings a new
    data set could not keep."""
    return pn.Column(
        pn.pane.Alert(state.param.error, alert_type="danger",
                      visible=state.param.error.rx.bool(), sizing_mode="stretch_width"),
        pn.pane.Alert(state.param.notice.rx.pipe(lambda text: f"**Not kept:** {text}"),
                      alert_type="warning", visible=state.param.notice.rx.bool(),
                      sizing_mode="stretch_width", css_classes=["kept-notice"]),
        sizing_mode="stretch_width")


def joint_controls(state) -> pn.Column:
    """The 2-D map: pair the first two linear variables, its bins per axis (labelled with the
    paired variables' names) and its strength."""
    sliders = [live_slider(pn.widgets.IntSlider, state, "joint_nx"),
               live_slider(pn.widgets.IntSlider, state, "joint_ny"),
               live_slider(pn.widgets.FloatSlider, state, "joint_log_strength")]

    def show(*_):
        for slider in sliders:
            slider.visible = state.joint_map
        names = state.map_variables()
        if names:
            for slider, name in zip(sliders, names):
                slider.name = f"2-D map: bins of {name}"

    show()
    state.param.watch(show, ["joint_map", "session"])
    return pn.Column(pn.widgets.Checkbox.from_param(state.param.joint_map,
                                                    name="2-D map (first two linear variables)",
                                                    css_classes=["joint-toggle"]),
                     *sliders, css_classes=["joint-controls"], sizing_mode="stretch_width")
