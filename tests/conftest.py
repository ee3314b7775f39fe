"""Fixtures shared by the browser tests: one ``panel serve app.py`` (with its warm-up) and one
Chromium per test process. A test fails on a server traceback while it ran (``server``) and on an
uncaught exception or console error of a page it opened (``browser``). The browser modules are
marked ``xdist_group("browser")``, so with ``-n 2 --dist loadgroup`` they all run on one worker and
the app compiles and starts once."""

from __future__ import annotations

import os
import shutil
import tempfile

import jax
import playwright.sync_api as pw
import pytest
from _pytest.nodeid import coerce_node_id

from tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    CheckedBrowser,
    free_port,
    server_errors,
    start_server,
    stop_server,
)

JAX_CACHE = "GLM_EXPLORER_TEST_JAX_CACHE"


def pytest_configure(config):
    """One on-disk compilation cache for the whole run, shared by the xdist workers (they inherit
    the directory from the controlling process). Tests that clear JAX's caches to start cold then
    load a solver compiled before instead of compiling it again (about 50 s per cold start). Compile
    counts are unchanged: JAX reports a load from this cache as a backend compile too."""
    if not hasattr(config, "workerinput"):  # the controlling process, or a run without xdist
        os.environ[JAX_CACHE] = tempfile.mkdtemp(prefix="glm-explorer-jax-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(JAX_CACHE), ignore_errors=True))
    jax.config.update("jax_compilation_cache_dir", os.environ[JAX_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def pytest_collection_modifyitems(config, items):
    """Give ``--dist loadgroup`` the ``@group`` node ids it schedules by. pytest-xdist 3.8 writes
    them to ``item._nodeid``, which pytest 9 no longer reads (it keeps ids in ``item._id``), so
    its groups are silently spread over the workers; without loadgroup this does nothing."""
    if not getattr(config.option, "loadgroup", False):  # set in the workers of --dist loadgroup
        return
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None and "@" not in item.nodeid.rpartition("]")[2]:
            item._id = coerce_node_id(f"{item.nodeid}@{mark.args[0]}")


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


@pytest.fixture(scope="session")
def chromium():
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
def fresh_process():
    """As in a newly started server process: no compiled solvers, no record of them, nothing
    shared between sessions; a compile count then holds alone and in any order."""
    import jax

    from widgets.shared import forget_shared

    jax.clear_caches()
    forget_shared()
