"""Make ``docs/screenshot.png``: the real page, served and fitted, at 1280 x 800.

Run from the repository root (a minute or more: the server warms up first):

    PYTHONPATH=. .venv/bin/python tools/screenshot.py [--out docs/screenshot.png]

Serves ``panel serve app.py --setup warm_up.py`` on a free port, opens the page in Playwright
with Debian's Chromium (``/usr/bin/chromium``), waits until every tuning-curve figure holds a
finite GLM curve, and saves the screenshot.
"""

import argparse
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SIZE = {"width": 1280, "height": 800}

# {figure title: GLM rates} of every drawn tuning curve (a renderer whose source has "model").
JS_CURVES = """() => {
  const out = {};
  if (!window.Bokeh || !Bokeh.index) return out;
  const walk = (v) => {
    if (!v) return;
    if (v.model && v.model.type === 'Figure') {
      for (const r of v.model.renderers) {
        const d = r.data_source && r.data_source.data;
        if (!d) continue;
        const get = k => Array.from(d instanceof Map ? d.get(k) : d[k] || [], Number);
        const keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
        if (keys.includes('model')) out[v.model.title ? v.model.title.text : ''] = get('model');
      }
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, log) -> subprocess.Popen:
    """Start ``panel serve app.py --setup warm_up.py`` on ``port``; return once it answers."""
    panel = Path(sys.executable).with_name("panel")
    proc = subprocess.Popen(
        [str(panel), "serve", "app.py", "--setup", "warm_up.py", "--address", "127.0.0.1",
         "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}"],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=5):
                return proc
        except OSError:
            time.sleep(1)
    proc.terminate()
    raise RuntimeError("panel serve did not answer within 600 s")


def fitted(page, n_figures: int = 3) -> bool:
    """Whether no loading overlay is shown and ``n_figures`` figures hold finite GLM curves."""
    if page.locator(".pn-loading").count():
        return False
    rates = page.evaluate(JS_CURVES)
    done = [r for r in rates.values() if r and all(math.isfinite(v) for v in r)]
    return len(done) >= n_figures


def screenshot(out: Path) -> None:
    """Serve the app, open it in Chromium, wait for fitted curves and save ``out``."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = serve(port, log)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM)
                page = browser.new_page(viewport=SIZE)
                page.goto(f"http://127.0.0.1:{port}/app")
                deadline = time.monotonic() + 180
                while not fitted(page):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the page showed no fitted curves within 180 s")
                    time.sleep(0.5)
                page.wait_for_timeout(1500)  # the held-out score and table follow the curves
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    screenshot(parser.parse_args().out)


if __name__ == "__main__":
    main()
