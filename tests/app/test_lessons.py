"""Lessons set every parameter they name, and show what their text says."""

import numpy as np
import pytest

from widgets.lessons import LESSONS
from widgets.state import ExplorerState


@pytest.fixture(scope="module")
def state():
    s = ExplorerState(n_samples=5_000, seed=3, regularizer="Lasso")  # unlike any lesson
    s.start()
    return s


def curve(state, name):
    return next(c for c in state.curves if c.name == name)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.title)
def test_a_lesson_sets_everything_it_names(state, lesson):
    state.variables[0].log_strength = -1.0  # a leftover from free exploration
    state.apply_settings(lesson.settings, lesson.variables, lesson.unit, lesson.lags)
    assert state.error == "" or lesson.settings["regularizer"] == "UnRegularized"
    assert [{key: row.settings()[key] for key in lag}
            for row, lag in zip(state.lags, lesson.lags)] == list(lesson.lags)
    assert len(state.lags) == len(lesson.lags) == len(state.filters)
    for key, value in lesson.settings.items():
        assert getattr(state, key) == value, key
    assert {row.name: dict(include=row.include, n_bins=row.n_bins, log_strength=row.log_strength)
            for row in state.variables} == lesson.variables
    if lesson.unit:
        assert state.unit == lesson.unit
    for c in state.curves:  # the plotted curves have the lesson's bins
        assert c.centres.size == lesson.variables[c.name]["n_bins"]
    assert state.stats["unit"] == state.unit


def test_lesson_texts_hold(state):
    by_number = {lesson.title.split(".")[0]: lesson for lesson in LESSONS}

    def apply(number):
        lesson = by_number[number]
        state.apply_settings(lesson.settings, lesson.variables, lesson.unit, lesson.lags)

    def score(name):
        return state.stats[name]

    apply("3")
    ridge = score("held-out bits/spike")
    apply("2")  # no penalty on 64 bins: overfits (held-out far below train, and below Ridge)
    assert score("held-out bits/spike") < min(ridge, score("train bits/spike")) - 0.15
    apply("4")  # a strength per variable: jagged position, flat speed
    rough = np.nanstd(np.diff(np.log(curve(state, "position").model)))
    speed = curve(state, "speed").model
    assert np.nanmax(speed) / np.nanmin(speed) < 1.1 and rough > 0.1
    apply("5")  # GroupLasso at 1e-3 removes exactly speed
    flat = {c.name: np.nanmax(c.model) / np.nanmin(c.model) for c in state.curves}
    assert flat["speed"] == pytest.approx(1.0, abs=1e-6)
    assert flat["position"] > 3 and flat["head direction"] > 1.5
    apply("6")  # the recording: direction raises the fit
    with_direction = state.stats["pseudo-R2 (McFadden)"]
    state.variables[1].include = False
    assert state.stats["pseudo-R2 (McFadden)"] < with_direction - 0.02


def test_the_lagged_lessons_show_what_they_say(state):
    by_number = {lesson.title.split(".")[0]: lesson for lesson in LESSONS}
    lesson = by_number["7"]
    state.apply_settings(lesson.settings, lesson.variables, lesson.unit, lesson.lags)
    (history,) = state.filters
    assert history.gain[0] < 0.3  # refractory right after a spike
    bump = (history.lags_ms >= 40) & (history.lags_ms <= 80)
    assert history.gain[bump].max() > 1.5  # bursts around 60 ms
    assert history.truth is not None
    with_history = state.stats["held-out bits/spike"]
    state.lags[0].include = False  # the text: held-out bits/spike fall without history
    assert state.stats["held-out bits/spike"] < with_history - 0.05

    lesson = by_number["8"]
    state.apply_settings(lesson.settings, lesson.variables, lesson.unit, lesson.lags)
    _, b, c = state.filters
    assert b.gain.max() > 1.5 and c.gain.max() > 1.5  # without position both look coupled
    excess, without = c.gain.max() - 1.0, state.stats["held-out bits/spike"]
    state.variables[0].include = True  # the text: tick position
    _, b_with, c = state.filters
    assert b_with.gain.max() > 0.9 * b.gain.max()  # B's stays
    assert c.gain.max() - 1.0 < 0.5 * excess  # C's falls most of the way back to 1
    assert state.stats["held-out bits/spike"] > without
