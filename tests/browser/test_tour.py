"""A real-browser tour of the whole page in one tab, as a student would click through it: every
card opened, the encodings, the regularizers, the 2-D map on the simulation, every lesson, the
recording and its units, the open field with its map off and on, and uploads of two variables then
one. Each step waits for its fitted curves; the ``browser`` and ``server`` fixtures fail the test
on any page error, console error or server traceback along the way."""

from __future__ import annotations

import math

import numpy as np
import playwright.sync_api as pw
import pytest

from tests.browser.support import (
    JS_FIGURES,
    curve,
    figures,
    finite,
    poll,
    select_with_option,
    variable_row,
    wait_for_app,
    write_npz,
)
from widgets.lessons import LESSONS
from widgets.vocabulary import OPEN_FIELD, RECORDING, UPLOAD

# Every browser test runs on one xdist worker (`-n 2 --dist loadgroup`), against one served app.
pytestmark = pytest.mark.xdist_group("browser")

CARDS = ("lags-card", "code-card", "paths-card", "population-card", "decode-card",
         "model-in-time-card", "behaviour-card")


def maps(page) -> list[str]:
    """The titles of the 2-D map images on the page."""
    return [title for title in figures(page) if " × " in title]


def fitted(page, names) -> None:
    """Wait for finite curves of ``names`` and no error notice."""
    wait_for_app(page, names, timeout=300)
    pw.expect(page.locator(".alert-danger").first).to_be_hidden()


def lesson_fitted(page, lesson) -> None:
    """Wait for ``lesson``'s own fit: each included variable's curve with the lesson's bin count,
    finite in every bin the data visit (an excluded variable draws no fit). A bin with no
    samples is a gap (NaN) by design: lesson 2's and 3's 3,000 samples leave two speed bins
    empty, so they never have all-finite curves."""

    def ready():
        if page.locator(".pn-loading").count():
            return False
        got = {name: curve(page, name) for name, row in lesson.variables.items()
               if row["include"]}
        return all(c is not None and len(c[1]) == lesson.variables[name]["n_bins"]
                   and any(math.isfinite(v) for v in c[1] if v is not None)
                   and not any(v is not None and math.isinf(v) for v in c[1])
                   for name, c in got.items()) and got

    poll(ready, 300, message=f"the curves of {lesson.title!r}")
    pw.expect(page.locator(".alert-danger").first).to_be_hidden()


def write_one_variable_npz(path):
    """A binned-form NPZ with one unit and one variable, ``track``."""
    rng = np.random.default_rng(1)
    track = np.cumsum(rng.normal(0.0, 1.0, 6000))
    np.savez(path, bin_width=0.02, **{"count:cell 1": rng.poisson(0.5, 6000),
                                      "var:track[cm]": track})
    return path


def test_a_tour_of_every_control_raises_no_browser_error(browser, server, tmp_path):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(server[0])
        fitted(page, ("position", "speed", "head direction"))
        for card in CARDS:  # each built when opened; open from here on
            page.locator(f".{card} .card-header").first.click()
        poll(lambda: len(page.evaluate(JS_FIGURES)) >= 3 + 4, timeout=120,
             message="the behaviour traces")

        encoding = variable_row(page, 0).locator("select")
        encoding.select_option("B-spline")
        poll(lambda: len(curve(page, "position")[0]) == 64, message="a smooth position curve")
        encoding.select_option("bins")
        poll(lambda: len(curve(page, "position")[0]) == 20, message="20 position bins")

        regularizer = select_with_option(page, "GroupLasso")
        for name in regularizer.evaluate("e => [...e.options].map(o => o.value)"):
            before = curve(page, "position")[1]
            regularizer.select_option(name)
            poll(lambda: (y := curve(page, "position")[1]) != before and finite(y),
                 timeout=120, message=f"the {name} fit")
        regularizer.select_option("Smooth")

        joint = page.locator(".joint-toggle input")
        joint.check()  # position x speed as a map on the simulation
        poll(lambda: len(maps(page)) == 2, timeout=300, message="the simulation's map")
        joint.uncheck()
        fitted(page, ("position", "speed", "head direction"))
        assert not maps(page)

        lessons = select_with_option(page, LESSONS[0].title)
        for lesson in LESSONS:
            lessons.select_option(lesson.title)
            lesson_fitted(page, lesson)

        select_with_option(page, RECORDING).select_option(RECORDING)
        fitted(page, ("linear position", "running direction"))
        units = select_with_option(page, "t10c18")
        before = curve(page, "linear position")[1]
        units.select_option(units.evaluate("e => e.options[1].value"))
        poll(lambda: curve(page, "linear position")[1] != before, message="another unit's fit")

        select_with_option(page, OPEN_FIELD).select_option(OPEN_FIELD)
        fitted(page, ("head direction", "speed"))
        poll(lambda: len(maps(page)) == 3, timeout=300, message="the open field's map")
        joint.uncheck()
        fitted(page, ("x", "y", "head direction", "speed"))
        assert not maps(page)
        joint.check()
        poll(lambda: len(maps(page)) == 3, timeout=300, message="the map back")

        select_with_option(page, UPLOAD).select_option(UPLOAD)
        chooser = page.locator("input[type=file]")
        chooser.set_input_files(write_npz(tmp_path / "two.npz"))
        fitted(page, ("track", "heading"))
        chooser.set_input_files(write_one_variable_npz(tmp_path / "one.npz"))
        fitted(page, ("track",))
        poll(lambda: "heading" not in figures(page), message="the heading plot gone")
        page.wait_for_timeout(1000)  # errors of the last redraw arrive here
    finally:
        page.context.close()
