"""Make ``docs/screenshot.png``: the real page, served and fitted, at 1280 x 800.

Run from the repository root (a minute or more: the server warms up first):

    PYTHONPATH=. .venv/bin/python tools/screenshot.py [--out docs/screenshot.png]

Serves ``panel serve app.py --setup warm_up.py`` on a free port and opens the page in Playwright
with Debian's Chromium, as the browser tests do (``tests/browser/support.py``), waits until every
tuning-curve figure holds a finite GLM curve, and saves the screenshot.
"""

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    free_port,
    start_server,
    stop_server,
    wait_for_app,
)

SIZE = {"width": 1280, "height": 800}


def screenshot(out: Path) -> None:
    """Serve the app, open it in Chromium, wait for fitted curves and save ``out``."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_server(port, Path(tmp) / "server.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=SIZE)
                page.goto(f"http://127.0.0.1:{port}/app")
                wait_for_app(page, timeout=180)
                page.wait_for_timeout(1500)  # the held-out score and table follow the curves
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            stop_server(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    screenshot(parser.parse_args().out)


if __name__ == "__main__":
    main()
