"""Long jobs run off the server's event loop (widgets/jobs.py): another tab keeps answering while
one tab computes Lasso regularization paths, the job shows its progress, Cancel drops it, and a
settings change supersedes it. Ordering assertions only, no timings."""

from __future__ import annotations

import playwright.sync_api as pw
import pytest

from tests.browser.support import (
    curve,
    deep_text,
    figures,
    poll,
    press_slider,
    select_with_option,
    wait_for_app,
)

pytestmark = pytest.mark.xdist_group("browser")


def open_tab(browser, url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_for_app(page)
    return page


def progress(page) -> str:
    """The running job's progress text, or "" when none is shown."""
    box = page.locator(".job-progress").first
    return deep_text(box) if box.count() and box.is_visible() else ""


def start_lasso_paths(page):
    select_with_option(page, "Lasso").select_option("Lasso")
    poll(lambda: not page.locator(".pn-loading").count(), timeout=120,
         message="the Lasso fit")
    page.locator("button").filter(has_text="Regularization paths").first.click()
    poll(lambda: "Regularization paths" in progress(page), message="the job's progress")


def paths_shown(page) -> bool:
    return any(title.startswith("path:") for title in figures(page))


def test_a_tab_answers_while_another_runs_a_job_which_cancels_and_is_superseded(browser,
                                                                                 server):
    url = server[0]
    a, b = open_tab(browser, url), open_tab(browser, url)
    try:
        start_lasso_paths(a)
        # tab B's key press is answered while tab A's job still runs
        before = curve(b, "position")[1]
        press_slider(b, 0, "log_strength", "ArrowRight")
        poll(lambda: curve(b, "position")[1] != before, timeout=60,
             message="tab B's redrawn curve")
        assert "Regularization paths" in progress(a), "tab A's job ended before tab B's answer"
        poll(lambda: "/" in progress(a), message="a count of the points done")
        # Cancel drops it: no progress, no paths
        a.locator(".job-cancel button, button.job-cancel").first.click()
        poll(lambda: progress(a) == "", message="the progress to go on Cancel")
        assert not paths_shown(a)
        # a settings change supersedes a running job
        start_lasso_paths(a)
        press_slider(a, 1, "log_strength", "ArrowLeft")
        poll(lambda: progress(a) == "", message="the superseded job's progress to go")
        # the page still works: a new job runs to its end and draws its paths
        a.locator("button").filter(has_text="Regularization paths").first.click()
        poll(lambda: paths_shown(a), timeout=300, message="the paths of a finished job")
        pw.expect(a.locator(".job-progress").first).to_be_hidden()
    finally:
        a.context.close()
        b.context.close()
