"""Real-browser test of the 2-D map: the open-field simulation opens with x and y paired; the map
images (model, empirical, truth) render from the page's own Bokeh data, x and y can be unpaired
and paired again, and the model image changes when the 2-D map's strength does."""

from __future__ import annotations

import math

import pytest

from tests.browser.support import (
    JS_IMAGES,
    deep_text,
    poll,
    source_page,
    wait_for_app,
)

# Every browser test runs on one xdist worker (`-n 2 --dist loadgroup`), against one served app.
pytestmark = pytest.mark.xdist_group("browser")


def images(page) -> list:
    return page.evaluate(JS_IMAGES)


def finite_share(values) -> float:
    return sum(v is not None and math.isfinite(v) for v in values) / max(len(values), 1)


def test_open_field_map_renders_and_follows_the_joint_strength(browser, server):
    with source_page(browser, server[0], "open-field simulation",
                     ("head direction", "speed")) as page:
        shown = poll(lambda: (i := images(page)) and len(i) >= 3 and i, timeout=120,
                     message="model, empirical and true map images")
        assert all(len(i) == 400 for i in shown[:3])  # 20 x 20 bins
        assert all(finite_share(i) > 0.9 for i in shown[:3])

        toggle = page.locator(".joint-toggle input")
        toggle.uncheck()  # x and y as two 1-D leaves: their curves, no map
        wait_for_app(page, ("x", "y", "head direction", "speed"), timeout=300)
        poll(lambda: not images(page), timeout=60, message="the map gone")
        toggle.check()
        before = poll(lambda: (i := images(page)) and len(i) >= 3 and i[0], timeout=300,
                      message="the map back")

        strength = page.locator(".joint-controls .noUi-handle").nth(2)
        strength.focus()
        strength.press("End")  # log10 strength 0: the smoothest map
        after = poll(lambda: (i := images(page)) and i[0] != before and i[0], timeout=120,
                     message="the model map to change with the strength")
        assert finite_share(after) > 0.9
        assert not page.locator(".alert-danger").first.is_visible(), deep_text(
            page.locator(".alert-danger").first)
