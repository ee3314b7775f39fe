"""Issue 18, what the page reports about a fit: numeric statistics (pooled held-out score, its
SE, per-fold values) in the state and the JSON export, refit time apart from compile time and
from a shared first fit, the selection's reason, the stats table cleared on a data change, the
lesson selector, and the 2-D map's controls."""

import io
import json
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from glm_core import explorer, export
from glm_core.timing import Timer
from widgets.controls import joint_controls, model_actions, stats_view, variable_controls
from widgets.export import fit_record
from widgets.lessons import LESSONS, NO_LESSON, lessons_view
from widgets.state import ExplorerState
from widgets.vocabulary import UPLOAD


@pytest.fixture(scope="module")
def state():
    s = ExplorerState(n_samples=5_000, seed=2)
    s.start()
    return s


def test_held_out_statistics_are_numbers_in_the_state_and_the_json(state):
    cv = explorer.cross_validate_encoding(state.encoding, [True] * 3,
                                          [10.0**r.log_strength for r in state.variables],
                                          state.regularizer)
    stats = state.stats
    assert stats["held-out bits/spike"] == pytest.approx(cv.pooled, abs=1e-6)
    assert stats["held-out bits/spike SE"] == pytest.approx(cv.pooled_se, abs=1e-6)
    assert stats["train bits/spike"] == pytest.approx(cv.train_pooled, abs=1e-6)
    np.testing.assert_allclose(stats["held-out bits/spike per fold"], cv.test_bits_per_spike,
                               atol=1e-6)
    record = json.loads(export.record_json(fit_record(state)))["statistics"]
    for key in ("held-out bits/spike", "held-out bits/spike SE", "train bits/spike"):
        assert isinstance(record[key], float)
    assert len(record["held-out bits/spike per fold"]) == 10
    assert sum(record["spikes per fold"]) == state.encoding.counts.sum()
    table = stats_view(state).object
    assert f"{cv.pooled:.4f} ± {cv.pooled_se:.4f}" in table and "per fold" not in table


def test_a_shared_first_fit_reports_no_refit_time():
    first, second = ExplorerState(n_samples=5_000, seed=2), ExplorerState(n_samples=5_000,
                                                                          seed=2)
    first.start()
    second.start()
    assert "refit time (ms)" not in second.stats and "shared" in second.stats["fit"]
    second.variables[0].log_strength = -2.0  # a refit of its own, with solvers compiled
    assert second.stats["refit time (ms)"] > 0 and "compile time (ms)" not in second.stats


def test_timer_sets_compile_time_apart():
    f = jax.jit(lambda x: jnp.cumsum(jnp.sin(x) * 3.0))
    with Timer() as cold:
        f(jnp.ones(7)).block_until_ready()
    with Timer() as warm:
        f(jnp.ones(7)).block_until_ready()
    assert cold.compile_seconds > 0 and cold.seconds >= cold.compile_seconds
    assert warm.compile_seconds == 0


def test_timer_counts_only_its_own_threads_compiles():
    """Another session compiling on another thread meanwhile is not this refit's compile."""
    f = jax.jit(lambda x: jnp.cumprod(jnp.cos(x) + 2.0))
    with Timer() as mine:
        worker = threading.Thread(target=lambda: f(jnp.ones(5)).block_until_ready())
        worker.start()
        worker.join()
    assert mine.compile_seconds == 0 and mine.seconds > 0
    with Timer() as outer, Timer() as inner:  # nested: both count this thread's compile
        f(jnp.ones(9)).block_until_ready()
    assert outer.compile_seconds > 0 and inner.compile_seconds == outer.compile_seconds


def test_three_folds_say_why_nothing_is_selected():
    """A one-sided Wilcoxon test over 3 folds cannot give p < 0.05 (at best 2**-3): the page
    says so rather than a bare "Selected: none" beside a gain above 0.5 bits/spike."""
    s = ExplorerState(n_samples=5_000, seed=2, n_folds=3)
    s.start()
    view = model_actions(s)
    s.select_variables()
    step = s.selection.steps[-1]
    assert s.selection.selected == () and step.pooled_gain > 0.5
    reason = view[3].object  # under the buttons and the job's progress
    assert "2^-3 = 0.125" in reason and "at least 5 folds" in reason


def test_the_stats_table_clears_before_a_new_data_set_is_drawn():
    s = ExplorerState(n_samples=5_000, seed=2)
    s.start()
    pane = stats_view(s)
    assert "seed=2" in pane.object
    shown_with_new_curves = []
    s.param.watch(lambda e: shown_with_new_curves.append(pane.object), "curves")
    s.seed = 3
    assert "seed=2" not in shown_with_new_curves[0]
    assert "seed=3" in pane.object


def test_the_lesson_selector_resets_once_a_setting_diverges(state):
    select, text = lessons_view(state)
    lesson = LESSONS[3]
    select.value = lesson.title
    assert text.visible and lesson.holds_in(state)
    state.variables[0].log_strength = -2.5
    assert select.value == NO_LESSON and not text.visible


def test_map_sliders_name_the_paired_variables_and_disable_their_own(state):
    controls, cards = joint_controls(state), variable_controls(state)
    state.joint_map = True
    assert [w.name for w in controls[1:3]] == ["2-D map: bins of position",
                                               "2-D map: bins of speed"]
    disabled = [[w.disabled for w in card[2:]] for card in cards]
    assert disabled[0] == disabled[1] == [True] * 4 and disabled[2] == [False] * 4
    state.joint_map = False
    assert not any(w.disabled for card in cards for w in card[2:])


def one_linear_variable_npz() -> bytes:
    rng = np.random.default_rng(0)
    t = 3000
    buffer = io.BytesIO()
    np.savez(buffer, bin_width=np.float64(0.02), **{
        "count:a": rng.poisson(0.3, t).astype(float),
        "var:x[cm]": np.cumsum(rng.normal(0, 1, t)),
        "var:hd[rad,circular]": rng.uniform(-np.pi, np.pi, t)})
    return buffer.getvalue()


def test_a_map_on_one_linear_variable_is_refused_with_a_message():
    s = ExplorerState(source=UPLOAD, upload=("one.npz", one_linear_variable_npz()))
    s.start()
    assert s.error == "" and s.map_variables() is None
    s.joint_map = True
    assert "fewer than two" in s.error and s.joint_map is False
    assert not s.encoding.pairs
