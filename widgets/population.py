"""The population view: every unit's tuning curve as one heatmap row, a table of scores with
each unit's shuffle significance, and with a 2-D map in the model a gallery of every unit's map.

"Fit all units" fills ``state.population``; the view then follows it. Rows are the units, sorted
by where their model curve peaks on the chosen variable, each normalised to its peak (from
``PopulationFit.sorted_map``). "Shuffle significance" adds each unit's p-value and z-score to
the table (``state.significance``), which can then list the significant units only. Clicking a
heatmap row, a table row or a gallery map selects that unit in the rest of the page; the table
downloads as CSV. No maths here.
"""

from __future__ import annotations

import io

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from .controls import INPUT_CSS
from .coupling import coupling_view
from .gallery import gallery_view
from .jobs import job_progress

TABLE_COLUMNS = ["unit", "held-out bits/spike", "pseudo-R2 (train)", "Skaggs bits/spike",
                 "spikes", "status"]
SIGNIFICANCE_COLUMNS = ["shuffle p", "shuffle z"]
SIGNIFICANT = 0.05  # "significant units only": p below this


def population_table(state, variable: int, significant_only: bool = False) -> pd.DataFrame:
    """One row per unit: scores, Skaggs information on ``variable``, spike count, status, and
    once the shuffle significance of the current model is known its p-value and z-score (with
    ``significant_only``, the rows with p < ``SIGNIFICANT`` alone)."""
    fit = state.population
    if fit is None or fit.weights.shape[0] != len(state.session.unit_names):
        return pd.DataFrame(columns=TABLE_COLUMNS)
    status = np.where(~fit.has_spikes, "no spikes", np.where(fit.converged, "fitted",
                                                             "not converged"))
    held_out = fit.held_out if fit.test_bits_per_spike is not None else np.nan  # pending
    table = pd.DataFrame({
        "unit": list(state.session.unit_names), "held-out bits/spike": held_out,
        "pseudo-R2 (train)": fit.pseudo_r2, "Skaggs bits/spike": fit.skaggs[:, variable],
        "spikes": state.session.counts[state.session.valid].sum(0).astype(int),
        "status": status})
    significance = state.current_significance()
    if significance is not None:
        table["shuffle p"], table["shuffle z"] = significance.p_value, significance.z_score
        if significant_only:
            table = table[table["shuffle p"] < SIGNIFICANT].reset_index(drop=True)
    return table


def not_in_model(state, variable: int) -> str:
    """Why the heatmap of ``variable`` is empty: it is not in the fitted model (no unit has a
    coefficient for it); "" where it is."""
    fit, session = state.population, state.session
    if fit is None or session is None or np.any(fit.weights[:, variable] != 0):
        return ""
    return (f"{session.variables[variable].name} is not in the model: tick its Include box "
            "and fit all units again to see its tuning.")


def heatmap(state, variable: int) -> hv.HeatMap:
    """Rows: units sorted by peak position; columns: bin centres of ``variable``; values: the
    model rate divided by the unit's peak."""
    var = state.session.variables[variable] if state.session else None
    fit, enc = state.population, state.encoding
    label = "variable" if var is None else f"{var.name} [{var.unit}]" if var.unit else var.name
    data = []
    if fit is not None and enc is not None and fit.weights.shape[0] == len(
            state.session.unit_names):
        n = enc.n_bins[variable]
        order, rows = fit.sorted_map(variable, n)
        centres = enc.binnings[variable].centres
        names = np.asarray(state.session.unit_names)[order]
        data = [(float(x), str(name), float(value)) for name, row in zip(names, rows)
                for x, value in zip(centres, row)]
    return hv.HeatMap(data, kdims=[hv.Dimension("x", label=label), "unit"],
                      vdims=hv.Dimension("rate", label="rate / peak")).opts(
        title="population", cmap="viridis", colorbar=True, clim=(0, 1), tools=["hover", "tap"],
        invert_yaxis=True, responsive=True, min_height=420, min_width=420,
        clipping_colors={"NaN": "#eeeeee"}, ylabel="unit (sorted by peak)")


def population_view(state) -> pn.Column:
    """The "Fit all units" and "Shuffle significance" buttons (jobs: their progress below
    them), a variable select, a CSV download, the "significant units only" toggle, the
    heatmap, the table and the gallery of 2-D maps."""
    fit_all = pn.widgets.Button(name="Fit all units", button_type="primary")
    fit_all.on_click(lambda _: state.fit_all_units())
    shuffles = pn.widgets.Button(name="Shuffle significance", button_type="default",
                                 css_classes=["population-shuffles"],
                                 description="Each unit's held-out score against 200 circular "
                                 "time shifts of its spikes (at least 20 s)")
    shuffles.on_click(lambda _: state.run_significance())
    only = pn.widgets.Checkbox.from_param(state.param.significant_only,
                                          css_classes=["population-significant"])
    variable = pn.widgets.Select(name="variable", options={}, width=220,
                                 css_classes=["population-variable"], stylesheets=[INPUT_CSS])

    def variables(session):
        options = {v.name: i for i, v in enumerate(session.variables)} if session else {}
        variable.param.update(options=options,  # the first one shown, never a blank select
                              value=next(iter(options.values()), None))

    variables(state.session)
    state.param.watch(lambda e: variables(e.new), "session")

    def draw(fit, v):  # a new figure each time: its unit axis is categorical from the start
        why = not_in_model(state, v or 0)
        if why:
            return hv.Div(f"<p class='population-message'>{why}</p>").opts(height=60)
        element = heatmap(state, v or 0)
        tap = hv.streams.Tap(source=element, x=None, y=None)
        tap.param.watch(lambda e: _select(state, e.new), "y")
        return element

    table = pn.widgets.Tabulator(
        pn.bind(lambda fit, v, sig, only: population_table(state, v or 0, only),
                state.param.population, variable, state.param.significance,
                state.param.significant_only),
        # below the heatmap, across the page: beside it, the last columns were cut off
        show_index=False, disabled=True, selectable=1, height=420, layout="fit_data_stretch",
        sizing_mode="stretch_width", css_classes=["population-table"],
        formatters={c: {"type": "money", "precision": 4}
                    for c in [*TABLE_COLUMNS[1:4], *SIGNIFICANCE_COLUMNS]})
    table.param.watch(lambda e: e.new and _select(state, table.value["unit"].iloc[e.new[0]]),
                      "selection")
    download = pn.widgets.FileDownload(
        callback=lambda: io.StringIO(population_table(state, variable.value or 0).to_csv(
            index=False)), filename="population.csv", label="Download table (CSV)",
        button_type="light", width=220)
    return pn.Column(pn.Row(fit_all, shuffles, variable, download, only),
                     job_progress(state.jobs),
                     pn.pane.HoloViews(pn.bind(draw, state.param.population, variable),
                                       sizing_mode="stretch_width"),
                     table, gallery_view(state, _select), coupling_view(state),
                     sizing_mode="stretch_width")


def _select(state, unit) -> None:
    if unit in state.param.unit.objects and unit != state.unit:
        state.unit = unit
