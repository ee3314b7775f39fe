"""Lessons: scenes for a lecture, each setting every parameter of the explorer and explaining
what to look at. Choosing one applies it (``ExplorerState.apply_settings``); the text shows beside
the plots."""

from __future__ import annotations

from dataclasses import dataclass, field

import panel as pn

from .controls import INPUT_CSS
from .vocabulary import HISTORY_SIMULATION, RECORDING, SIMULATION

SIM = {"source": SIMULATION, "n_samples": 20_000, "seed": 0, "n_folds": 10}
HISTORY_SIM = {"source": HISTORY_SIMULATION, "n_samples": 50_000, "seed": 0, "n_folds": 10,
               "regularizer": "Smooth"}
NO_LESSON = "(free exploration)"


@dataclass(frozen=True)
class Lesson:
    """``settings``: ExplorerState parameters; ``variables``: per variable name its include, bins
    and log10 strength; ``unit``: the unit to show (None: the data set's default); ``lags``: the
    lagged leaves (``LagSettings.settings()`` dicts; none by default)."""

    title: str
    text: str
    settings: dict
    variables: dict = field(default_factory=dict)
    unit: str | None = None
    lags: tuple = ()

    def holds_in(self, state) -> bool:
        """Whether ``state`` still has every setting this lesson sets."""
        rows = {row.name: row for row in state.variables}
        return (all(getattr(state, key) == value for key, value in self.settings.items())
                and all(name in rows and all(getattr(rows[name], key) == value
                                             for key, value in settings.items())
                        for name, settings in self.variables.items())
                and (self.unit is None or state.unit == self.unit)
                and [{key: row.settings()[key] for key in lag}
                     for row, lag in zip(state.lags, self.lags)] == list(self.lags)
                and len(state.lags) == len(self.lags))


def _lag(kind, source=None, include=True, window_ms=250.0, log_strength=-3.0) -> dict:
    return dict(kind=kind, source=source, include=include, window_ms=window_ms,
                log_strength=log_strength)


def _rows(**rows) -> dict:
    """``name=(include, bins, log10 strength)`` as ``{name: settings}`` (underscores: spaces)."""
    return {name.replace("_", " "): dict(include=i, n_bins=b, log_strength=s)
            for name, (i, b, s) in rows.items()}


LESSONS = (
    Lesson(
        "1. Named coefficients",
        "The model's predictors are a **dict** of design matrices, one per variable: "
        "`{'position': X_pos, 'speed': X_speed, 'head direction': X_hd}`. The fit returns its "
        "coefficients as a dict with the same keys, and each leaf becomes one tuning curve here. "
        "With a list, `w[1]` would be speed only by convention; with a dict it is `w['speed']`, "
        "whatever order the variables were added in. The *Code* view shows the dict snippet that "
        "reproduces this fit.",
        dict(SIM, regularizer="Smooth"),
        _rows(position=(True, 20, -3), speed=(True, 20, -3), head_direction=(True, 16, -3)),
    ),
    Lesson(
        "2. Too many bins, no penalty",
        "A short recording (T = 3,000 samples), 64 position bins and no penalty: bins the "
        "animal barely visited get wild estimates. Compare the two scores in the Fit table: "
        "**train** bits/spike stays high, **held-out** bits/spike (data the model did not see) "
        "is far lower. That gap is overfitting. Next lesson: the same bins with a penalty.",
        dict(SIM, n_samples=3_000, regularizer="UnRegularized"),
        _rows(position=(True, 64, -3), speed=(True, 20, -3), head_direction=(True, 16, -3)),
    ),
    Lesson(
        "3. The same bins with Ridge",
        "Ridge pulls every coefficient towards zero, most where there are few samples, so the "
        "64-bin curve calms down and the held-out score recovers. Move the position strength "
        "slider and watch the held-out row: too weak overfits, too strong flattens the field. "
        "*Regularization paths* draws that trade-off; *Best strengths* picks its optimum. "
        "(Smooth, which pulls each bin towards its neighbours instead, does better still.)",
        dict(SIM, n_samples=3_000, regularizer="Ridge"),
        _rows(position=(True, 64, -4.5), speed=(True, 20, -4.5), head_direction=(True, 16, -4.5)),
    ),
    Lesson(
        "4. A strength per variable",
        "Each variable has its own slider. Here position is barely penalised (1e-6: jagged), "
        "head direction moderately (1e-3) and speed as strongly as the slider allows (1: flat). "
        "One global strength would have to compromise between them.",
        dict(SIM, regularizer="Ridge"),
        _rows(position=(True, 20, -6), speed=(True, 20, 0), head_direction=(True, 16, -3)),
    ),
    Lesson(
        "5. GroupLasso removes speed",
        "GroupLasso penalises each variable's coefficients as one group, so a whole variable can "
        "drop out. At 1e-3 the speed group is exactly zero (its curve is flat at the mean "
        "effect), while position and head direction stay: in this simulation speed truly has no "
        "effect. *Which variables matter?* reaches the same answer by held-out forward "
        "selection.",
        dict(SIM, regularizer="GroupLasso"),
        _rows(position=(True, 20, -3), speed=(True, 20, -3), head_direction=(True, 16, -3)),
    ),
    Lesson(
        "6. A real place cell",
        "Unit t10c18 of a rat on a linear track (Buzsaki lab). Place fields on a track are "
        "directional: running direction raises the fit (untick it and watch the pseudo-R2 "
        "drop). Speed is included too, and moves the field's peak towards the track end: the "
        "rat runs fast through the field and lingers slowly at the reward end, so speed and "
        "position are confounded there. The model's answer is to \"what if the rat ran at its "
        "average speed there\", not the raw rate.",
        dict(source=RECORDING, bin_width=0.025, n_folds=10, regularizer="Smooth"),
        _rows(linear_position=(True, 20, -3), running_direction=(True, 2, -3),
              speed=(True, 20, -3)),
        unit="t10c18",
    ),
    Lesson(
        "7. Refractoriness and bursts: spike history",
        "Cell A of a simulation whose spikes depend on its own past. The **history** card "
        "shows the gain exp(filter): how much a spike l ms ago multiplies the rate now. Below "
        "the dashed line at 1 the cell is held back, above it pushed on. Right after a spike the "
        "gain is near 0 (refractoriness), then it rises above 1 around 60 ms (bursts); the "
        "dashed grey curve is the truth the simulation used. Untick *Include* on the history "
        "card and watch the held-out bits/spike fall: a tuning curve alone cannot say when the "
        "next spike comes.",
        HISTORY_SIM,
        _rows(position=(True, 20, -3), speed=(False, 20, -3), head_direction=(True, 16, -3)),
        unit="cell A",
        lags=(_lag("history"),),
    ),
    Lesson(
        "8. Who drives whom: coupling, or a shared place field?",
        "Cell A with coupling filters from cells B and C, and position left out. Cell B truly "
        "drives A (its spikes raise A's rate about 30 ms later); cell C only shares A's place "
        "field. Without position, both coupling filters rise well above 1: when C fires the "
        "animal is in the field, so A fires soon too. Tick **position**: C's gain falls most of "
        "the way back to 1 (what is left is the part of the field that the bins miss), B's "
        "stays where it was. A coupling filter is evidence of a connection only once the shared "
        "inputs are in the model; the held-out score rises too.",
        HISTORY_SIM,
        _rows(position=(False, 20, -3), speed=(False, 20, -3), head_direction=(True, 16, -3)),
        unit="cell A",
        lags=(_lag("history"), _lag("coupling", "cell B"), _lag("coupling", "cell C")),
    ),
)


def lessons_view(state) -> tuple[pn.widgets.Select, pn.pane.Markdown]:
    """A lesson selector (sidebar) and the chosen lesson's text (beside the plots). Once a
    setting differs from the chosen lesson's, the selector goes back to ``NO_LESSON``."""
    by_title = {lesson.title: lesson for lesson in LESSONS}
    select = pn.widgets.Select(name="Lessons", options=[NO_LESSON, *by_title],
                               stylesheets=[INPUT_CSS])
    text = pn.pane.Markdown("", css_classes=["lesson-text"], visible=False,
                            sizing_mode="stretch_width")

    def choose(event):
        lesson = by_title.get(event.new)
        text.object, text.visible = (f"### {lesson.title}\n\n{lesson.text}", True) if lesson \
            else ("", False)
        if lesson:
            state.apply_settings(lesson.settings, lesson.variables, lesson.unit, lesson.lags)

    def diverged(_):
        # after each refit: a setting changed since the lesson was applied shows no lesson
        lesson = by_title.get(select.value)
        if lesson and not lesson.holds_in(state):
            select.value = NO_LESSON

    select.param.watch(choose, "value")
    state.param.watch(diverged, "curves")
    return select, text
