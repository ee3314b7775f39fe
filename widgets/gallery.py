"""The population's gallery: every unit's 2-D map, sorted by held-out score, in one figure.

With a joint (2-D) leaf in the model, each unit's model map (``PopulationFit.tuning_curves`` on
that leaf, divided by its peak; unvisited bins blank) is one tile of a single image, the units
in rows of ``COLUMNS`` from the best held-out score down, with the unit's name and score under
its tile. The figure (a DynamicMap fed by a Pipe) is updated in place, and rebuilt only when its
layout changes; clicking a tile selects that unit. No maths here.
"""

from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import panel as pn

COLUMNS = 8  # tiles per row
GAP_X, GAP_Y = 1, 3  # bins between tiles; below a tile, room for its label
EMPTY = {"image": np.full((1, 1), np.nan), "width": 1, "height": 1, "labels": [],
         "order": [], "tile": (1, 1)}


def joint_leaf(state) -> int | None:
    """The first 2-D leaf of the population's model, or None (none, or not included)."""
    enc, fit = state.encoding, state.population
    if enc is None or fit is None:
        return None
    for a, leaf in enumerate(enc.leaves):
        if len(leaf) == 2 and a < fit.weights.shape[1] and np.any(fit.weights[:, a] != 0):
            return a
    return None


def gallery_tiles(state) -> dict:
    """The gallery's image and labels for the current population: ``image`` (rows from the top),
    its ``width`` and ``height`` in bins, ``labels`` (x, y, text), ``order`` (units by tile)
    and ``tile`` (nx, ny); ``EMPTY`` without a 2-D map in the model."""
    a = joint_leaf(state)
    fit, enc, session = state.population, state.encoding, state.session
    if a is None or fit.weights.shape[0] != len(session.unit_names):
        return EMPTY
    nx, ny = enc.leaf_bins[a]
    rates = fit.tuning_curves(a, nx * ny, session.bin_width)
    visited = enc.grid.marginals(a)[0][: nx * ny] > 0
    score = fit.held_out if fit.test_bits_per_spike is not None else np.full(len(rates), np.nan)
    order = np.argsort(np.where(np.isfinite(score), -score, np.inf), kind="stable")
    rows = math.ceil(len(order) / COLUMNS)
    width, height = COLUMNS * (nx + GAP_X), rows * (ny + GAP_Y)
    image = np.full((height, width), np.nan)
    labels = []
    names = session.unit_names
    for k, u in enumerate(order):
        left, top = (k % COLUMNS) * (nx + GAP_X), (k // COLUMNS) * (ny + GAP_Y)
        tile = np.where(visited, rates[u], np.nan).reshape(nx, ny)
        if np.isfinite(tile).any():
            tile = tile / np.nanmax(tile)
        image[top:top + ny, left:left + nx] = tile.T[::-1]  # x across, y up
        text = f"{names[u]}: {score[u]:.3f}" if np.isfinite(score[u]) else f"{names[u]}"
        labels.append((left + nx / 2, height - top - ny - GAP_Y / 2, text))
    return {"image": image, "width": width, "height": height, "labels": labels,
            "order": [names[u] for u in order], "tile": (nx, ny)}


def tapped_unit(tiles: dict, x, y):
    """The unit whose tile holds the point (x, y) of the figure, or None."""
    if x is None or y is None or not tiles["order"]:
        return None
    nx, ny = tiles["tile"]
    col, row = int(x // (nx + GAP_X)), int((tiles["height"] - y) // (ny + GAP_Y))
    inside = (x % (nx + GAP_X) < nx and (tiles["height"] - y) % (ny + GAP_Y) < ny
              and 0 <= col < COLUMNS and row >= 0)
    k = row * COLUMNS + col
    return tiles["order"][k] if inside and k < len(tiles["order"]) else None


def _image(data):
    tiles = data or EMPTY
    return hv.Image(tiles["image"], bounds=(0, 0, tiles["width"], tiles["height"]),
                    vdims=hv.Dimension("rate", label="rate / peak")).opts(
        cmap="viridis", clim=(0, 1), colorbar=True, tools=["tap", "hover"], xaxis=None,
        yaxis=None, responsive=True, min_height=480, clipping_colors={"NaN": "#ffffff"},
        data_aspect=1, framewise=True,
        title="every unit's 2-D map, best held-out score first (bits/spike)")


def _labels(data):
    return hv.Labels((data or EMPTY)["labels"], kdims=["x", "y"], vdims="text").opts(
        text_font_size="8pt", text_color="black")


def gallery_view(state, select) -> pn.Column:
    """The gallery, shown while the population's model has a 2-D map; ``select(state, unit)``
    on a click. The figure is rebuilt only when its layout (tile size, unit count) changes,
    because Bokeh keeps a figure's first ranges; otherwise its data are replaced in place."""
    current = {"tiles": EMPTY, "layout": None, "pipe": None}

    def on_tap(x, y):
        unit = tapped_unit(current["tiles"], x, y)
        if unit is not None:
            select(state, unit)

    pane = pn.pane.HoloViews(sizing_mode="stretch_width", min_height=480)
    column = pn.Column(pane, visible=False, sizing_mode="stretch_width",
                       css_classes=["population-gallery"])

    def update(*_):
        tiles = gallery_tiles(state)
        current["tiles"] = tiles
        column.visible = bool(tiles["order"])
        layout = (tiles["width"], tiles["height"])
        if layout == current["layout"]:
            current["pipe"].send(tiles)
            return
        pipe = hv.streams.Pipe(data=tiles)
        image = hv.DynamicMap(_image, streams=[pipe])
        # the tap stream on the image: an overlay's taps are not sent
        hv.streams.Tap(source=image, x=None, y=None).add_subscriber(on_tap)
        current.update(layout=layout, pipe=pipe)
        pane.object = image * hv.DynamicMap(_labels, streams=[pipe])

    update()
    state.param.watch(update, "population")
    return column
