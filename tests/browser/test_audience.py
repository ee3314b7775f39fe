"""Issue 18's last items in the browser: dropdown and number-box text follows presentation mode;
an upload session logs no ``BokehUserWarning: reference already known``; the link holds a new
folds value or recording bin width as soon as the refit lands; a lesson chosen while another
lesson's data loads wins, applied to its own data."""

from __future__ import annotations

from urllib.parse import parse_qs

import playwright.sync_api as pw
import pytest

from tests.browser.support import (
    JS_CURVES,
    curve,
    deep_text,
    page_url,
    poll,
    query_of,
    select_with_option,
    wait_for_app,
    write_npz,
)
from tests.browser.test_page_basics import UPLOAD

pytestmark = pytest.mark.xdist_group("browser")

# The computed font size (px) of every <select>, <option> and text <input> of the page, and of
# the widgets' labels, through the shadow roots.
JS_FONT_SIZES = """() => {
  const out = {select: [], option: [], input: [], label: []};
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) walk(el.shadowRoot);
      const tag = el.tagName.toLowerCase();
      if (tag === 'input' && el.type === 'checkbox') continue;
      if (tag in out && el.getClientRects().length + (tag === 'option' ? 1 : 0))
        out[tag].push(parseFloat(getComputedStyle(el).fontSize));
    }
  };
  walk(document);
  return out;
}"""


def font_sizes(page) -> dict:
    return page.evaluate(JS_FONT_SIZES)


def test_dropdown_and_number_text_follow_presentation_mode(page):
    normal = font_sizes(page)
    assert normal["select"] and normal["option"] and normal["input"], normal
    toggle = page.locator(".presentation-toggle input[type=checkbox]")
    toggle.check()
    poll(lambda: page.evaluate("document.body.classList.contains('presentation')"),
         message="presentation mode on")
    large = font_sizes(page)
    label = max(large["label"])
    assert label >= 20, large["label"]
    for kind in ("select", "option", "input"):  # the selected value, the list, the boxes
        assert min(large[kind]) == label, (kind, large[kind], label)
        assert max(normal[kind]) < 15, (kind, normal[kind])
    toggle.uncheck()
    poll(lambda: font_sizes(page)["select"] == normal["select"], message="normal fonts back")


def log_text(server, offset: int) -> str:
    return server[1].read_bytes()[offset:].decode(errors="replace")


def test_an_upload_session_logs_no_reference_warning(page, server, tmp_path):
    offset = server[1].stat().st_size
    select_with_option(page, UPLOAD).select_option(UPLOAD)
    chooser = page.locator("input[type=file]")
    pw.expect(chooser).to_have_count(1)
    chooser.set_input_files(write_npz(tmp_path / "cells.npz"))
    wait_for_app(page, ("track", "heading"), timeout=180)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")  # refused: the upload box is replaced by a fresh one
    page.locator("input[type=file]").set_input_files(bad)
    pw.expect(page.locator(".upload-rejected").first).to_be_visible(timeout=60_000)
    page.locator("input[type=file]").set_input_files(write_npz(tmp_path / "again.npz", seed=1))
    poll(lambda: "again.npz" in deep_text(page.locator("tr").filter(has_text="data").first),
         timeout=180, message="the second file fitted")
    page.wait_for_timeout(1000)
    text = log_text(server, offset)
    assert "reference already known" not in text, [
        line for line in text.splitlines() if "reference already known" in line]


def stat(page, name: str) -> str:
    return page.locator("tr").filter(has_text=name).first.locator("td").nth(1).inner_text()


# Records location.search at the moment the named curve's GLM values change.
JS_URL_AT_REDRAW = """(name) => {
  const curves = CURVES;
  const before = JSON.stringify(curves()[name].y);
  window.urlAtRedraw = new Promise((resolve) => {
    const timer = setInterval(() => {
      const c = curves()[name];
      if (c && JSON.stringify(c.y) !== before) { clearInterval(timer); resolve(location.search); }
    }, 5);
  });
}""".replace("CURVES", JS_CURVES)


def type_into(page, label: str, text: str):
    box = page.locator(".bk-input-group").filter(has_text=label).locator("input").first
    box.fill(text)
    box.press("Enter")


def test_the_link_holds_new_folds_and_bin_width_as_the_refit_lands(page):
    poll(lambda: query_of(page).get("folds") == "10", message="the link written at the start")
    # folds leave the curves as they are: the link must hold them before the score arrives
    type_into(page, "cross-validation folds", "4")
    poll(lambda: stat(page, "folds").startswith("4 "), message="the fit scored with 4 folds")
    assert query_of(page).get("folds") == "4", page_url(page)

    select_with_option(page, "linear track recording").select_option("linear track recording")
    wait_for_app(page, ("linear position",), timeout=180)
    poll(lambda: query_of(page).get("source") == "recording", message="the recording's link")
    for width in ("0.05", "0.02"):
        page.evaluate(JS_URL_AT_REDRAW, "linear position")
        type_into(page, "bin width", width)
        search = page.evaluate("() => window.urlAtRedraw")
        got = parse_qs(search.lstrip("?")).get("bin_width", [""])[0]
        assert got and float(got) == float(width), f"redrawn at {width} s, the URL said {search}"


def lesson_select(page):
    return select_with_option(page, "3. The same bins with Ridge")


def test_a_lesson_chosen_while_another_loads_wins(page):
    # End to end; whether the second lesson lands while the first one's data is read depends on
    # the server's load: app/test_lesson_race.py replays that order deterministically.
    select = lesson_select(page)
    select.select_option("2. Too many bins, no penalty")  # loads T = 3,000
    select.select_option("3. The same bins with Ridge")  # the same data: chosen while it loads
    expected = {"T": "3000", "regularizer": "Ridge", "bins": "64,20,16",
                "log_strength": "-4.5,-4.5,-4.5"}
    poll(lambda: all(query_of(page).get(k) == v for k, v in expected.items()), timeout=120,
         message=f"the link to hold lesson 3's settings {expected}")
    poll(lambda: len((curve(page, "position") or [[]])[0]) == 64, timeout=60,
         message="lesson 3's 64 position bins drawn")
    page.wait_for_timeout(1500)  # nothing of lesson 2 comes after
    assert all(query_of(page).get(k) == v for k, v in expected.items()), page_url(page)
    pw.expect(page.locator("tr").filter(has_text="data").first).to_contain_text("T=3000")
    assert lesson_select(page).input_value() == "3. The same bins with Ridge"
