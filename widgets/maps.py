"""Joint (2-D) leaves as images: the model map beside the empirical occupancy-normalised map and,
for simulations, the true map, in Hz; unvisited bins blank.

Each map's images are HoloViews DynamicMaps fed by one ``Pipe`` and built once per map
structure (its name and whether it has a truth); a refit sends the new maps through the pipes,
which update the images' data sources in place, inside the state's one ``pn.io.hold``. The
images of one map share one colour range, from 0 Hz to the highest rate of any of them, so that
the same colour is the same rate in each.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
from holoviews.streams import Pipe

IMAGE_OPTS = dict(cmap="viridis", colorbar=True, width=330, height=300, tools=["hover"],
                  clipping_colors={"NaN": (0, 0, 0, 0)}, toolbar="above")
LAYERS = (("model", "GLM"), ("empirical", "empirical (occupancy-normalised)"),
          ("truth", "ground truth"))


def colour_range(tuning_map) -> tuple[float, float]:
    """``(0, top)``: the colour range shared by a map's images, ``top`` the highest finite rate
    of the model, empirical and true maps (1 Hz where there is none)."""
    layers = [tuning_map.model, tuning_map.empirical]
    if tuning_map.truth is not None:
        layers.append(tuning_map.truth)
    values = np.concatenate([np.ravel(np.asarray(v, float)) for v in layers])
    values = values[np.isfinite(values)]
    top = float(values.max()) if values.size else 0.0
    return 0.0, top if top > 0 else 1.0


def _dimensions(tuning_map):
    return [hv.Dimension(name, label=f"{name} ({unit})" if unit else name)
            for name, unit in zip(tuning_map.names, tuning_map.units)]


class TuningMapPlot:
    """One joint leaf's images, fed through a Pipe."""

    def __init__(self, tuning_map):
        self.structure = (tuning_map.name, tuning_map.truth is not None)
        self.pipe = Pipe(data=tuning_map)
        dims = _dimensions(tuning_map)
        rate = hv.Dimension("rate", label="rate (Hz)")

        def image(layer, title):
            def draw(data):
                xs, ys = data.centres
                values = getattr(data, layer)
                # HoloViews images are (rows = y, columns = x)
                return hv.Image((xs, ys, np.asarray(values, float).T), dims, rate).opts(
                    title=f"{data.name}: {title}", clim=colour_range(data), **IMAGE_OPTS)
            return hv.DynamicMap(draw, streams=[self.pipe])

        shown = [(layer, title) for layer, title in LAYERS
                 if layer != "truth" or tuning_map.truth is not None]
        self.panes = [pn.pane.HoloViews(image(layer, title), css_classes=[f"map-{layer}"])
                      for layer, title in shown]
        self.layout = pn.Row(*self.panes, css_classes=["tuning-map"])

    def update(self, tuning_map) -> None:
        self.pipe.send(tuning_map)


class TuningMapsView(pn.viewable.Viewer):
    """A row of images per joint leaf of the current fit; nothing without joint leaves."""

    def __init__(self, state, **params):
        super().__init__(**params)
        self._state = state
        self._plots = {}
        self._column = pn.Column(sizing_mode="stretch_width")
        state.param.watch(self._send, "maps")
        self._send(None)

    def _send(self, event):
        maps = self._state.maps
        if [m.name for m in maps] != list(self._plots):
            self._plots = {}
        for tuning_map in maps:
            plot = self._plots.get(tuning_map.name)
            if plot is None or plot.structure != (tuning_map.name,
                                                  tuning_map.truth is not None):
                self._plots[tuning_map.name] = TuningMapPlot(tuning_map)
            else:
                plot.update(tuning_map)
        objects = [p.layout for p in self._plots.values()]
        if objects != self._column.objects:
            self._column.objects = objects

    def __panel__(self):
        return self._column
