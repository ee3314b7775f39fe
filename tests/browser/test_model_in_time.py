"""Real-browser test of the "Model in time" card: opened, it draws the observed rate and the
cross-validated predicted rate with the spike raster and the behaviour on one time axis (one
shared x range); the simulate toggle adds the simulated spikes and takes them away again."""

from __future__ import annotations

import math

import pytest

from tests.browser.support import deep_text, poll

# Per figure of the card (by title): its renderers' line colour, data columns and x range id.
JS_TIME_FIGURES = """() => {
  const out = {};
  if (!window.Bokeh || !Bokeh.index) return out;
  const walk = (v) => {
    if (!v) return;
    if (v.model && v.model.type === 'Figure' && v.model.title) {
      const rows = [];
      for (const r of v.model.renderers) {
        const src = r.data_source, g = r.glyph;
        if (!src || !src.data || !g) continue;
        const d = src.data;
        const keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
        const cols = {};
        for (const k of keys) cols[k] = Array.from(d instanceof Map ? d.get(k) : d[k], Number);
        const color = g.line_color && (g.line_color.value !== undefined ? g.line_color.value
                                                                         : g.line_color);
        rows.push({color: String(color), cols: cols, x_range: v.model.x_range.id});
      }
      out[v.model.title.text] = rows;
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""

PREDICTED, OBSERVED, SIMULATED = "#1f5fa8", "#555555", "#e6862a"

pytestmark = pytest.mark.xdist_group("browser")


def finite_count(values) -> int:
    return sum(1 for v in values if v is not None and math.isfinite(v))


def rate_lines(page) -> dict | None:
    """The rate figure's curves by colour: their finite samples and x values."""
    figs = page.evaluate(JS_TIME_FIGURES)
    rows = figs.get("observed and predicted rate")
    if not rows:
        return None
    return {r["color"].lower(): r["cols"] for r in rows}


def simulated_ticks(page) -> int:
    """Ticks of the raster's simulated row (segments starting at y = 0.1)."""
    rows = page.evaluate(JS_TIME_FIGURES).get("spikes") or []
    return sum(1 for r in rows if r["color"].lower() == SIMULATED
               for _ in next(iter(r["cols"].values()), []))


def test_model_in_time_card_draws_predicted_and_observed_and_simulates(page):
    page.locator(".model-in-time-card .card-header").first.click()  # built when opened

    def drawn():
        lines = rate_lines(page)
        if not lines or PREDICTED not in lines or OBSERVED not in lines:
            return None
        predicted = next(v for k, v in lines[PREDICTED].items() if k != "time")
        observed = next(v for k, v in lines[OBSERVED].items() if k != "time")
        return finite_count(predicted) > 100 and finite_count(observed) > 100 and lines

    lines = poll(drawn, timeout=120, message="the predicted and observed rates drawn")
    simulated = next(v for k, v in lines[SIMULATED].items() if k != "time")
    assert finite_count(simulated) == 0
    figures = page.evaluate(JS_TIME_FIGURES)
    titles = ("observed and predicted rate", "spikes", "position", "speed", "head direction")
    for title in titles:
        assert title in figures, f"no {title!r} figure in the card"
    # one time axis: panning or zooming one row moves them all
    assert len({figures[title][0]["x_range"] for title in titles}) == 1
    assert simulated_ticks(page) == 0

    page.locator(".simulate-toggle input").first.check()
    poll(lambda: simulated_ticks(page) > 0, timeout=60, message="simulated spikes in the raster")
    poll(lambda: finite_count(next(v for k, v in rate_lines(page)[SIMULATED].items()
                                   if k != "time")) > 100,
         timeout=30, message="the simulated rate drawn")
    poll(lambda: "Simulated from the fit" in deep_text(page.locator(".time-message").first),
         timeout=30, message="the card to say it simulated")

    page.locator(".simulate-toggle input").first.uncheck()
    poll(lambda: simulated_ticks(page) == 0, timeout=60, message="the simulated spikes gone")
