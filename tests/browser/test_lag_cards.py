"""Lagged leaves in the served page: the history simulation's history card draws its filter
(gain against lag, band, truth) and follows its strength slider; the coupling picker adds a
coupling card; a share link brings a history leaf back; the spike-history lesson loads."""

import urllib.parse

import pytest

from tests.browser.support import deep_text, poll, select_with_option

pytestmark = pytest.mark.xdist_group("browser")

BEHAVIOUR = ("position", "head direction")
# Every lagged leaf's gain curve (the renderer whose source has `lag` and `gain` columns and
# draws the fit, not its band), keyed by the figure's title (the leaf's name).
JS_FILTERS = """() => {
  const out = {};
  if (!window.Bokeh || !Bokeh.index) return out;
  const walk = (v) => {
    if (!v) return;
    if (v.model && v.model.type === 'Figure') {
      const title = v.model.title ? v.model.title.text : '';
      for (const r of v.model.renderers) {
        const d = r.data_source && r.data_source.data;
        const w = r.glyph && r.glyph.line_width;
        const width = (w !== null && typeof w === 'object') ? w.value : w;
        if (!d || r.glyph.type !== 'Line' || width !== 3) continue;
        const keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
        if (!keys.includes('gain') || !keys.includes('lag')) continue;
        const get = k => Array.from(d instanceof Map ? d.get(k) : d[k], Number);
        out[title] = {lag: get('lag'), gain: get('gain')};
      }
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""


def filters(page) -> dict:
    return page.evaluate(JS_FILTERS)


def open_page(browser, url, timeout_ms=300_000):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    return page


def wait_for_filters(page, names, timeout=300.0):
    def ready():
        if page.locator(".pn-loading").count():
            return False
        got = filters(page)
        return all(n in got and got[n]["gain"] and all(g > 0 for g in got[n]["gain"])
                   for n in names) and got
    return poll(ready, timeout, message=f"gain curves of {names}")


def history_url(url, **query):
    return url + "?" + urllib.parse.urlencode(
        {"source": "history-simulation", "T": "20000", **query})


def test_a_history_card_draws_its_filter_and_follows_its_slider(browser, server):
    page = open_page(browser, history_url(server[0]))
    try:
        got = wait_for_filters(page, ["history"])
        lag, gain = got["history"]["lag"], got["history"]["gain"]
        assert lag[0] == 10 and lag[-1] == 250 and len(lag) == 25
        assert gain[0] < 0.5  # refractory
        card = page.locator(".lag-card").first
        assert "history" in deep_text(card)
        handle = card.locator(".noUi-handle").nth(2)  # window, basis functions, strength
        handle.focus()
        for _ in range(10):
            handle.press("ArrowRight")  # +1 decade of strength: a flatter filter
        flatter = poll(lambda: (g := filters(page)["history"]["gain"]) != gain and g,
                       60, message="the history filter after its strength moved")
        assert min(flatter) > min(gain)
        window = card.locator(".noUi-handle").nth(0)
        window.focus()
        window.press("ArrowLeft")  # one bin shorter
        poll(lambda: len(filters(page)["history"]["lag"]) == 24, 60,
             message="a 240 ms window")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
        assert query["lags"] == ["history"] and query["lag_window"] == ["240"]
    finally:
        page.context.close()


def test_the_coupling_picker_adds_a_coupling_card(browser, server):
    page = open_page(browser, history_url(server[0]))
    try:
        wait_for_filters(page, ["history"])
        page.locator(".coupling-picker input").first.click()
        page.locator(".choices__item--choice", has_text="cell B").first.click()
        got = wait_for_filters(page, ["history", "coupling from cell B"])
        assert max(got["coupling from cell B"]["gain"]) > 1.2  # cell B drives cell A
        assert page.locator(".lag-card").count() == 2
        poll(lambda: "coupling%3Acell" in page.url or "coupling:cell" in page.url, 60,
             message="the coupling in the link")
    finally:
        page.context.close()


def test_a_share_link_brings_back_a_history_leaf(browser, server):
    link = history_url(server[0], lags="history", lag_include="1", lag_window="150",
                       lag_basis="5", lag_log_strength="-1.5")
    page = open_page(browser, link)
    try:
        got = wait_for_filters(page, ["history"])
        assert len(got["history"]["lag"]) == 15
        query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
        assert (query["lag_window"], query["lag_basis"], query["lag_log_strength"]) == (
            ["150"], ["5"], ["-1.5"])
        again = open_page(browser, page.url)
        try:
            assert wait_for_filters(again, ["history"])["history"] == got["history"]
        finally:
            again.context.close()
    finally:
        page.context.close()


def test_the_spike_history_lesson_loads(browser, server):
    page = open_page(browser, server[0])
    try:
        poll(lambda: not page.locator(".pn-loading").count(), 120, message="the page")
        title = "7. Refractoriness and bursts: spike history"
        select_with_option(page, title).select_option(title)
        got = wait_for_filters(page, ["history"], timeout=420)
        assert got["history"]["gain"][0] < 0.5
        poll(lambda: "refractoriness" in deep_text(page.locator(".lesson-text")), 30,
             message="the lesson's text")
    finally:
        page.context.close()
