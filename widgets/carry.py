"""Settings a newly loaded data set keeps.

A change of T, seed or bin width loads a new copy of the same kind of data: the unit and every
variable's settings (include, bins, strength, encoding, basis size) carry over where the new data
set has them. :func:`current_settings` reads them off a state (as ``ExplorerState.on_load``);
:func:`take_settings` gives them to the new data set's rows and says what could not be kept.
:func:`follow_default_strength` gives a new unit its own default strength where the old unit's
default was kept.
"""

from __future__ import annotations

from glm_core.explorer import default_log_strength
from glm_core.linear_track import DEFAULT_UNIT

ROW_KEYS = ("include", "n_bins", "log_strength", "encoding", "n_basis")  # a variable's settings


def current_settings(state) -> dict:
    """``state``'s unit and each variable's settings, in the form of ``ExplorerState.on_load``.

    Args:
        state: an ExplorerState.
    Returns:
        ``{"unit": ..., "variables": {name: {setting: value}}, "lags": [lagged leaf's
        settings]}``.
    """
    return {"unit": state.unit,
            "variables": {row.name: {key: getattr(row, key) for key in ROW_KEYS}
                          for row in state.variables},
            "lags": [row.settings() for row in state.lags]}


def take_settings(on_load: dict, session, rows) -> tuple[str, list[str]]:
    """Give ``rows`` (VariableSettings of ``session``'s variables) the settings ``on_load`` has
    for them, and choose the unit: ``on_load``'s, else the default unit, else the first unit
    with spikes. A strength ``on_load`` does not give is the unit's default
    (``glm_core.explorer.default_log_strength``).

    Args:
        on_load: ``{"unit": name or None, "variables": {name: {setting: value}}}``.
        session: the newly loaded glm_core Session.
        rows: its VariableSettings, changed in place.
    Returns:
        ``(unit, notices)``: the unit to show, and one line per setting that could not be kept.
    """
    notices = []
    names = list(session.unit_names)
    wanted = on_load.get("unit")
    unit = next((u for u in (wanted, DEFAULT_UNIT) if u in names), None) or next(
        (u for u in names if session.unit_counts(u)[session.valid].sum() > 0), names[0])
    if wanted is not None and wanted != unit:
        notices.append(f"unit {wanted!r} is not in the new data: {unit!r} is shown")
    for row in rows:
        row.log_strength = default_log_strength(session, unit)
        for key, value in on_load.get("variables", {}).get(row.name, {}).items():
            try:
                setattr(row, key, value)
            except ValueError:
                notices.append(f"{row.name}: {row.param[key].label.lower()} {value!r} does not "
                               f"apply to the new data, {getattr(row, key)!r} is used")
    return unit, notices


def follow_default_strength(session, rows, before, after) -> None:
    """A new unit of the same data set: the strengths still at unit ``before``'s default take
    unit ``after``'s; a strength the user set stays.

    Args:
        session: the glm_core Session; rows: its VariableSettings, changed in place.
        before, after: the previous and the new unit (``before`` may be None).
    """
    if before not in session.unit_names:
        return
    old = default_log_strength(session, before)
    for row in rows:
        if row.log_strength == old:
            row.log_strength = default_log_strength(session, after)
