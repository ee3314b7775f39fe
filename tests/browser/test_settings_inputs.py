"""Issue 18, items 3 and 9 in the browser: a typed value out of range is bounded in the box
itself (the box and the fit agree, and a notice says why), and the link is rewritten with the
refit, in the same document patch as the new curves, not after the held-out score."""

from __future__ import annotations

from urllib.parse import parse_qs

import playwright.sync_api as pw
import pytest

from tests.browser.support import (
    JS_CURVES,
    deep_text,
    poll,
    press_slider,
    query_of,
    select_with_option,
    wait_for_app,
)

pytestmark = pytest.mark.xdist_group("browser")



def number_box(page, label: str):
    return page.locator(".bk-input-group").filter(has_text=label).locator("input").first


def type_into(page, label: str, text: str):
    box = number_box(page, label)
    box.fill(text)
    box.press("Enter")
    box.press("Tab")
    return box


def stat(page, name: str) -> str:
    row = page.locator("tr").filter(has_text=name).first
    return row.locator("td").nth(1).inner_text()


def box_value(page, label: str) -> float:
    return float(number_box(page, label).input_value() or "nan")


def test_typed_values_out_of_range_are_bounded_in_the_box(page):
    refused = page.locator(".refused-value").first
    for label, typed, used, shown in (("cross-validation folds", "25", 20, "folds"),
                                      ("cross-validation folds", "1", 2, "folds"),
                                      ("seed", "-1", 0, "seed")):
        type_into(page, label, typed)
        poll(lambda label=label, used=used: box_value(page, label) == used,
             message=f"{label}: the box to show {used}")
        pw.expect(refused).to_be_visible()
        assert f"{typed} is outside" in deep_text(refused), deep_text(refused)
        if shown == "folds":
            poll(lambda used=used: stat(page, "folds").startswith(f"{used} "),
                 message=f"the fit to use {used} folds")
    assert stat(page, "data").endswith("seed=0)")
    type_into(page, "cross-validation folds", "5")  # an allowed value: the notice goes
    pw.expect(refused).to_be_hidden()
    poll(lambda: stat(page, "folds").startswith("5 "), message="the fit to use 5 folds")

    select_with_option(page, "linear track recording").select_option("linear track recording")
    wait_for_app(page, ("linear position",))
    samples = stat(page, "samples used")
    for typed, used in (("4000", 1.0), ("0.001", 0.005)):
        type_into(page, "bin width", typed)
        poll(lambda used=used: box_value(page, "bin width") == used,
             message=f"the bin width box to show {used}")
        poll(lambda old=samples: stat(page, "samples used") != old, timeout=120,
             message=f"the recording binned at {used} s")
        samples = stat(page, "samples used")
        wait_for_app(page, ("linear position",))
    assert not page.locator(".alert-danger").first.is_visible()


# Watches, every 5 ms, for the position curve to have ``bins`` points; records the URL's query
# at that moment.
JS_WATCH = """(bins) => { window.urlAtRefit = new Promise((resolve) => {
  const curves = CURVES;
  const timer = setInterval(() => {
    const c = curves()['position'];
    if (c && c.x.length === bins) { clearInterval(timer); resolve(location.search); }
  }, 5);
}); }""".replace("CURVES", JS_CURVES)


def test_the_link_is_rewritten_with_the_refit_not_after_the_score(page):
    assert query_of(page).get("bins", "").startswith("20,")
    page.evaluate(JS_WATCH, 19)
    press_slider(page, 0, "n_bins", "ArrowLeft")
    search = page.evaluate("() => window.urlAtRefit")
    bins = parse_qs(search.lstrip("?")).get("bins", [""])[0]
    assert bins.startswith("19,"), f"the curve had 19 bins while the URL said {search}"
