"""Real-browser tests of what a lecture hall notices: one served app (module-scoped) for all of
them. Several tabs at once all fit; one refit reaches the browser as one document patch; the
recording's running direction is drawn as points. Timings are in benchmarks/browser_latency.py."""

from __future__ import annotations

import contextlib
import csv
import json
from xml.etree import ElementTree

import numpy as np
import playwright.sync_api as pw
import pytest
from PIL import Image

from tests.browser.support import (
    JS_FIGURES,
    JS_IMAGES,
    curve,
    curves,
    deep_text,
    message_headers,
    page_url,
    poll,
    press_slider,
    query_of,
    select_with_option,
    slider_handle,
    variable_row,
    wait_for_app,
)

SVG = "{http://www.w3.org/2000/svg}"

# Every browser test runs on one xdist worker (`-n 2 --dist loadgroup`), against one served app.
pytestmark = pytest.mark.xdist_group("browser")


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


@contextlib.contextmanager
def strength_slider_page(browser, url):
    """A fitted page with position's strength slider focused, and the header of every message
    the server sends it (a list that grows)."""
    page = new_page(browser, url)
    headers = message_headers(page)
    try:
        page.goto(url)
        wait_for_app(page)
        handle = slider_handle(page, 0, "log_strength")
        handle.focus()
        yield page, handle, headers
    finally:
        page.context.close()


def test_one_refit_reaches_the_browser_as_one_patch_and_its_score_as_one_more(browser, server):
    with strength_slider_page(browser, server[0]) as (page, handle, headers):
        for _ in range(3):
            before = curve(page, "position")[1]
            page.wait_for_timeout(1000)  # anything still arriving from the last change
            headers.clear()
            handle.press("ArrowRight")
            poll(lambda before=before: curve(page, "position")[1] != before,
                 message="the position curve to change")
            page.wait_for_timeout(1000)  # any late patch would arrive here
            # the curves and the fit table in one patch (the curves' columns as binary buffers),
            # then the held-out score, which does not hold the curves back, in one small patch
            patches = [h for h in headers if h["msgtype"] == "PATCH-DOC"]
            assert len(patches) == 2, headers
            assert patches[0]["num_buffers"] > 0 and patches[1]["num_buffers"] == 0, patches


# Every legend item element of the page's figures (a figure's legend is one of its renderers).
JS_LEGEND_ITEMS = """() => {
  const items = [], seen = new Set();
  const walk = (v) => {
    if (!v || seen.has(v)) return;
    seen.add(v);
    if (v.model && v.model.type === 'Legend' && v.entries) items.push(...v.entries.map(e => e.el));
    for (const c of (v.child_views || [])) walk(c);
    if (v.renderer_views) for (const c of v.renderer_views.values()) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return items;
}"""


def test_a_key_press_is_answered_by_its_refit_first_and_keeps_the_legends(browser, server):
    """The refit of a strength key press leaves the server before the acknowledgement of the
    key's own message (not 50 ms later, nor queued behind it), and its new data does not make
    the legends rebuild their items (a rebuild re-lays out the page)."""
    with strength_slider_page(browser, server[0]) as (page, handle, headers):
        for _ in range(2):
            before = curve(page, "position")[1]
            page.evaluate(f"() => {{ window.__legend_items = ({JS_LEGEND_ITEMS})(); }}")
            page.wait_for_timeout(1000)  # anything still arriving from the last change
            headers.clear()
            handle.press("ArrowRight")
            poll(lambda before=before: curve(page, "position")[1] != before,
                 message="the position curve to change")
            first = headers[0]
            assert first["msgtype"] == "PATCH-DOC" and first["num_buffers"] > 0, headers
            kept = page.evaluate(f"""() => {{
              const now = ({JS_LEGEND_ITEMS})(), then = window.__legend_items;
              const same = then.every((el, i) => el === now[i] && el.isConnected);
              return [then.length, now.length, same];
            }}""")
            assert kept[0] >= 3 * 4 and kept[0] == kept[1] and kept[2], kept


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


# --- shareable links and export (widgets/share.py, widgets/export.py) ------------------------


def test_a_pages_url_opens_the_same_curves_in_a_fresh_browser(browser, server):
    page = new_page(browser, server[0])
    fresh = None
    try:
        page.goto(server[0])
        wait_for_app(page)
        press_slider(page, 0, "log_strength", "ArrowRight", "ArrowRight")
        press_slider(page, 2, "n_bins", "ArrowLeft", "ArrowLeft")
        variable_row(page, 1).locator("input[type=checkbox]").uncheck()
        select_with_option(page, "Ridge").select_option("Ridge")  # not the default
        expected = {"regularizer": "Ridge", "include": "position,head direction",
                    "bins": "20,20,14", "log_strength": "-2.8,-3.0,-3.0", "source": "simulation",
                    "T": "20000", "seed": "0", "unit": "simulated unit", "folds": "10"}
        poll(lambda: all(query_of(page).get(k) == v for k, v in expected.items()),
             message=f"the URL to hold {expected}")
        poll(lambda: len(curve(page, "head direction")[0]) == 14, message="14 bins drawn")
        page.wait_for_timeout(1000)  # the last refit's patch has landed
        included = ("position", "head direction")
        shown = {name: curve(page, name) for name in included}

        url = page_url(page)
        fresh = new_page(browser, url)  # a new context: no cookies, no storage
        fresh.goto(url)
        wait_for_app(fresh, included)
        assert not fresh.locator(".share-notice").first.is_visible()
        pw.expect(variable_row(fresh, 1).locator("input[type=checkbox]")).not_to_be_checked()
        again = curves(fresh)
        for name, (x, y) in shown.items():  # warm-started refits vs a cold start
            np.testing.assert_allclose(again[name][0], x, rtol=1e-12)
            np.testing.assert_allclose(again[name][1], y, rtol=1e-4)
        assert query_of(fresh) == query_of(page)
    finally:
        page.context.close()
        if fresh is not None:
            fresh.context.close()


def test_a_bad_query_value_gives_a_notice_and_a_fitted_page(browser, server):
    page = new_page(browser, server[0])
    try:
        page.goto(server[0] + "?unit=junk&bins=20,999,16&regularizer=Elastic&T=abc&seed=3")
        wait_for_app(page)
        notice = page.locator(".share-notice").first
        pw.expect(notice).to_be_visible()
        text = deep_text(notice)
        for key in ("unit='junk'", "bins='20,999,16'", "regularizer='Elastic'", "T='abc'"):
            assert key in text, text
        assert not page.locator(".alert-danger").first.is_visible()
        pw.expect(page.locator("tr").filter(has_text="data")).to_contain_text("seed=3")
        poll(lambda: query_of(page).get("regularizer") == "Smooth" and query_of(page),
             message="the URL to hold the settings used")
        assert query_of(page)["unit"] == "simulated unit" and query_of(page)["seed"] == "3"
    finally:
        page.context.close()


def in_file_order(shown: dict) -> dict:
    """The plotted curves as files hold them: a circular curve is drawn centred on its peak
    (bins past +-pi with 2 pi added); here it is put back on [-pi, pi), in the files' order,
    each angle with its rate."""
    shown = {name: (np.asarray(x), np.asarray(y)) for name, (x, y) in shown.items()}
    x, y = shown["head direction"]
    wrapped = np.mod(x + np.pi, 2 * np.pi) - np.pi
    order = np.argsort(wrapped)
    shown["head direction"] = wrapped[order], y[order]
    return shown


def test_the_downloads_arrive_and_hold_the_plotted_fit(browser, server):
    page = new_page(browser, server[0])
    try:
        page.goto(server[0])
        wait_for_app(page)
        shown = in_file_order(curves(page))
        with page.expect_download() as info:
            page.locator(".export-csv button").click()
        assert info.value.suggested_filename == "glm_fit.csv"
        rows = list(csv.DictReader(open(info.value.path(), newline="")))
        assert len(rows) == 20 + 20 + 16
        for name, (x, y) in shown.items():
            mine = [r for r in rows if r["variable"] == name]
            np.testing.assert_allclose([float(r["centre"]) for r in mine], x, rtol=1e-12)
            np.testing.assert_allclose([float(r["model_hz"]) for r in mine], y, rtol=1e-12)

        with page.expect_download() as info:
            page.locator(".export-json button").click()
        record = json.loads(open(info.value.path()).read())
        assert [v["name"] for v in record["variables"]] == ["position", "speed", "head direction"]
        assert record["regularizer"] == "Smooth" and record["unit"] == "simulated unit"
        for var in record["variables"]:
            np.testing.assert_allclose(var["model_hz"], shown[var["name"]][1], rtol=1e-12)
            assert len(var["bin_edges"]) == var["n_bins"] + 1 == len(var["coefficients"]) + 1

        with page.expect_download() as info:
            page.locator(".export-png button").click()
        assert info.value.suggested_filename == "tuning_curves.png"
        image = Image.open(info.value.path())
        assert image.format == "PNG"
        heights = page.evaluate("""() => { const out = [];
          const walk = (v) => { if (!v) return;
            if (v.model && v.model.type === 'Figure' && v.model.title && v.el.checkVisibility())
              out.push(v.el.getBoundingClientRect().height);
            for (const c of (v.child_views || [])) walk(c); };
          for (const v of Object.values(Bokeh.index)) walk(v); return out; }""")
        assert image.height >= 3 * 300 and image.width >= 300, (image.size, heights)
        assert len(image.convert("RGB").getcolors(1 << 20)) > 50  # drawn, not blank

        with page.expect_download() as info:
            page.locator(".export-svg button").click()
        assert info.value.suggested_filename == "tuning_curves.svg"
        svg = ElementTree.parse(info.value.path()).getroot()
        assert svg.tag == f"{SVG}svg"
        parts = svg.findall(f"{SVG}svg")  # one per figure, stacked
        assert len(parts) == 3
        tops = np.cumsum([0] + [float(p.get("height")) for p in parts])
        assert [float(p.get("y")) for p in parts] == list(tops[:-1])
        assert float(svg.get("height")) == tops[-1] >= 3 * 300
        for part, (name, (_, rates)) in zip(parts, shown.items()):
            assert name in {t.text for t in part.iter(f"{SVG}text")}  # the figure's title
            # The GLM curve is a vector path through one vertex per bin, its heights the
            # plotted rates (pixel rows run downwards).
            lines = [svg_vertices(p.get("d")) for p in part.iter(f"{SVG}path")
                     if p.get("fill") == "none"]
            assert any(len(v) == len(rates) and np.corrcoef(v[:, 1], rates)[0, 1] < -0.9999
                       for v in lines), name
    finally:
        page.context.close()


def svg_vertices(d: str) -> np.ndarray:
    """(x, y) of each M/L vertex of an SVG path (empty if it has arcs or curves)."""
    tokens = d.replace(",", " ").split()
    if any(t.isalpha() and t not in "MLZ" for t in tokens):
        return np.zeros((0, 2))
    numbers = [float(t) for t in tokens if not t.isalpha()]
    return np.reshape(numbers, (-1, 2))


def test_the_downloads_of_a_fit_with_a_2d_map_hold_the_map(browser, server):
    """The open field opens with its x × y map; the CSV and JSON hold it beside the 1-D curves,
    as drawn."""
    page = new_page(browser, server[0])
    try:
        page.goto(server[0])
        wait_for_app(page)
        select_with_option(page, "open-field simulation").select_option("open-field simulation")
        poll(lambda: set(curves(page)) == {"head direction", "speed"}
             and len(page.evaluate(JS_IMAGES)) >= 3, timeout=300,
             message="the open field's curves and its map images")
        page.wait_for_timeout(1000)  # the last refit's patch has landed
        shown, images = in_file_order(curves(page)), page.evaluate(JS_IMAGES)

        with page.expect_download() as info:
            page.locator(".export-json button").click()
        record = json.loads(open(info.value.path()).read())
        assert record["reproduce"]["data"] == "open field"
        assert [v["name"] for v in record["variables"]] == ["head direction", "speed"]
        for var in record["variables"]:
            np.testing.assert_allclose(var["model_hz"], shown[var["name"]][1], rtol=1e-12)
        (joint,) = record["maps"]
        assert (joint["name"], joint["nx"], joint["ny"]) == ("x × y", 20, 20)
        assert np.shape(joint["coefficients"]) == (20, 20)
        drawn = np.array(images[0], float)  # the model map's image: rows are y
        np.testing.assert_allclose(drawn, np.array(joint["model_hz"], float).T.ravel(),
                                   rtol=1e-6)

        with page.expect_download() as info:
            page.locator(".export-csv button").click()
        rows = list(csv.DictReader(open(info.value.path(), newline="")))
        cells = [r for r in rows if r["variable"] == "x × y"]
        assert len(rows) == 16 + 20 + 400 and len(cells) == 400
        for name, (x, y) in shown.items():  # each angle (or speed) with its rate, as drawn
            mine = [r for r in rows if r["variable"] == name]
            np.testing.assert_allclose([float(r["centre"]) for r in mine], x, rtol=1e-12)
            np.testing.assert_allclose([float(r["model_hz"]) for r in mine], y, rtol=1e-12)
        np.testing.assert_allclose([float(r["model_hz"] or "nan") for r in cells],
                                   np.array(joint["model_hz"], float).ravel(), rtol=1e-12)
        assert [(int(r["bin"]), int(r["second_bin"])) for r in cells[:3]] == [
            (0, 0), (0, 1), (0, 2)]
    finally:
        page.context.close()


# --- sections built when first opened (widgets/page.py, lazy_card) -----------------------------


def test_the_code_and_behaviour_sections_are_built_when_opened(browser, server):
    page = new_page(browser, server[0])
    try:
        page.goto(server[0])
        wait_for_app(page)
        def n_figures():
            return len(page.evaluate(JS_FIGURES))

        assert n_figures() == 3  # the tuning curves only
        assert page.locator(".snippet-glm").count() == 0
        page.locator(".behaviour-card .card-header").first.click()
        poll(lambda: n_figures() == 3 + 4, timeout=60,
             message="a behaviour trace per variable and the unit's spikes")
        page.locator(".code-card .card-header").first.click()
        poll(lambda: "from glm_core" in deep_text(page.locator(".snippet-glm").first),
             timeout=60, message="the glm_core snippet of the shown fit")
    finally:
        page.context.close()


def test_filepond_is_loaded_only_once_an_upload_is_chosen(browser, server, tmp_path):
    """A fresh page runs no FilePond (it would redraw every animation frame in every open tab);
    choosing the uploaded-file source loads it, and the upload box then takes a file."""
    from tests.browser.support import write_npz

    page = new_page(browser, server[0])
    try:
        page.goto(server[0])
        wait_for_app(page)
        assert page.evaluate("typeof window.FilePond") == "undefined"
        assert page.locator("input[type=file]").count() == 0
        select_with_option(page, "uploaded file").select_option("uploaded file")
        chooser = page.locator("input[type=file]")
        pw.expect(chooser).to_have_count(1)
        assert page.evaluate("typeof window.FilePond") == "object"
        chooser.set_input_files(write_npz(tmp_path / "session.npz"))
        wait_for_app(page, ("track", "heading"))
    finally:
        page.context.close()
