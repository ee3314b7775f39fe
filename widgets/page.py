"""The explorer page, composed once for `panel serve app.py` and for notebooks.

``page_parts`` lays out one session's controls and views; ``explorer()`` returns them as one
layout that displays in Jupyter.
"""

from __future__ import annotations

from pathlib import Path

import jax
import panel as pn

from ._compat import checkbox_labels, page_extensions, redraw_fixes
from .compiles import solver_compiles
from .controls import (
    data_controls,
    error_view,
    joint_controls,
    model_actions,
    stats_view,
    variable_controls,
)
from .decode import decode_view
from .export import code_view, export_controls
from .lag_cards import LagCardsView
from .lessons import lessons_view
from .maps import TuningMapsView
from .model_in_time import ModelInTimeView
from .paths import paths_view
from .plots import TuningCurvesView
from .population import population_view
from .state import ExplorerState
from .traces import traces_view


def keep_compiled_solvers() -> None:
    """Keep compiled solvers on disk, so that a restarted server compiles nothing."""
    jax.config.update("jax_compilation_cache_dir",
                      str(Path.home() / ".cache" / "pytree-glm-explorer" / "jax"))


# Presentation mode for the page around the plots: Bokeh and Panel widgets read their font size
# from --bokeh-font-size, which (like font-size) reaches into their shadow roots; their <select>
# and <input> boxes read --presentation-input-font-size (controls.INPUT_CSS).
PRESENTATION_CSS = """
body.presentation { font-size: 24px; --bokeh-font-size: 22px;
                    --presentation-input-font-size: 22px; }
body.presentation table { font-size: 22px; }
"""


CURVES_MIN_WIDTH = 560  # px: a legend in presentation fonts and a plot area beside its axis


def load_extension(served: bool) -> None:
    """Panel's extensions, the page's CSS and the BokehJS redraw fixes. A ``served`` page
    stretches to the window's width and loads FilePond's scripts only when an upload is first
    chosen (controls.py)."""
    pn.extension(*page_extensions(served), notifications=False, raw_css=[PRESENTATION_CSS],
                 js_files={**redraw_fixes(), **checkbox_labels()},
                 **({"sizing_mode": "stretch_width"} if served else {}))


def presentation_toggle(state: ExplorerState) -> pn.widgets.Checkbox:
    """Large fonts and thick lines: the plots through the state, the page by a class on <body>
    (set in the browser, so it follows whoever changes the setting)."""
    toggle = pn.widgets.Checkbox.from_param(state.param.presentation,
                                            css_classes=["presentation-toggle"])
    toggle.jscallback(value="document.body.classList.toggle('presentation', cb_obj.active)")
    return toggle


def lazy_card(title: str, build, css_class: str) -> pn.Card:
    """A collapsed card whose content ``build()`` makes when it is first opened: a tab pays
    for (server time, Bokeh models, browser rendering) only the sections that are looked at."""
    card = pn.Card(title=title, collapsed=True, sizing_mode="stretch_width",
                   css_classes=["lazy-card", css_class])

    def open_first(event):
        if not event.new and not card.objects:
            card.objects = [build()]

    card.param.watch(open_first, "collapsed")
    return card


def page_parts(state: ExplorerState) -> tuple[list, list]:
    """``(sidebar, main)``: the controls and the views of one session. The code, paths,
    population, decoding, model-in-time and behaviour sections are built when first
    opened."""
    curves = pn.Column("## Tuning curves",
                       pn.Row(pn.widgets.Checkbox.from_param(state.param.show_bands,
                                                             css_classes=["bands-toggle"]),
                              presentation_toggle(state)),
                       TuningCurvesView(state), TuningMapsView(state))
    lesson, lesson_text = lessons_view(state)
    fit = pn.Column(lesson_text, "## Fit", stats_view(state), width=320, sizing_mode="fixed")
    paths = lazy_card("Held-out score along each strength (regularization paths)",
                      lambda: paths_view(state), "paths-card")
    # computed paths (the Regularization paths or Best strengths buttons) are shown at once
    state.param.watch(lambda e: e.new and setattr(paths, "collapsed", False), "paths")
    lags = lazy_card("Spike history, coupling and event kernels",
                     lambda: LagCardsView(state), "lags-card")
    # lagged leaves (a history simulation, a link, a lesson) show their cards at once
    state.param.watch(lambda e: e.new and setattr(lags, "collapsed", False), "lags")
    code = lazy_card("Code: reproduce this fit",
                     lambda: code_view(state, code.param.collapsed), "code-card")
    in_time = lazy_card("Model in time: observed spikes against the predicted rate",
                        lambda: ModelInTimeView(state, in_time), "model-in-time-card")
    # The Fit table goes below the curves where they would be narrower than CURVES_MIN_WIDTH.
    curves.min_width = CURVES_MIN_WIDTH
    main = pn.Column(error_view(state), pn.Row(curves, fit, styles={"flex-wrap": "wrap"}),
                     lags, code, paths,
                     lazy_card("Population: every unit", lambda: population_view(state),
                               "population-card"),
                     lazy_card("Decode: what the population knows", lambda: decode_view(state),
                               "decode-card"),
                     in_time,
                     lazy_card("Behaviour", lambda: traces_view(state), "behaviour-card"),
                     loading=state.param.busy)
    sidebar = [lesson, data_controls(state), model_actions(state), "### Variables",
               variable_controls(state), joint_controls(state), export_controls(state)]
    return sidebar, [main]


def start(state: ExplorerState) -> None:
    """Fit the first data set now if the solvers are compiled (the page then arrives fitted);
    otherwise once the page has loaded, behind the loading overlay."""
    if solver_compiles.warmed_up() or pn.state.curdoc is None:
        state.start()
    else:
        pn.state.onload(state.start)


def explorer(**settings) -> pn.Row:
    """The whole explorer as one layout, e.g. in Jupyter: ``from widgets import explorer;
    explorer()``. ``settings`` are initial :class:`ExplorerState` parameters (``n_samples=...``,
    ``source=...``)."""
    load_extension(served=False)  # in Jupyter: loads Panel's JavaScript
    state = ExplorerState(**settings)
    sidebar, main = page_parts(state)
    start(state)
    layout = pn.Row(pn.Column(*sidebar, width=320, sizing_mode="fixed"), *main,
                    sizing_mode="stretch_width")
    layout.state = state  # the session's settings and results, for scripting the explorer
    return layout
