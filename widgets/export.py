"""Export views: downloads of the fit (CSV, JSON), of the tuning-curve figure (PNG and SVG, drawn
in the browser by Bokeh), and the "Code" card with snippets that reproduce the fit. No maths:
the texts come from ``glm_core.export``."""

from __future__ import annotations

import io

import panel as pn

from glm_core import export
from glm_core.lag_export import LagExport

from ._compat import FIGURE_VIEWS_JS
from .state import ExplorerState
from .vocabulary import EXPORT_NAMES

# Bokeh exports each figure itself (PlotView.export, as its SaveTool does: no server-side
# browser); the figures are then stacked, one below the other.
# One PNG: each figure's canvas layer drawn onto one canvas.
JS_FIGURE_PNG = FIGURE_VIEWS_JS + """
if (!views.length) return;
const layers = views.map(v => v.export('png', true).canvas);
const out = document.createElement('canvas');
out.width = Math.max(...layers.map(c => c.width));
out.height = layers.reduce((h, c) => h + c.height, 0);
const ctx = out.getContext('2d');
ctx.fillStyle = 'white';
ctx.fillRect(0, 0, out.width, out.height);
let y = 0;
for (const c of layers) { ctx.drawImage(c, 0, y); y += c.height; }
out.toBlob((blob) => save(blob, 'tuning_curves.png'), 'image/png');
"""

# One SVG document: each figure's SVG layer (Bokeh's canvas2svg context, vector paths and text)
# nested as an <svg> at its offset, on a white background.
JS_FIGURE_SVG = FIGURE_VIEWS_JS + """
if (!views.length) return;
const NS = 'http://www.w3.org/2000/svg';
const layers = views.map(v => v.export('svg', false).canvas);
const size = (s, key) => Number(s.getAttribute(key));
const width = Math.max(...layers.map(s => size(s, 'width')));
const height = layers.reduce((h, s) => h + size(s, 'height'), 0);
const out = document.createElementNS(NS, 'svg');
for (const [key, value] of [['width', width], ['height', height],
                            ['viewBox', `0 0 ${width} ${height}`]])
  out.setAttribute(key, value);
const background = document.createElementNS(NS, 'rect');
for (const [key, value] of [['width', width], ['height', height], ['fill', 'white']])
  background.setAttribute(key, value);
out.appendChild(background);
let y = 0;
for (const s of layers) {
  const part = s.cloneNode(true);
  part.setAttribute('x', 0);
  part.setAttribute('y', y);
  out.appendChild(part);
  y += size(s, 'height');
}
const text = new XMLSerializer().serializeToString(out);
save(new Blob(['<?xml version="1.0" encoding="UTF-8"?>\\n', text], {type: 'image/svg+xml'}),
     'tuning_curves.svg');
"""


def fit_settings(state: ExplorerState) -> export.FitSettings:
    """What decides the state's current fit, for glm_core.export."""
    rows, enc = state.variables, state.encoding
    return export.FitSettings(
        data=EXPORT_NAMES[state.source], unit=str(state.unit),
        regularizer=state.regularizer, names=tuple(r.name for r in rows),
        circular=tuple(r.circular for r in rows), n_bins=enc.n_bins,
        n_basis=tuple(None if b is None else b.shape[1] for b in enc.bases),
        include=tuple(r.include for r in rows),
        log_strengths=tuple(float(r.log_strength) for r in rows),
        pairs=tuple(enc.pairs), pair_log_strengths=(float(state.joint_log_strength),)
        * len(enc.pairs),
        n_samples=state.n_samples, seed=state.seed, n_units=state.open_field_units,
        bin_width=float(state.session.bin_width),
        filename=state.upload[0] if state.upload else "",
        lags=tuple(LagExport(r.kind, r.source, round(r.window_ms / 1e3 / state.session.bin_width),
                             float(state.session.bin_width), r.n_basis, r.include,
                             float(r.log_strength)) for r in state.lags_in_model()))


def fit_record(state: ExplorerState) -> dict:
    """The state's current fit as glm_core.export's JSON-ready record; when the page shows no
    fit, a record that says so and why."""
    if state.fit is None:
        return export.no_fit_record(state.session.source if state.session else "",
                                    str(state.unit), no_fit_reason(state))
    return export.fit_record(fit_settings(state), state.session.source,
                             state.encoding.binnings, state.fit, state.curves, state.stats,
                             state.encoding.bases, state.maps, state.filters)


def no_fit_reason(state: ExplorerState) -> str:
    """Why the page shows no fit: the page's message, if any."""
    return state.error or "nothing is fitted yet"


def export_controls(state: ExplorerState) -> pn.Column:
    """Download buttons: the fit as CSV and JSON (built on click), the figure as PNG and as
    SVG (drawn in the browser)."""
    def text(render):
        return lambda: io.StringIO(render(fit_record(state)))

    csv = pn.widgets.FileDownload(callback=text(export.record_csv), filename="glm_fit.csv",
                                  label="Coefficients and curves (CSV)", embed=False,
                                  button_type="default", css_classes=["export-csv"])
    json = pn.widgets.FileDownload(callback=text(export.record_json), filename="glm_fit.json",
                                   label="Coefficients and curves (JSON)", embed=False,
                                   button_type="default", css_classes=["export-json"])
    figures = []
    for kind, code in (("png", JS_FIGURE_PNG), ("svg", JS_FIGURE_SVG)):
        figure = pn.widgets.Button(name=f"Figure of the tuning curves ({kind.upper()})",
                                   css_classes=[f"export-{kind}"])
        figure.js_on_click(code=code)
        figures.append(figure)
    return pn.Column("### Export", csv, json, *figures, sizing_mode="stretch_width")


# Markdown's code blocks are 0.7 em (about 8 px) by default: too small to read, or copy from.
CODE_CSS = "pre, code { font-size: 14px; }"


def code_view(state: ExplorerState, hidden=False) -> pn.Tabs:
    """The current fit as a glm_core snippet and as a NeMoS snippet, following every fit while
    ``hidden`` (a bool or a parameter, e.g. its card's ``collapsed``) is false, so that a hidden
    view adds nothing to a refit's patch. The page builds it when its card is first opened."""

    def snippet(write, _curves, hidden):
        if hidden:
            return ""
        if state.fit is None:
            return f"No fit to reproduce: {no_fit_reason(state)}."
        return f"```python\n{write(fit_settings(state))}```"

    return pn.Tabs(*[(title, pn.pane.Markdown(pn.bind(snippet, write, state.param.curves,
                                                       hidden),
                                              css_classes=[f"snippet-{key}"],
                                              stylesheets=[CODE_CSS]))
                     for title, key, write in (("glm_core", "glm", export.glm_snippet),
                                               ("NeMoS", "nemos", export.nemos_snippet))])
