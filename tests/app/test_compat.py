"""The private Panel, Bokeh and BokehJS names the explorer hooks (widgets/_compat.py) still exist
with the signatures used, and outside the tested versions Panel's stock behaviour is used."""

from __future__ import annotations

import base64
import inspect
import logging
from contextlib import nullcontext
from pathlib import Path

import bokeh
import numpy as np
import panel as pn
import pytest
from bokeh.core.property.validation import validate
from bokeh.core.serialization import Deserializer, Serialized, Serializer, make_id
from bokeh.document import Document
from bokeh.settings import settings
from panel.links import Callback
from panel.models.file_dropper import FileDropper

from widgets import _compat


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


@pytest.fixture
def untested(monkeypatch):
    """As if a Panel release after the tested ones were installed."""
    versions = dict(_compat.installed_versions(), panel="1.10.0")
    monkeypatch.setattr(_compat, "installed_versions", lambda: versions)
    _compat.hooks_enabled.cache_clear()
    yield
    monkeypatch.undo()
    _compat.hooks_enabled.cache_clear()


def test_the_installed_versions_are_the_tested_ones():
    assert _compat.untested_versions(_compat.installed_versions()) == []
    assert _compat.hooks_enabled()


def test_a_version_is_tested_from_the_lowest_minor_release_to_below_the_upper_one():
    low, high = _compat.TESTED["panel"]
    assert _compat.untested_versions({"panel": f"{low}.0"}) == []
    assert _compat.untested_versions({"panel": f"{low}.17"}) == []
    assert _compat.untested_versions({"panel": f"{high}.0rc1"}) == [f"panel {high}.0rc1"]
    assert _compat.untested_versions({"panel": f"{high}.0"}) == [f"panel {high}.0"]
    assert _compat.untested_versions({"panel": "1.4.5"}) == ["panel 1.4.5"]


@pytest.mark.parametrize("slider", [pn.widgets.IntSlider, pn.widgets.FloatSlider])
def test_panel_slider_internals_the_prompt_slider_overrides(slider):
    assert parameters(slider._server_change) == ["self", "doc", "ref", "subpath", "attr", "old",
                                                 "new"]
    assert parameters(slider._change_event) == ["self", "doc"]
    widget = slider()
    assert isinstance(widget._events, dict) and isinstance(widget._changing, dict)
    assert parameters(pn.state._handle_exception) == ["exception"]
    prompt = _compat.slider_type(slider)
    assert issubclass(prompt, _compat.PromptSlider) and issubclass(prompt, slider)


def test_panel_file_dropper_scripts_and_jscallback_registry():
    scripts = FileDropper.__javascript__
    assert scripts and all(isinstance(url, str) and url.endswith(".js") for url in scripts)
    assert _compat.file_dropper_scripts() == list(scripts)
    assert _compat.page_extensions(served=True) == ("tabulator",)
    assert hasattr(Callback, "registry") and parameters(Callback.unwatch) == ["self"]


def test_bokeh_serializer_and_document_internals():
    assert parameters(validate) == ["value"]
    assert "deferred" in parameters(Serializer)
    assert parameters(Deserializer.deserialize) == ["self", "obj"]
    assert parameters(make_id) == []
    assert parameters(Serialized) == ["content", "buffers"]
    with Document().models.freeze():
        pass
    assert callable(settings.perform_document_validation.set_value)


def test_a_copied_figure_has_new_ids_and_the_same_values():
    from bokeh.plotting import figure

    original = figure(title="x")
    original.line([0, 1], [1, 2])
    copy, ids = _compat.copy_models(_compat.serialize(original))
    assert copy.id == ids[original.id] != original.id
    assert copy.title.text == "x"
    assert {m.id for m in copy.references()}.isdisjoint({m.id for m in original.references()})


BOKEHJS_NAMES = [
    # bokeh_redraw_fixes.js
    '"core/dom"', "InlineStyleSheet", "_update", '"core/visuals/visual"', "VisualProperties",
    "_get_css_value", "css_prefix", '"models/annotations/legend"', "LegendView",
    "on_transitive_change", "_should_rerender_items", "_render_items", "_toggle_inactive",
    '"styles/legend.css"', '"models/layouts/layout_dom"', "LayoutDOMView",
    '"models/layouts/css_grid_box"', "CSSGridBoxView", "_update_layout", "child_models",
    '"document/document"', "apply_json_patch", "_new_models",
    # CHECKBOX_LABELS_JS: a checkbox's text is a sibling <div class="bk-label">
    '"bk-label"',
    # FIGURE_VIEWS_JS (export.py): Bokeh.index and PlotView.export
    "get index", "PlotView", "export(", "child_views",
]


@pytest.mark.parametrize("name", BOKEHJS_NAMES)
def test_bokehjs_names_the_page_relies_on_are_in_the_installed_bokehjs(name):
    bundle = Path(bokeh.__file__).parent / "server" / "static" / "js" / "bokeh.min.js"
    assert name in bundle.read_text(encoding="utf-8")


def test_the_redraw_fixes_are_given_the_tested_bokehjs_versions():
    url = _compat.redraw_fixes()["bokeh_redraw_fixes"]
    script = base64.b64decode(url.split(",", 1)[1]).decode()
    low, high = _compat.TESTED["bokeh"]
    assert script.rstrip().endswith(f'(["{low}", "{high}"]);')
    assert "Bokeh.version" in script


def test_outside_the_tested_versions_panel_stock_behaviour_and_one_warning(untested, caplog):
    with caplog.at_level(logging.WARNING, logger=_compat.__name__):
        assert not _compat.hooks_enabled()
        assert not _compat.hooks_enabled()
    assert len(caplog.records) == 1 and "panel 1.10.0" in caplog.records[0].getMessage()
    assert _compat.slider_type(pn.widgets.IntSlider) is pn.widgets.IntSlider
    assert _compat.slider_type(pn.widgets.FloatSlider) is pn.widgets.FloatSlider
    assert _compat.redraw_fixes() == {}
    assert "filedropper" in _compat.page_extensions(served=True)
    assert _compat.file_dropper_scripts() == []
    assert not _compat.figure_copies()
    assert isinstance(_compat.frozen_models(), nullcontext)
    before = settings.perform_document_validation()
    _compat.skip_document_validation()
    assert settings.perform_document_validation() == before


def test_outside_the_tested_versions_the_page_uses_stock_sliders_and_figures(untested):
    from widgets.controls import joint_controls
    from widgets.plots import TuningCurvePlot, tuning_curve_plot
    from widgets.state import ExplorerState

    sliders = [w for w in joint_controls(ExplorerState()).objects
               if isinstance(w, (pn.widgets.IntSlider, pn.widgets.FloatSlider))]
    assert len(sliders) == 3
    assert not any(isinstance(w, _compat.PromptSlider) for w in sliders)

    class Curve:
        name, unit, truth, lower, upper = "x", "cm", None, None, None
        centres = empirical = model = np.linspace(0, 1, 10)

    plot = tuning_curve_plot(Curve())
    assert isinstance(plot, TuningCurvePlot) and plot.figure.title.text == "x"
