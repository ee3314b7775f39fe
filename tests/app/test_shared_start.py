"""Sessions that open with the same settings share one encoding and first fit (computed once per
server process), and nothing that one session can change."""

import numpy as np
import pytest

import widgets.shared
import widgets.state
from widgets.state import ExplorerState


def curve(state, name):
    return next(c for c in state.curves if c.name == name)


def opened(**settings):
    state = ExplorerState(n_samples=3_000, seed=7, **settings)
    state.start()
    assert state.error == ""
    return state


def test_a_change_in_one_session_leaves_the_other_and_the_shared_fit_as_they_were():
    a, b = opened(), opened()
    assert b.encoding is a.encoding and b.fit is a.fit  # computed once, for a
    shown = curve(b, "position").model.copy()
    stats = dict(b.stats)
    assert "held-out bits/spike" in stats

    a.variables[0].log_strength = -0.5
    a.variables[0].n_bins = 10
    a.regularizer = "Ridge"
    assert curve(a, "position").centres.size == 10
    np.testing.assert_array_equal(curve(b, "position").model, shown)
    assert b.stats == stats

    c = opened()  # a later session still opens with the untouched first fit and score
    np.testing.assert_array_equal(curve(c, "position").model, shown)
    assert c.stats["held-out bits/spike"] == stats["held-out bits/spike"]
    with pytest.raises(ValueError, match="read-only"):
        curve(c, "position").model[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        c.encoding.counts[0] = 0


@pytest.mark.parametrize("settings", [
    {},
    {"regularizer": "Ridge"},
    {"n_folds": 5},
    {"on_load": {"variables": {"position": {"log_strength": -1.0}}}},
    {"on_load": {"variables": {"speed": {"include": False, "n_bins": 8}}}},
    {"on_load": {"variables": {"position": {"encoding": "B-spline", "n_basis": 6}}}},
], ids=["defaults", "regularizer", "folds", "strength", "bins and include", "basis"])
def test_a_shared_first_fit_is_the_fit_of_exactly_its_settings(settings):
    opened()  # the defaults' first fit is now shared
    shared = opened(**settings)
    widgets.shared.shared_encodings.clear()
    widgets.shared.shared_first_fits.clear()
    alone = opened(**settings)  # computed afresh
    assert shared.encoding.n_bins == alone.encoding.n_bins
    for mine, fresh in zip(shared.curves, alone.curves):
        np.testing.assert_allclose(mine.model, fresh.model, rtol=1e-6, equal_nan=True)
    for key in ("log-likelihood", "held-out bits/spike", "train bits/spike", "folds"):
        assert shared.stats[key] == alone.stats[key], key


def test_a_served_tab_opening_on_a_shared_fit_has_its_held_out_score_at_once(monkeypatch):
    """In a served session the held-out score is computed once the sliders rest; a first fit's
    score is shared, so a new tab's document holds it from the start, and nothing is patched in
    (and re-laid out) after the page loads."""
    scored = opened()  # scores the defaults' shared first fit
    monkeypatch.setattr(widgets.state, "in_server", lambda: True)
    tab = opened()
    assert tab.stats["held-out bits/spike"] == scored.stats["held-out bits/spike"]
