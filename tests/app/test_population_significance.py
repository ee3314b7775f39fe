"""The population card's shuffle significance and 2-D map gallery without a browser (issue 20):
p and z columns for the current model only, "significant units only", the CSV, and the gallery's
tiles sorted by held-out score, a click on a tile naming its unit."""

import io

import numpy as np
import panel as pn
import pytest

from widgets.gallery import gallery_tiles, tapped_unit
from widgets.population import SIGNIFICANCE_COLUMNS, population_table, population_view
from widgets.state import ExplorerState
from widgets.vocabulary import OPEN_FIELD, RECORDING


def test_significance_columns_follow_the_model_and_filter_the_table():
    state = ExplorerState(source=RECORDING)
    state.start()
    for row in state.variables:  # set by the user: kept for another unit (defaults follow it)
        row.log_strength = -2.5
    state.update_population()
    assert not set(SIGNIFICANCE_COLUMNS) & set(population_table(state, 0).columns)
    state.run_significance(n_shuffles=40)
    significance = state.current_significance()
    assert significance is not None and significance.null.shape == (31, 40)
    table = population_table(state, 0)
    np.testing.assert_array_equal(table["shuffle p"], significance.p_value)
    np.testing.assert_array_equal(table["shuffle z"], significance.z_score)
    # the statistic is the table's own held-out score
    np.testing.assert_allclose(significance.observed, table["held-out bits/spike"], atol=1e-4)
    scored = np.isfinite(table["shuffle p"])
    assert np.all((table["shuffle p"][scored] >= 1 / 41) & (table["shuffle p"][scored] <= 1))
    only = population_table(state, 0, significant_only=True)
    assert list(only["unit"]) == list(table["unit"][table["shuffle p"] < 0.05])
    assert 0 < len(only) < len(table)

    view = population_view(state)
    download = next(w for w in view.objects[0].objects if isinstance(w, pn.widgets.FileDownload))
    csv = download.callback()
    header = (csv.getvalue() if isinstance(csv, io.StringIO) else csv).splitlines()[0]
    assert "shuffle p" in header and "shuffle z" in header

    other = next(u for u in state.param.unit.objects if u != state.unit)
    state.unit = other  # another unit: the same model (strengths set), the same significance
    assert state.current_significance() is significance
    state.variables[0].log_strength = -1.0  # another model: the significance is gone
    assert state.current_significance() is None
    assert not set(SIGNIFICANCE_COLUMNS) & set(population_table(state, 0).columns)


@pytest.mark.parametrize("n_samples", [8_000])
def test_the_gallery_tiles_every_units_map_by_held_out_score(n_samples):
    state = ExplorerState(source=OPEN_FIELD, n_samples=n_samples)
    state.start()
    assert state.encoding.pairs  # the open field starts with its 2-D map
    state.update_population()
    tiles = gallery_tiles(state)
    names = list(state.session.unit_names)
    held_out = dict(zip(names, state.population.held_out))
    assert sorted(tiles["order"]) == sorted(names)
    scores = [held_out[u] for u in tiles["order"]]
    assert scores == sorted(scores, reverse=True)
    nx, ny = tiles["tile"]
    assert (nx, ny) == (state.joint_nx, state.joint_ny)
    assert np.nanmax(tiles["image"]) == pytest.approx(1.0)
    for k, unit in enumerate(tiles["order"]):  # the middle of tile k
        x = (k % 8) * (nx + 1) + nx / 2
        y = tiles["height"] - (k // 8) * (ny + 3) - ny / 2
        assert tapped_unit(tiles, x, y) == unit
    assert tapped_unit(tiles, nx + 0.5, tiles["height"] - 1) is None  # the gap between tiles
    view = population_view(state)
    assert view.objects[-2].visible  # the gallery, above the coupling matrix
    state.joint_map = False  # no 2-D map: no gallery
    state.update_population()
    assert gallery_tiles(state)["order"] == [] and not view.objects[-2].visible
