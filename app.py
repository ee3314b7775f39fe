"""Pytree GLM explorer: `panel serve app.py`.

Composition only: each browser session gets its own ExplorerState and views.
"""

from pathlib import Path

import jax
import panel as pn

from widgets.controls import data_controls, error_view, stats_view, variable_controls
from widgets.plots import TuningCurvesView, traces_view
from widgets.state import ExplorerState

pn.extension("filedropper", sizing_mode="stretch_width", notifications=False)
# Keep compiled solvers on disk, so a restarted server opens without recompiling.
jax.config.update("jax_compilation_cache_dir",
                  str(Path.home() / ".cache" / "pytree-glm-explorer" / "jax"))

state = ExplorerState()
curves = TuningCurvesView(state)
main = pn.Column(
    error_view(state),
    pn.Row(pn.Column("## Tuning curves", curves), pn.Column("## Fit", stats_view(state),
                                                              width=320, sizing_mode="fixed")),
    "## Behaviour",
    traces_view(state),
    loading=state.param.busy,
)
pn.state.onload(state.start)

pn.template.BootstrapTemplate(busy_indicator=None,
    title="Pytree GLM explorer",
    sidebar=[data_controls(state), "### Variables", variable_controls(state)],
    main=[main],
).servable()
