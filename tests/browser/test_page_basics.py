"""Real-browser tests: ``panel serve app.py`` in a subprocess, driven by Playwright + Chromium.

Plot data is read from what Bokeh really holds in the page (see ``browser_support``), widgets are
driven the way a user would (keyboard on slider handles, clicks, selects, file chooser).
"""

from __future__ import annotations

import math

import playwright.sync_api as pw
import pytest

from tests.browser.support import (
    LOCAL_PREFIXES,
    curve,
    deep_text,
    figures,
    finite,
    poll,
    press_slider,
    select_with_option,
    slider_handle,
    variable_row,
    wait_for_app,
    write_npz,
)
from widgets.lessons import LESSONS

SIM_VARS = ("position", "speed", "head direction")
RECORDING = "linear track recording"
UPLOAD = "uploaded file"

# --- fixtures ------------------------------------------------------------------------------------


# Every browser test runs on one xdist worker (`-n 2 --dist loadgroup`), against one served app.
pytestmark = pytest.mark.xdist_group("browser")





def alert(page):
    return page.locator(".alert-danger").first


def flatness(rates) -> float:
    """max / min of the (positive) rates: 1 for a flat curve."""
    return max(rates) / min(rates)


# --- tests ---------------------------------------------------------------------------------------


def test_page_loads_offline_with_three_finite_curves_and_converged_fit(browser, server):
    url = server[0]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requests = []
    context.on("request", lambda r: requests.append(r.url))
    context.on("page", lambda p: p.on("websocket", lambda ws: requests.append(ws.url)))
    page = context.new_page()
    page.on("websocket", lambda ws: requests.append(ws.url))
    try:
        page.goto(url)
        wait_for_app(page)
        assert page.locator(".pn-loading").count() == 0
        figs = figures(page)
        for name in SIM_VARS:
            assert figs[name]["visible"] and figs[name]["shown"], f"{name} plot is not shown"
            x, y = curve(page, name)
            assert len(x) == len(y) >= 2 and finite(x) and finite(y), (name, x, y)
            assert all(v > 0 for v in y), f"{name}: GLM rates must be positive"
        row = page.locator("tr").filter(has_text="converged")
        pw.expect(row).to_have_count(1)
        assert [t.strip() for t in row.locator("td").all_inner_texts()] == ["converged", "True"]
        assert not alert(page).is_visible(), deep_text(alert(page))
        page.wait_for_timeout(500)  # late requests (fonts, icons, ...) would show up here
        assert any(u.startswith("ws://127.0.0.1") for u in requests), requests
        remote = [u for u in requests if not u.startswith(LOCAL_PREFIXES)]
        assert not remote, f"requests leaving localhost: {remote}"
    finally:
        context.close()


def test_curves_follow_a_dragged_slider_before_it_is_released(page):
    """Dragging position's strength to the right flattens its curve while the mouse is still down
    (live refits, throttled in time), and the release lands on the final value."""
    start = curve(page, "position")[1]
    box = slider_handle(page, 0, "log_strength").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    try:
        page.mouse.move(x + 60, y, steps=6)
        during = poll(lambda: (c := curve(page, "position")[1]) != start and c,
                      message="the curve to change during the drag")
        assert flatness(during) < flatness(start)
        page.mouse.move(x + 400, y, steps=10)  # past the end of the track: strongest
    finally:
        page.mouse.up()
    poll(lambda: flatness(curve(page, "position")[1]) < 1.3, message="a flat curve after release")


def test_bin_count_slider_changes_number_of_points(page):
    assert len(curve(page, "position")[0]) == 20
    handle = slider_handle(page, 0, "n_bins")
    press_slider(page, 0, "n_bins", "Home")
    pw.expect(handle).to_have_attribute("aria-valuenow", "2.0")
    poll(lambda: len(curve(page, "position")[0]) == 2, message="2 position bins")
    press_slider(page, 0, "n_bins", "End")
    poll(lambda: len(curve(page, "position")[0]) == 64, message="64 position bins")
    press_slider(page, 0, "n_bins", "ArrowLeft")
    x, y = poll(lambda: (c := curve(page, "position")) and len(c[0]) == 63 and c,
                message="63 position bins")
    assert finite(y) and x == sorted(x)
    # the other variables keep their binning
    assert len(curve(page, "speed")[0]) == 20
    assert len(curve(page, "head direction")[0]) == 16


def test_strength_slider_changes_and_flattens_the_curve(page):
    before = curve(page, "position")[1]
    assert flatness(before) > 3, before  # a place field: strongly tuned at the default strength
    handle = slider_handle(page, 0, "log_strength")
    press_slider(page, 0, "log_strength", "End")  # log10 strength 0: strength 1
    pw.expect(handle).to_have_attribute("aria-valuenow", "0.0")
    after = poll(lambda: (y := curve(page, "position")[1]) != before and y,
                 message="position curve to change")
    assert len(after) == len(before) and finite(after)
    assert flatness(after) < 1.3, after
    press_slider(page, 0, "log_strength", "Home")  # weakest: tuning comes back
    back = poll(lambda: (y := curve(page, "position")[1]) != after and y,
                message="position curve to change back")
    assert flatness(back) > 3, back


def test_include_checkbox_hides_plot_and_refits_others(page):
    before = {n: curve(page, n)[1] for n in ("speed", "head direction")}
    checkbox = variable_row(page, 0).locator("input[type=checkbox]")
    pw.expect(checkbox).to_be_checked()
    checkbox.uncheck()
    poll(lambda: not figures(page)["position"]["shown"], message="position plot hidden")
    excluded = poll(
        lambda: all(curve(page, n)[1] != before[n] for n in before)
        and {n: curve(page, n)[1] for n in before},
        message="speed and head-direction curves refitted without position")
    assert all(finite(y) for y in excluded.values())
    assert figures(page)["speed"]["shown"] and figures(page)["head direction"]["shown"]

    checkbox.check()
    poll(lambda: figures(page)["position"]["shown"], message="position plot shown again")
    poll(lambda: finite(curve(page, "position")[1]), message="finite position curve again")
    restored = poll(
        lambda: all(curve(page, n)[1] != excluded[n] for n in excluded)
        and {n: curve(page, n)[1] for n in excluded},
        message="speed and head-direction curves refitted with position")
    for name, y in restored.items():  # same model as at the start again
        assert all(math.isclose(a, b, rel_tol=1e-2) for a, b in zip(y, before[name])), name


def test_linear_track_recording_and_unit_choice(page):
    select_with_option(page, RECORDING).select_option(RECORDING)
    wait_for_app(page, ("linear position",))
    figs = poll(lambda: (f := figures(page)) and not set(SIM_VARS) - {"speed"} & set(f) and f,
                message="the simulation's plots replaced by the recording's")
    assert {"linear position", "speed"} <= set(figs), figs
    assert figs["linear position"]["shown"]
    speed_row = next(i for i, name in enumerate(figs) if name == "speed")
    speed_included = variable_row(page, speed_row).locator("input[type=checkbox]").is_checked()
    assert figs["speed"]["shown"] == speed_included  # the plot follows the Include box
    units = select_with_option(page, "t10c18")
    pw.expect(units).to_have_count(1)
    options = units.evaluate("e => [...e.options].map(o => o.value)")
    assert len(options) > 10 and all(o[0] == "t" and "c" in o for o in options), options
    pw.expect(units).to_have_value("t10c18")
    row = page.locator("tr").filter(has_text="converged")
    pw.expect(row).to_contain_text("True")
    before = curve(page, "linear position")[1]
    other = next(o for o in options if o != "t10c18")
    units.select_option(other)
    after = poll(lambda: (y := curve(page, "linear position")[1]) != before and y,
                 message=f"curves of unit {other}")
    assert finite(after)
    assert finite(curve(page, "running direction")[1])


def test_upload_valid_then_corrupt_file(page, tmp_path):
    good = write_npz(tmp_path / "session.npz")
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip archive")

    select_with_option(page, UPLOAD).select_option(UPLOAD)
    chooser = page.locator("input[type=file]")
    pw.expect(chooser).to_have_count(1)
    chooser.set_input_files(good)
    wait_for_app(page, ("track", "heading"))
    poll(lambda: {"track", "heading"} <= (shown := set(figures(page)))
         and not shown & set(SIM_VARS), message="the upload's plots, none of the simulation's")
    units = select_with_option(page, "cell 1")
    pw.expect(units).to_have_count(1)
    assert len(curve(page, "heading")[0]) == 16  # circular variable: 16 bins by default
    pw.expect(alert(page)).to_be_hidden()
    tuned = curve(page, "track")[1]
    units.select_option("cell 2")  # an untuned unit: its curves change and flatten
    untuned = poll(lambda: (y := curve(page, "track")[1]) != tuned and y,
                   message="the curves of cell 2")
    assert flatness(untuned) < flatness(tuned)

    chooser.set_input_files(bad)
    pw.expect(alert(page)).to_be_visible()
    poll(lambda: "not a readable .npz file" in deep_text(alert(page)),
         message="a clear error message")
    assert "alert-danger" in alert(page).get_attribute("class")
    # the app still works: the previous data stay and a slider still refits
    press_slider(page, 0, "n_bins", "Home")
    poll(lambda: len(curve(page, "track")[0]) == 2, message="track curve with 2 bins")
    pw.expect(alert(page)).to_be_hidden()


def test_ten_concurrent_sessions_do_not_cross_talk(browser, server):
    url = server[0]
    n = 10
    pages = []
    try:
        for _ in range(n):  # start all ten loading before waiting for any
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.set_default_timeout(90_000)
            page.goto(url, wait_until="commit")
            pages.append(page)
        for page in pages:
            wait_for_app(page, timeout=120)
        # page i: Ridge, position bins 64 - i, strength weakest (even i) or strongest (odd i).
        # Keys are pressed round-robin so that the sessions refit at the same time.
        for page in pages:
            select_with_option(page, "Ridge").select_option("Ridge")
        for page in pages:
            slider_handle(page, 0, "n_bins").focus()
            page.keyboard.press("End")
        for step in range(n):
            for i, page in enumerate(pages):
                if step < i:
                    slider_handle(page, 0, "n_bins").focus()
                    page.keyboard.press("ArrowLeft")
        for i, page in enumerate(pages):
            press_slider(page, 0, "log_strength", "End" if i % 2 else "Home")
        for i, page in enumerate(pages):
            poll(lambda page=page, i=i: len(curve(page, "position")[0]) == 64 - i,
                 timeout=60, message=f"page {i}: {64 - i} position bins")
        for i, page in enumerate(pages):
            def settled(page=page, i=i):
                y = curve(page, "position")[1]
                return finite(y) and ((flatness(y) < 1.3) if i % 2 else (flatness(y) > 3))
            poll(settled, timeout=60, message=f"page {i}: strength effect")
        # a second pass, after every session has finished: nothing changed behind our back
        for i, page in enumerate(pages):
            x, y = curve(page, "position")
            assert len(x) == 64 - i, (i, len(x))
            assert (flatness(y) < 1.3) if i % 2 else (flatness(y) > 3), (i, flatness(y))
            assert len(curve(page, "speed")[0]) == 20
            assert len(curve(page, "head direction")[0]) == 16
            assert slider_handle(page, 0, "n_bins").get_attribute("aria-valuenow") == f"{64 - i}.0"
    finally:
        for page in pages:
            page.context.close()


# --- held-out scores, paths, best strengths, selection (issue 6) ---------------------------------


def held_out(page) -> float:
    """The held-out bits/spike mean shown in the fit table ("mean ± SE")."""
    row = page.locator("tr").filter(has_text="held-out bits/spike")
    pw.expect(row).to_have_count(1)
    return float(row.locator("td").nth(1).inner_text().split("±")[0])


def button(page, name):
    return page.locator("button").filter(has_text=name).first


# Visibility of each figure's shaded 95% band (the renderer of an Area: a Patch glyph).
JS_BANDS = """() => { const out = [];
  const walk = (v) => { if (!v) return;
    if (v.model && v.model.type === 'Figure')
      for (const r of v.model.renderers)
        if (r.glyph && r.glyph.type === 'Patch') out.push(r.visible);
    for (const c of (v.child_views || [])) walk(c); };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out; }"""


def test_bands_are_shaded_and_toggle(page):
    assert page.evaluate(JS_BANDS) == [True] * 3  # one band per figure, shown
    toggle = page.locator(".bands-toggle input[type=checkbox]")
    toggle.uncheck()
    poll(lambda: page.evaluate(JS_BANDS) == [False] * 3, message="bands hidden")
    before = curve(page, "position")[1]
    press_slider(page, 0, "log_strength", "End")  # a refit keeps them hidden
    poll(lambda: curve(page, "position")[1] != before, message="a refit")
    assert page.evaluate(JS_BANDS) == [False] * 3
    toggle.check()
    poll(lambda: page.evaluate(JS_BANDS) == [True] * 3, message="bands shown again")


def test_held_out_row_follows_a_strength_slider(page):
    before = held_out(page)
    train = page.locator("tr").filter(has_text="train bits/spike")
    pw.expect(train).to_have_count(1)
    press_slider(page, 0, "log_strength", "End")
    poll(lambda: held_out(page) != before, message="held-out score to change")


def test_paths_best_strengths_and_selection(page):
    # Selection first, at the default strengths (the simulation's truth: position and head
    # direction); Best strengths then tunes the selected model.
    button(page, "Which variables matter?").click()
    table = page.locator("table").filter(has_text="Wilcoxon")
    pw.expect(table).to_have_count(1, timeout=120_000)
    apply = button(page, "Apply selection")
    pw.expect(apply).to_be_enabled()
    apply.click()
    poll(lambda: not figures(page)["speed"]["shown"] and figures(page)["position"]["shown"],
         message="the selected model (position + head direction) to be shown")
    before = held_out(page)
    button(page, "Regularization paths").click()
    poll(lambda: {"path: position", "path: head direction"} <= set(figures(page)), timeout=120,
         message="a path plot per included variable")
    stars = page.evaluate("""() => Object.values(Bokeh.index).length && [...Bokeh.documents[0]
        .all_models].filter(m => m.type === 'Scatter' && m.marker && m.marker.value === 'star')
        .length""")
    assert stars >= 2, "each path marks its best strength"
    handles = [slider_handle(page, i, "log_strength") for i in range(3)]
    start = [h.get_attribute("aria-valuenow") for h in handles]
    button(page, "Best strengths").click()
    poll(lambda: [h.get_attribute("aria-valuenow") for h in handles] != start, timeout=120,
         message="strength sliders to move")
    poll(lambda: held_out(page) >= before - 1e-3, timeout=60,
         message="held-out score not lower after Best strengths")


# --- presentation mode (issue 8) -----------------------------------------------------------------

# The position figure's title size and GLM line width, and the page's font size and class.
JS_PRESENTATION = """() => { let out = {};
  const walk = (v) => { if (!v) return;
    if (v.model && v.model.type === 'Figure' && v.model.title.text === 'position') {
      out.title = parseFloat(v.model.title.text_font_size);
      for (const r of v.model.renderers) {
        const d = r.data_source && r.data_source.data;
        const keys = d ? (d instanceof Map ? [...d.keys()] : Object.keys(d)) : [];
        const w = r.glyph.line_width;  // a vectorised property: {value: ...}
        if (keys.includes('model') && r.glyph.type === 'Line') out.line = w.value ?? w;
      } }
    for (const c of (v.child_views || [])) walk(c); };
  for (const v of Object.values(Bokeh.index)) walk(v);
  out.body = document.body.classList.contains('presentation');
  out.font = parseFloat(getComputedStyle(document.body).fontSize);
  return out; }"""


def test_presentation_mode_enlarges_fonts_and_lines(page):
    normal = page.evaluate(JS_PRESENTATION)
    assert not normal["body"]
    toggle = page.locator(".presentation-toggle input[type=checkbox]")
    toggle.check()
    def enlarged():
        p = page.evaluate(JS_PRESENTATION)
        return p["body"] and all(p[key] >= 1.5 * normal[key] for key in ("title", "line", "font"))

    poll(enlarged, message=f"presentation mode: title, GLM line and page font x1.5 of {normal}")
    toggle.uncheck()

    def back_to_normal():
        now = page.evaluate(JS_PRESENTATION)
        assert now == normal, (now, normal)
        return True

    poll(back_to_normal, message="back to normal")


# --- lessons (issue 8) ---------------------------------------------------------------------------


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.title.split(".")[0])
def test_a_lesson_applies(page, lesson):
    select_with_option(page, lesson.title).select_option(lesson.title)
    text = page.locator(".lesson-text")
    poll(lambda: lesson.title in deep_text(text), message="the lesson's text")
    bins = {name: row["n_bins"] for name, row in lesson.variables.items()}
    poll(lambda: all((c := curve(page, name)) and len(c[0]) == n for name, n in bins.items()),
         timeout=60, message=f"curves with the lesson's bins {bins}")
    assert select_with_option(page, "GroupLasso").input_value() == lesson.settings["regularizer"]
    for i, row in enumerate(lesson.variables.values()):
        handle = slider_handle(page, i, "log_strength")
        assert float(handle.get_attribute("aria-valuenow")) == row["log_strength"]
        pw.expect(variable_row(page, i).locator("input[type=checkbox]")).to_be_checked(
            checked=row["include"])


def test_encoding_select_turns_the_position_curve_smooth(page):
    """Choosing B-spline in the position card redraws its GLM curve through the 64 fine bins
    (a smooth curve, no dots), finite and positive, with no error; bins bring the 20 back."""
    assert len(curve(page, "position")[0]) == 20
    encoding = variable_row(page, 0).locator("select")
    encoding.select_option("B-spline")
    x, y = poll(lambda: (c := curve(page, "position")) and len(c[0]) >= 50 and c,
                message="a smooth position curve")
    assert len(x) == 64 and finite(y) and all(v > 0 for v in y) and x == sorted(x)
    assert not alert(page).is_visible(), deep_text(alert(page))
    encoding.select_option("bins")
    poll(lambda: len(curve(page, "position")[0]) == 20, message="20 position bins again")
