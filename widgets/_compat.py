"""Every private Panel, Bokeh and BokehJS API the explorer relies on, in one place.

Each hook says which versions it was written against and why it exists. They were written
against, and are tested with, the versions in ``TESTED``. Outside that range :func:`hooks_enabled`
is false (with one logged warning) and the page falls back to Panel's stock behaviour: plain
sliders, FilePond loaded with the page, no BokehJS patch, figures built by HoloViews each time,
no frozen model graph and Bokeh's document validation left on. ``tests/test_compat.py`` checks
that every hooked name still exists with the signature used here.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from contextlib import nullcontext
from importlib import metadata
from pathlib import Path

import panel as pn
from bokeh.core.property.validation import validate
from bokeh.core.serialization import Deserializer, Serialized, Serializer, make_id
from bokeh.settings import settings
from packaging.version import Version

# [lowest, below) per package: the releases these hooks were written against and tested with.
# The lower ends are checked by benchmarks/lowest_versions.py, the upper by the suite
# (constraints.txt).
TESTED = {"panel": ("1.8", "1.10"), "bokeh": ("3.8", "3.10"), "holoviews": ("1.19", "1.24")}
REDRAW_FIXES_JS = Path(__file__).with_name("bokeh_redraw_fixes.js")

log = logging.getLogger(__name__)


def installed_versions() -> dict[str, str]:
    """The installed version of each package in ``TESTED``."""
    return {name: metadata.version(name) for name in TESTED}


def untested_versions(versions: dict[str, str]) -> list[str]:
    """``"name version"`` of each package in ``versions`` outside its ``TESTED`` range."""
    def minor(text):
        return Version(text).release[:2]

    return [f"{name} {version}" for name, version in versions.items()
            if not minor(TESTED[name][0]) <= minor(version) < minor(TESTED[name][1])]


@functools.cache
def hooks_enabled() -> bool:
    """Whether the installed Panel, Bokeh and HoloViews are the tested ones, so that the hooks
    below are used; otherwise Panel's stock behaviour, with one warning (once per process)."""
    untested = untested_versions(installed_versions())
    if untested:
        log.warning("Untested %s (tested: %s): the explorer uses Panel's stock sliders, uploads "
                    "and figures, without its speed-ups.", ", ".join(untested),
                    ", ".join(f"{n} >={lo},<{hi}" for n, (lo, hi) in TESTED.items()))
    return not untested


# --- Panel: sliders applied at once (Panel 1.9: Syncable._server_change, _events, _changing,
# _change_event, pn.state._handle_exception) ------------------------------------------------

PROMPT_CHANGES = ("value", "value_throttled")


class PromptSlider:
    """A slider whose browser value is applied inside the handler of the message that brings it.

    Panel applies a browser change 50 ms after it arrives (its debounce, half of a key press's
    budget), and a refit finished while the message's acknowledgement is being written sends its
    patch only when Panel next retries (every 10 ms, behind the acknowledgement of the slider's
    second message, ``value_throttled``). Applied here, the refit's patch leaves first. Written
    against Panel 1.9's ``Syncable._server_change``, which queues the change in ``_events`` and
    applies it in ``_change_event`` after the debounce."""

    def _server_change(self, doc, ref, subpath, attr, old, new):
        if attr not in PROMPT_CHANGES or subpath or self._events or attr in self._changing.get(
                ref, []):
            super()._server_change(doc, ref, subpath, attr, old, new)
            return
        self._events = {attr: new}
        try:
            self._change_event(doc)
        except Exception as err:  # as Panel handles a callback's error; the socket stays open
            pn.state._handle_exception(err)


class PromptIntSlider(PromptSlider, pn.widgets.IntSlider):
    """An IntSlider whose value is applied as soon as it arrives."""


class PromptFloatSlider(PromptSlider, pn.widgets.FloatSlider):
    """A FloatSlider whose value is applied as soon as it arrives."""


PROMPT_SLIDERS = {pn.widgets.IntSlider: PromptIntSlider, pn.widgets.FloatSlider: PromptFloatSlider}


def slider_type(base: type) -> type:
    """The prompt version of ``base`` (IntSlider or FloatSlider), or ``base`` itself."""
    return PROMPT_SLIDERS[base] if hooks_enabled() else base


# --- Panel: FilePond loaded on demand (Panel 1.9: panel.models.file_dropper.FileDropper's
# __javascript__, the scripts the "filedropper" extension would load with the page) ------------

def page_extensions(served: bool) -> tuple[str, ...]:
    """Panel extensions a page loads: a served page with the hooks loads FilePond's scripts only
    when the uploaded-file source is first chosen (:func:`file_dropper_scripts`)."""
    return ("tabulator",) if served and hooks_enabled() else ("filedropper", "tabulator")


def file_dropper_scripts() -> list[str]:
    """The URLs of FilePond's scripts, for a page that loads them on demand; none where the page
    loads them itself (:func:`page_extensions`)."""
    if not hooks_enabled():
        return []
    from panel.models.file_dropper import FileDropper  # here: Panel < 1.5 has no such module

    return list(FileDropper.__javascript__)


def file_dropper_loaded() -> None:
    """Record (Panel 1.8-1.9: ``state._extensions``, the extensions this session's page loaded)
    that FilePond's scripts are on the page, loaded on demand: making the upload box then logs
    no "extension was not loaded" warning."""
    if not hooks_enabled():
        return
    loaded = pn.state._extensions
    if loaded is not None and "filedropper" not in loaded:
        loaded.append("filedropper")


# --- Panel: a jscallback kept in a class-wide registry (Panel 1.8-1.9: panel.links.Callback
# .registry, weakly keyed by the source widget; Callback.unwatch removes it from Panel 1.9) ------

def release_at_session_end(callback, source) -> None:
    """Drop the jscallback ``callback`` of widget ``source`` when the served session ends: its
    args (leading back to the session's state and to ``source``, the registry's key) would
    otherwise keep every closed tab's session in memory.

    Args:
        callback: what ``source.jscallback(...)`` returned.
        source: the widget it was attached to.
    """
    if not hooks_enabled() or pn.state.curdoc is None:
        return
    from panel.links import Callback

    unwatch = getattr(callback, "unwatch", None) or (lambda: Callback.registry.pop(source, None))
    pn.state.on_session_destroyed(lambda _: unwatch())


# --- BokehJS: redraw fixes (BokehJS 3.9: InlineStyleSheet._update, VisualProperties
# ._get_css_value, LegendView.on_transitive_change, CSSGridBoxView._update_layout, and
# Document.apply_json_patch's _new_models; see bokeh_redraw_fixes.js) ------------------------

def redraw_fixes() -> dict[str, str]:
    """``js_files`` for ``pn.extension``: the BokehJS redraw fixes, which also check the
    browser's ``Bokeh.version`` against ``TESTED`` before changing anything; none untested."""
    if not hooks_enabled():
        return {}
    script = f"({REDRAW_FIXES_JS.read_text()})({json.dumps(list(TESTED['bokeh']))});\n"
    return {"bokeh_redraw_fixes": "data:text/javascript;base64,"
            + base64.b64encode(script.encode()).decode()}


# --- BokehJS: a checkbox's label (BokehJS 3.8-3.9 draws Panel's Checkbox as an <input> and a
# sibling <div class="bk-label"> in its shadow root, not a <label>, so clicking the text did
# nothing): a click on such a text clicks its checkbox --------------------------------------------

CHECKBOX_LABELS_JS = """
document.addEventListener('click', (event) => {
  const target = event.composedPath()[0];
  if (!(target instanceof Element) || !target.classList.contains('bk-label')) return;
  const input = target.previousElementSibling;
  if (input && input.tagName === 'INPUT' && input.type === 'checkbox' && !input.disabled)
    input.click();
}, true);
"""


def checkbox_labels() -> dict[str, str]:
    """``js_files`` for ``pn.extension``: clicking a checkbox's text ticks it (none untested)."""
    if not hooks_enabled():
        return {}
    return {"checkbox_labels": "data:text/javascript;base64,"
            + base64.b64encode(CHECKBOX_LABELS_JS.encode()).decode()}


# --- BokehJS: exporting figures in the browser (BokehJS 3.9: Bokeh.index, the root views, and
# PlotView.export(type, hidpi), as Bokeh's SaveTool does) ---------------------------------------

# Every shown tuning-curve figure (a renderer with a `model` column) as `views`, and `save(blob,
# filename)`, which downloads a blob.
FIGURE_VIEWS_JS = """
const views = [];
const walk = (v) => {
  if (!v) return;
  if (v.model && v.model.type === 'Figure' && v.el.checkVisibility()) {
    const keys = (r) => { const d = r.data_source && r.data_source.data;
                          return d ? (d instanceof Map ? [...d.keys()] : Object.keys(d)) : []; };
    if (v.model.renderers.some(r => keys(r).includes('model'))) views.push(v);
  }
  for (const c of (v.child_views || [])) walk(c);
};
for (const v of Object.values(Bokeh.index)) walk(v);
const save = (blob, filename) => {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
};
"""


# --- Bokeh: copies of a figure through its serialized form (Bokeh 3.9:
# bokeh.core.serialization Serializer/Deserializer/make_id, bokeh.core.property.validation
# validate) ---------------------------------------------------------------------------------

def figure_copies() -> bool:
    """Whether figures may be copied from a serialized one (:func:`copy_models`), several times
    cheaper than building each through HoloViews."""
    return hooks_enabled()


def serialize(model):
    """``model`` and every model it references, serialized in full (no deferred buffers)."""
    return Serializer(deferred=False).serialize(model)


def copy_models(serialized) -> tuple[object, dict]:
    """New models from a ``serialize``d graph, every id renewed: ``(the copy of the top model,
    {old id: new id})``. The values are those of valid models, so they are not validated again
    (``validate(False)``: about half of a copy's time otherwise)."""
    ids = {}

    def fresh(rep):  # every model's id (its definition and the references to it) renewed
        if isinstance(rep, dict):
            rep = {key: fresh(value) for key, value in rep.items()}
            if isinstance(rep.get("id"), str):
                rep["id"] = ids.setdefault(rep["id"], make_id())
        elif isinstance(rep, list):
            rep = [fresh(value) for value in rep]
        return rep

    with validate(False):
        return Deserializer().deserialize(Serialized(fresh(serialized.content), [])), ids


# --- Bokeh: documents (Bokeh 3.9: Document.models.freeze(), the setting
# perform_document_validation) ----------------------------------------------------------------

def frozen_models():
    """Bokeh's ``Document.models.freeze()`` on the session's document: the set of models is
    recomputed (a walk of the whole graph) once at the end, not after every root the template
    adds (about 20 walks of the page's models per session otherwise)."""
    doc = pn.state.curdoc
    return doc.models.freeze() if doc is not None and hooks_enabled() else nullcontext()


def skip_document_validation() -> None:
    """Skip Bokeh's integrity checks of each new session's document (about 70 ms a tab): they
    only log warnings, and tests/test_views.py runs them on the page once."""
    if hooks_enabled():
        settings.perform_document_validation.set_value(False)
