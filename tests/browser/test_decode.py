"""Real-browser test of the Decode card (issue 20) on the built-in recording (whose population
solver the server's warm-up compiles): Decode draws decoded against true over time and the error
summary, and a click on a time point shows that window's posterior; and on the open field with
its default 2-D map (decoded with the map's joint leaf)."""

from __future__ import annotations

import pytest

from tests.browser.support import deep_text, poll, source_page

# The first figure whose title holds ``text``: its title, the most points of any of its
# renderers, and the viewport coordinates of its frame's centre (scrolled into view).
JS_FIGURE = """(text) => {
  let out = null;
  const walk = (v) => {
    if (!v || out) return;
    if (v.model && v.model.type === 'Figure' && v.model.title
        && v.model.title.text.includes(text)) {
      v.el.scrollIntoView({block: 'center'});
      const box = v.el.getBoundingClientRect();
      let points = 0;
      for (const r of v.model.renderers) {
        const d = r.data_source && r.data_source.data;
        if (!d) continue;
        for (const col of (d instanceof Map ? d.values() : Object.values(d)))
          points = Math.max(points, col.length || 0);
      }
      out = {title: v.model.title.text, points: points,
             x: box.left + v.frame.bbox.hcenter, y: box.top + v.frame.bbox.vcenter};
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""

pytestmark = pytest.mark.xdist_group("browser")


def test_decode_card_decodes_and_a_click_shows_a_posterior(browser, server):
    with source_page(browser, server[0], "linear track recording",
                     ("linear position", "running direction")) as page:
        page.locator(".decode-card .card-header").first.click()  # built when opened
        page.locator(".decode-target select").select_option(label="linear position")
        page.locator(".decode-button button").click()
        summary = page.locator(".decode-summary")
        poll(lambda: "Median error" in deep_text(summary), timeout=400,
             message="the error summary")
        assert "windows of 250 ms" in deep_text(summary)
        over_time = poll(lambda: (f := page.evaluate(JS_FIGURE, "decoded and true"))
                         and f["points"] > 100 and f, timeout=60,
                         message="decoded and true position over time")
        first = poll(lambda: (f := page.evaluate(JS_FIGURE, "posterior of the window"))
                     and f, timeout=60, message="the first window's posterior")
        over_time = page.evaluate(JS_FIGURE, "decoded and true")  # scrolled back into view
        page.mouse.click(over_time["x"], over_time["y"])  # a time point mid-session
        clicked = poll(lambda: (f := page.evaluate(JS_FIGURE, "posterior of the window"))
                       and f["title"] != first["title"] and f, timeout=60,
                       message="the clicked window's posterior")
        assert clicked["points"] >= 1
        assert page.evaluate(JS_FIGURE, "error histogram")["points"] > 0


def test_the_open_fields_default_2d_map_decodes_and_a_click_shows_its_posterior(browser, server):
    """The open field opens with x and y paired (its 2-D map, a joint leaf): Decode decodes the
    map as it is (its first population fit may compile: a generous timeout)."""
    with source_page(browser, server[0], "open-field simulation",
                     ("head direction", "speed")) as page:
        page.locator(".decode-card .card-header").first.click()
        assert "2-D map" in page.locator(".decode-target select").evaluate(
            "s => s.options[s.selectedIndex].text")
        page.locator(".decode-button button").click()
        summary = page.locator(".decode-summary")
        poll(lambda: "Median error" in deep_text(summary), timeout=600,
             message="the 2-D map's error summary")
        assert " cm" in deep_text(summary)
        assert not page.locator(".decode-message").is_visible()
        for text in ("decoded and true", "error histogram"):
            poll(lambda text=text: (f := page.evaluate(JS_FIGURE, text)) and f["points"] > 10,
                 timeout=60, message=text)
        first = poll(lambda: (f := page.evaluate(JS_FIGURE, "posterior of the window"))
                     and f, timeout=60, message="the first window's posterior map")
        over_time = page.evaluate(JS_FIGURE, "decoded and true")
        page.mouse.click(over_time["x"], over_time["y"])
        clicked = poll(lambda: (f := page.evaluate(JS_FIGURE, "posterior of the window"))
                       and f["title"] != first["title"] and f, timeout=60,
                       message="the clicked window's posterior map")
        assert clicked["points"] >= 1
