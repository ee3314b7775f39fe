"""Regularization paths: held-out bits/spike against each variable's log10 strength, with the
slider's current value (line) and the best point (star) marked and named in a legend."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn


def render_paths(paths: dict) -> hv.Layout | hv.Div:
    if not paths:
        return hv.Div("<i>Press <b>Regularization paths</b> (or <b>Best strengths</b>) to "
                      "score every strength on held-out data.</i>")
    plots = []
    for name, (x, mean, sem, current) in paths.items():
        strength = hv.Dimension("log10 strength", label=f"log10 strength ({name})")
        score = hv.Dimension("held-out", label="held-out bits/spike")
        best = int(np.nanargmax(mean)) if np.isfinite(mean).any() else 0
        spread = np.r_[mean - sem, mean + sem]
        spread = spread[np.isfinite(spread)]
        low, high = (spread.min(), spread.max()) if spread.size else (0.0, 1.0)
        plots.append(
            (hv.Spread((x, mean, sem), strength, [score, "SE"]).opts(color="#1f5fa8", alpha=0.2)
             * hv.Curve((x, mean), strength, score, label="held-out").opts(color="#1f5fa8")
             # a vertical line as a curve: HoloViews gives VLine no legend entry
             * hv.Curve(([current, current], [low, high]), strength, score,
                        label="current strength").opts(color="#e6862a", line_width=2)
             * hv.Scatter(([x[best]], [mean[best]]), strength, score, label="best")
             .opts(marker="star", size=14, color="#d62728"))
            .opts(title=f"path: {name}", height=240, responsive=True, show_grid=True,
                  show_legend=True, legend_position="top", legend_cols=3,
                  fontsize={"legend": "11px"}))
    return hv.Layout(plots).cols(3)


def paths_view(state) -> pn.pane.HoloViews:
    return pn.pane.HoloViews(pn.bind(render_paths, state.param.paths),
                             sizing_mode="stretch_width", name="Regularization paths")
