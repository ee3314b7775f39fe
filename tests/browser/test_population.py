"""Real-browser test of the population view on the built-in recording: "Fit all units" draws a
heatmap with one row per unit, and a click on a row selects that unit in the whole page."""

from __future__ import annotations

import pytest

from tests.browser.support import (
    curve,
    poll,
    select_with_option,
    source_page,
)

# The "population" figure, scrolled into view: its y factors (units, in axis order) and, for
# each, the viewport coordinates of the middle of its row.
JS_POPULATION = """() => {
  let out = null;
  const walk = (v) => {
    if (!v || out) return;
    if (v.model && v.model.type === 'Figure' && v.model.title
        && v.model.title.text === 'population' && v.model.y_range.factors) {
      v.el.scrollIntoView({block: 'center'});
      const box = v.el.getBoundingClientRect();
      const frame = v.frame.bbox;
      const rows = v.model.y_range.factors.map(f => ({
        unit: f, x: box.left + frame.hcenter,
        y: box.top + v.frame.y_scale.compute(v.model.y_range.synthetic(f))}));
      out = {rows: rows};
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""


# Every browser test runs on one xdist worker (`-n 2 --dist loadgroup`), against one served app.
pytestmark = pytest.mark.xdist_group("browser")


def test_population_heatmap_has_a_row_per_unit_and_a_click_selects_the_unit(browser, server):
    with source_page(browser, server[0], "linear track recording",
                     ("linear position", "running direction")) as page:
        before = curve(page, "linear position")[1]
        page.locator(".population-card .card-header").first.click()  # built when opened
        page.get_by_role("button", name="Fit all units").click()
        heat = poll(lambda: (h := page.evaluate(JS_POPULATION)) and len(h["rows"]) == 31 and h,
                    timeout=240, message="a population heatmap with 31 rows")
        unit_select = select_with_option(page, "t10c18")
        assert unit_select.input_value() == "t10c18"
        target = next(r for r in heat["rows"][3:] if r["unit"] != "t10c18")
        page.mouse.click(target["x"], target["y"])
        poll(lambda: unit_select.input_value() == target["unit"], timeout=60,
             message=f"the unit select to show {target['unit']}")
        poll(lambda: curve(page, "linear position")[1] != before, timeout=60,
             message="the position curve to show the clicked unit")
