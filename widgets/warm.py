"""The warm-up a server runs once, before its first visitor (``panel serve app.py --setup
warm_up.py``): compile the solvers and fill the shared results every tab starts from."""

from __future__ import annotations

import panel as pn
from bokeh.document import Document

from glm_core.cell_table import max_bins_for

from .export import code_view
from .page import explorer, keep_compiled_solvers
from .paths import paths_view
from .population import population_view
from .shared import shared_open_field, warm_solvers
from .state import ExplorerState
from .traces import traces_view
from .vocabulary import OPEN_FIELD, RECORDING, VariableSettings


def warm_up() -> None:
    """Compile every solver for the default data, load the built-in data sets, and build one page
    (first-use costs of HoloViews, Bokeh and Panel), so that every tab starts warm."""
    keep_compiled_solvers()
    view = explorer()
    view.get_root(Document())
    for build in (code_view, paths_view, population_view, traces_view):  # built when opened
        pn.panel(build(view.state)).get_root(Document())
    warm_open_field()


def warm_population() -> None:
    """Compile the population fit and its held-out scores for the built-in recording's default
    model, once per process, so that the first "Fit all units" answers at once."""
    state = ExplorerState(source=RECORDING)
    state.start()
    state.update_population()


def warm_open_field() -> None:
    """Compile the default regularizer's solvers for the open field's default 2-D map layout."""
    state = ExplorerState(source=OPEN_FIELD)
    session = shared_open_field(state.n_samples, state.seed)
    rows = [VariableSettings(v, max_bins_for(len(session.variables))) for v in session.variables]
    encoding = state.encode(session, session.unit_names[0], rows, joint_map=True)
    warm_solvers(encoding, (state.regularizer,))
