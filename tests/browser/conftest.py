"""Fixtures of the browser tests: one ``panel serve app.py`` (with its warm-up) per test process
and one Chromium per module. A test fails on a server traceback while it ran (``server``) and on
an uncaught exception or console error of a page it opened (``browser``). The browser modules
are marked ``xdist_group("browser")``, so with ``-n 2 --dist loadgroup`` they all run on one
worker and the app compiles and starts once."""

from __future__ import annotations

import playwright.sync_api as pw
import pytest

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CheckedBrowser,
    free_port,
    open_app,
    server_errors,
    start_server,
    stop_server,
)


@pytest.fixture(scope="session")
def served_app(tmp_path_factory):
    """A ``panel serve app.py`` subprocess on a free port; yields (app url, log path, process)."""
    port = free_port()
    log = tmp_path_factory.mktemp("panel") / "server.log"
    proc = start_server(port, log)
    try:
        yield f"http://127.0.0.1:{port}/app", log, proc
    finally:
        stop_server(proc)


@pytest.fixture
def server(served_app):
    """The served app, as ``served_app``; the test fails if the server died or logged a
    traceback while it ran (bar a closed tab's, see ``server_errors``)."""
    _, log, proc = served_app
    assert proc.poll() is None, f"panel serve is gone (exit code {proc.returncode})"
    offset = log.stat().st_size
    yield served_app
    assert proc.poll() is None, (f"panel serve died during the test (exit code {proc.returncode}):"
                                 f"\n{log.read_text(errors='replace')[-2000:]}")
    errors = server_errors(log, offset)
    assert not errors, "the server logged errors during this test:\n" + "\n".join(errors)


@pytest.fixture(scope="module")
def chromium():
    """Chromium for one test module. Playwright's sync API marks an event loop as running in
    the main thread while it is open; closed after each module, it leaves none behind for the
    other tests that run on this worker (``asyncio.run`` refuses to start inside one)."""
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(chromium):
    """The test's way to open pages (``browser.new_context()``); the test fails on any uncaught
    exception or console error of those pages."""
    checked = CheckedBrowser(chromium)
    yield checked
    assert not checked.errors, ("the browser reported errors during this test:\n"
                                + "\n".join(checked.errors))


@pytest.fixture
def page(browser, server):
    """A fresh tab on the served app, loaded and fitted (closed after the test)."""
    page = open_app(browser, server[0])
    yield page
    page.context.close()
