"""Real-browser tests of the population card's shuffle significance and 2-D map gallery (issue
20): on the recording, "Shuffle significance" adds p-values to the table and "significant units
only" filters it; on the open field, "Fit all units" shows every unit's map and a click on one
selects that unit."""

from __future__ import annotations

import math

import pytest

from tests.browser.support import poll, select_with_option, source_page

# The gallery figure, scrolled into view: per tile, its label and the viewport coordinates of
# the middle of its map (the label sits 1.5 bins under the tile, which is 20 bins high).
JS_GALLERY = """() => {
  let out = null;
  const walk = (v) => {
    if (!v || out) return;
    if (v.model && v.model.type === 'Figure' && v.model.title
        && String(v.model.title.text).startsWith('every unit')) {
      const text = v.model.renderers.find(r => r.glyph && r.glyph.type === 'Text');
      if (text && text.data_source.data.text && text.data_source.data.text.length) {
        v.el.scrollIntoView({block: 'center'});
        const box = v.el.getBoundingClientRect();
        const d = text.data_source.data;
        out = Array.from(d.text, (t, i) => ({
          text: t, x: box.left + v.frame.x_scale.compute(d.x[i]),
          y: box.top + v.frame.y_scale.compute(d.y[i] + 11.5)}));
      }
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""

pytestmark = pytest.mark.xdist_group("browser")


def column_values(page, field):
    cells = page.locator(f".population-table .tabulator-cell[tabulator-field='{field}']")
    return [c.inner_text() for c in cells.all()]


def test_shuffle_significance_adds_p_values_and_filters_the_table(browser, server):
    with source_page(browser, server[0], "linear track recording",
                     ("linear position", "running direction")) as page:
        page.locator(".population-card .card-header").first.click()  # built when opened
        page.get_by_role("button", name="Fit all units").click()
        poll(lambda: len(column_values(page, "unit")) >= 10, timeout=240,
             message="the population table")
        page.get_by_role("button", name="Shuffle significance").click()
        p_values = poll(lambda: (v := column_values(page, "shuffle p")) and
                        sum(x.strip() != "" for x in v) >= 10 and v, timeout=300,
                        message="shuffle p-values in the table")
        numbers = [float(x) for x in p_values if x.strip()]
        numbers = [p for p in numbers if math.isfinite(p)]  # units without spikes: NaN
        assert len(numbers) >= 10 and all(0 < p <= 1 for p in numbers) and min(numbers) < 0.05
        assert any(not x.strip() or not float(x) < 0.05 for x in column_values(page,
                                                                              "shuffle p"))
        page.locator(".population-significant input").check()
        # the table renders the rows in view only: those shown are all significant now
        poll(lambda: (v := column_values(page, "shuffle p")) and all(
            x.strip() and float(x) < 0.05 for x in v), timeout=60,
             message="the significant units only")


def test_the_gallery_shows_every_units_map_and_a_click_selects_it(browser, server):
    with source_page(browser, server[0], "open-field simulation",
                     ("head direction", "speed")) as page:
        page.locator(".population-card .card-header").first.click()
        page.get_by_role("button", name="Fit all units").click()
        # the held-out scores come after the maps and re-sort them: wait for them
        tiles = poll(lambda: (t := page.evaluate(JS_GALLERY)) and len(t) == 4 and all(
            ":" in x["text"] for x in t) and t, timeout=300, message="a gallery of 4 scored maps")
        unit_select = select_with_option(page, "grid cell")
        target = next(t for t in tiles if not t["text"].startswith(unit_select.input_value()))
        unit = target["text"].split(":")[0]
        page.mouse.click(target["x"], target["y"])
        poll(lambda: unit_select.input_value() == unit, timeout=60,
             message=f"the unit select to show {unit}")
