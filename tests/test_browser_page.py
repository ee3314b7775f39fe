"""Real-browser tests of what a lecture hall notices: one served app (module-scoped) for all of
them. Several tabs at once all fit; one refit reaches the browser as one document patch; the
recording's running direction is drawn as points. Timings are in benchmarks/browser_latency.py."""

from __future__ import annotations

import json

import playwright.sync_api as pw
import pytest

from tests.browser_support import (
    curve,
    poll,
    select_with_option,
    slider_handle,
    wait_for_app,
)

pytestmark = pytest.mark.usefixtures("no_server_errors")


def new_page(browser, url):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(90_000)
    return page


def test_five_tabs_opened_at_once_all_show_a_fitted_page(browser, server):
    pages = [new_page(browser, server[0]) for _ in range(5)]
    try:
        for page in pages:  # all loading before waiting for any
            page.goto(server[0], wait_until="commit")
        for page in pages:
            wait_for_app(page, timeout=180)
            assert not page.locator(".alert-danger").first.is_visible()
            row = page.locator("tr").filter(has_text="converged")
            pw.expect(row).to_contain_text("True")
    finally:
        for page in pages:
            page.context.close()


def test_one_refit_reaches_the_browser_as_one_patch_and_its_score_as_one_more(browser, server):
    page = new_page(browser, server[0])
    patches = []

    def on_frame(payload):
        if isinstance(payload, str) and payload.startswith('{"msgid"'):
            if json.loads(payload)["msgtype"] == "PATCH-DOC":
                patches.append(payload)

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    try:
        page.goto(server[0])
        wait_for_app(page)
        handle = slider_handle(page, 0, "log_strength")
        handle.focus()
        for _ in range(3):
            before = curve(page, "position")[1]
            page.wait_for_timeout(1000)  # anything still arriving from the last change
            patches.clear()
            handle.press("ArrowRight")
            poll(lambda before=before: curve(page, "position")[1] != before,
                 message="the position curve to change")
            page.wait_for_timeout(1000)  # any late patch would arrive here
            # the curves and the fit table in one patch (the curves' columns as binary buffers),
            # then the held-out score, which does not hold the curves back, in one small patch
            assert len(patches) == 2, patches
            first, second = (json.loads(p) for p in patches)
            assert first["num_buffers"] > 0 and second["num_buffers"] == 0, patches
    finally:
        page.context.close()


def test_the_recordings_running_direction_is_drawn_as_points(browser, server):
    page = new_page(browser, server[0])
    try:
        page.goto(server[0])
        wait_for_app(page)
        select_with_option(page, "linear track recording").select_option(
            "linear track recording")
        wait_for_app(page, ("linear position", "running direction"))
        glyphs = page.evaluate("""() => {
          const out = {};
          const walk = (v) => {
            if (!v) return;
            if (v.model && v.model.type === 'Figure' && v.model.title) {
              out[v.model.title.text] = v.model.renderers.map(r => r.glyph && r.glyph.type);
            }
            for (const c of (v.child_views || [])) walk(c);
          };
          for (const v of Object.values(Bokeh.index)) walk(v);
          return out;
        }""")
        assert "Line" not in glyphs["running direction"], glyphs
        assert "Scatter" in glyphs["running direction"], glyphs
        assert "Line" in glyphs["linear position"], glyphs
    finally:
        page.context.close()
