"""The built-in recording: nelpy's linear-track example data (MIT licence, see
data/LICENSE-linear-track.txt), 31 rat hippocampal units and the animal's position."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import derived
from .binning import DEFAULT_BIN_WIDTH, Samples, bin_events
from .session import Session, Variable, make_session

DEFAULT_UNIT = "t10c18"  # a unit with a clear place field (unit 27 in the file)
_DATA = Path(__file__).parent / "data" / "linear_track.npz"
_RUN_END = 5382.25  # s; afterwards the position is frozen (rest period / lost tracking)
_TRACK_BOX = (120.0, 490.0, 110.0, 425.0)  # x_min, x_max, y_min, y_max in px: on the track
_MAX_GAP = 0.1  # s; bins farther than this from a tracked frame are invalid


def load_linear_track(bin_width=DEFAULT_BIN_WIDTH, speed_threshold=10.0) -> Session:
    """The built-in recording (nelpy example data, MIT): 31 rat hippocampal units on a linear track.

    Run period only. Variables: ``linear position`` (px along the track's principal axis),
    ``running direction`` (sign of the velocity along the track: place fields on a linear track
    are directional) and ``speed`` (px/s along the track; suggested off in the starting model).
    Valid bins: tracked, and speed above ``speed_threshold``.
    """
    with np.load(_DATA) as d:
        t, x, y = d["pos_t"], d["pos_x"], d["pos_y"]
        spike_times, spike_unit = d["spike_times"], d["spike_unit"]
        names = [f"t{a}c{b}" for a, b in zip(d["unit_tetrode"], d["unit_cluster"])]
    x_min, x_max, y_min, y_max = _TRACK_BOX
    tracked = (t < _RUN_END) & (x >= x_min) & (x <= x_max) & (y >= y_min) & (y <= y_max)
    t = t[tracked]
    linear = derived.linearize(x[tracked], y[tracked])
    trains = {name: spike_times[spike_unit == i] for i, name in enumerate(names)}
    samples = [Samples("linear position", "px", False, t, linear)]
    centres, counts, names, variables = bin_events(trains, samples, bin_width)
    velocity = derived.velocity(variables[0].values, float(bin_width),
                                smooth=derived.POSITION_SMOOTHING)[:, 0]
    speed = np.abs(velocity)
    after = np.clip(np.searchsorted(t, centres), 1, len(t) - 1)
    gap = np.minimum(centres - t[after - 1], np.abs(t[after] - centres))
    valid = (gap <= _MAX_GAP) & derived.running_mask(speed, speed_threshold)
    variables += [
        Variable("running direction", np.sign(velocity), "+1 = away from start",
                 default_bins=2),
        # Off at first: on this track the rat runs fast through the fields and lingers slowly at
        # the reward ends, so speed is better explored as a confound than assumed.
        Variable("speed", speed, "px/s", default_include=False),
    ]
    return make_session(
        bin_width, variables, counts, names, valid=valid,
        source="nelpy linear track (run period)",
    )
