"""Real-browser tests of issue 18's reporting fixes: the lesson selector returns to free
exploration once a setting diverges, and the 2-D map's sliders name the paired variables while
those variables' own sliders are disabled."""

from __future__ import annotations

import pytest

from tests.browser.support import (
    deep_text,
    poll,
    press_slider,
    select_with_option,
)
from widgets.lessons import LESSONS, NO_LESSON

pytestmark = pytest.mark.xdist_group("browser")



def test_lesson_selector_resets_when_a_setting_diverges(page):
    title = LESSONS[3].title  # a strength per variable: same data, Ridge
    select = select_with_option(page, title)
    select.select_option(title)
    poll(lambda: page.locator(".lesson-text").first.is_visible(), timeout=120,
         message="the lesson's text")
    press_slider(page, 2, "log_strength", "ArrowLeft")
    poll(lambda: select.input_value() == NO_LESSON, timeout=120,
         message="the selector back to free exploration")
    assert not page.locator(".lesson-text").first.is_visible()


def test_map_sliders_name_the_pair_and_disable_its_own_sliders(page):
    page.locator(".joint-toggle input").check()
    controls = page.locator(".joint-controls")
    poll(lambda: "bins of position" in deep_text(controls)
         and "bins of speed" in deep_text(controls), timeout=120,
         message="map sliders named after position and speed")
    assert "bins of x" not in deep_text(controls)

    def disabled(index):
        return page.locator(".variable-row").nth(index).locator(".noUi-target[disabled]").count()

    poll(lambda: disabled(0) >= 2 and disabled(1) >= 2, timeout=60,
         message="position's and speed's own sliders disabled")
    assert disabled(2) == 0
