"""A closed tab's session leaves nothing behind in the server: served in this process, so that its
objects can be counted."""

from __future__ import annotations

import gc
import time

import panel as pn
import pytest

from tests.browser.support import REPO, free_port, logged_errors, wait_for_app
from widgets.state import ExplorerState

pytestmark = pytest.mark.xdist_group("browser")


def live_states() -> int:
    gc.collect()
    return sum(isinstance(o, ExplorerState) for o in gc.get_objects())


def test_closed_tabs_leave_no_session_state_in_the_server(browser):
    """Each tab's state holds its fits, curves and figures (about 2 MB a tab, measured): a
    closed tab whose state stayed reachable would grow the server by that much, every time."""
    port = free_port()
    with logged_errors() as errors:
        server = pn.serve({"app": str(REPO / "app.py")}, port=port, address="127.0.0.1",
                          websocket_origin=[f"127.0.0.1:{port}"], threaded=True, show=False,
                          check_unused_sessions=200, unused_session_lifetime=200)
        try:
            before = live_states()
            for _ in range(3):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{port}/app")
                wait_for_app(page)
                context.close()
            deadline = time.monotonic() + 30
            while live_states() > before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert live_states() == before, "closed tabs' session states are still in memory"
        finally:
            server.stop()
    assert not errors, "the server logged errors during this test:\n" + "\n".join(errors)
