"""Real-browser test of the coupling matrix in the population card: on the uploaded history
simulation (three cells, cell B drives cell A), "Coupling matrix" runs as a job and then shows a
3 x 3 heatmap."""

from __future__ import annotations

import playwright.sync_api as pw
import pytest

from tests.browser.support import history_npz, poll, select_with_option, wait_for_app
from tests.browser.test_page_basics import UPLOAD

# The coupling heatmap's cells: (driver, target, held-out gain) of its rect glyph's source.
JS_COUPLING = """() => {
  let out = null;
  const walk = (v) => {
    if (!v || out) return;
    if (v.model && v.model.type === 'Figure' && v.model.title
        && v.model.title.text.startsWith('coupling')) {
      for (const r of v.model.renderers) {
        const d = r.data_source && r.data_source.data;
        if (!d) continue;
        const keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
        if (!keys.includes('gain')) continue;
        const get = k => Array.from(d instanceof Map ? d.get(k) : d[k]);
        out = {driver: get('driver'), target: get('target'), gain: get('gain').map(Number)};
      }
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""

pytestmark = pytest.mark.xdist_group("browser")


def test_coupling_matrix_shows_after_its_job(browser, server, tmp_path):
    path = tmp_path / "history.npz"
    path.write_bytes(history_npz())
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(server[0])
        wait_for_app(page)
        select_with_option(page, UPLOAD).select_option(UPLOAD)
        chooser = page.locator("input[type=file]")
        pw.expect(chooser).to_have_count(1)
        chooser.set_input_files(path)
        # the history simulation has the simulation's variables: wait for its units
        pw.expect(select_with_option(page, "cell A")).to_have_count(1, timeout=300_000)
        wait_for_app(page, ("position", "speed", "head direction"), timeout=300)
        page.locator(".population-card .card-header").first.click()  # built when opened
        page.get_by_role("button", name="Coupling matrix").click()
        cells = poll(lambda: page.evaluate(JS_COUPLING), timeout=400,
                     message="the coupling heatmap")
        assert len(cells["gain"]) == 9
        entries = {(d, t): g for d, t, g in zip(cells["driver"], cells["target"], cells["gain"])}
        best = max((g, key) for key, g in entries.items() if g == g)[1]
        assert best == ("cell B", "cell A")  # B's past predicts A's spikes best
    finally:
        page.context.close()
