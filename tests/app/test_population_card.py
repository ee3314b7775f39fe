"""The population card without a browser (issue 18, item 11): the variable select shows a
variable, the table is not squeezed beside the heatmap, and a variable left out of the model
says so instead of drawing an empty grey map."""

import holoviews as hv
import panel as pn

from widgets.population import not_in_model, population_view
from widgets.state import ExplorerState
from widgets.vocabulary import RECORDING


def test_the_select_shows_a_variable_and_a_left_out_variable_says_so():
    state = ExplorerState(source=RECORDING)
    state.start()
    view = population_view(state)
    # the row, the job's progress, the map, the table, the gallery, the coupling matrix
    controls, _, heat, table, _, _ = view.objects
    select = next(w for w in controls.objects if isinstance(w, pn.widgets.Select))
    assert select.value == 0 and list(select.options) == [v.name for v in state.session.variables]
    assert isinstance(table, pn.widgets.Tabulator) and table.sizing_mode == "stretch_width"
    state.variables[1].include = False  # running direction out of the model
    state.update_population(cross_validate=False)
    assert not_in_model(state, 0) == ""
    why = not_in_model(state, 1)
    assert "running direction is not in the model" in why
    select.value = 1
    shown = heat.object() if callable(heat.object) else heat.object
    assert isinstance(shown, hv.Div) and "not in the model" in shown.data
    select.value = 0
    shown = heat.object() if callable(heat.object) else heat.object
    assert isinstance(shown, hv.HeatMap)
