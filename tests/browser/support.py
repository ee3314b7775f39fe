"""Helpers for the real-browser tests in ``test_browser.py``: start ``panel serve app.py``,
launch Debian's Chromium through Playwright, and read what Bokeh really plotted.

Bokeh renders inside shadow DOM, so widgets are found with Playwright CSS locators (which pierce
shadow roots) and plot data is read from ``window.Bokeh.documents[0]`` in ``page.evaluate``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LOCAL_PREFIXES = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "ws://localhost",
                  "data:", "blob:", "about:")

# The GLM curve (the renderer whose source has a `model` column) of every figure that is part of
# the rendered page, keyed by the figure's title (the variable's name). Walks the live views, not
# `doc.all_models`, which still holds the sources of plots replaced by a new data set. `x` is the
# column named after the variable (HoloViews may sanitise it, e.g. head_direction).
JS_CURVES = """() => {
  const out = {};
  if (!window.Bokeh || !Bokeh.index) return out;
  const walk = (v) => {
    if (!v) return;
    if (v.model && v.model.type === 'Figure') {
      for (const r of v.model.renderers) {
        const src = r.data_source;
        if (!src || !src.data) continue;
        const d = src.data;
        const keys = d instanceof Map ? [...d.keys()] : Object.keys(d);
        if (!keys.includes('model')) continue;
        const x = keys.find(k => k !== 'model');
        const get = k => Array.from(d instanceof Map ? d.get(k) : d[k], Number);
        const title = v.model.title ? v.model.title.text : x;
        out[title] = {column: x, x: get(x), y: get('model')};
      }
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""

# Every Bokeh figure view with its title, model.visible and whether its element is displayed.
JS_FIGURES = """() => {
  const out = [];
  if (!window.Bokeh || !Bokeh.index) return out;
  const walk = (v) => {
    if (!v) return;
    if (v.model && v.model.type === 'Figure') {
      const r = v.el.getBoundingClientRect();
      out.push({title: v.model.title ? v.model.title.text : '', visible: v.model.visible,
                shown: v.el.checkVisibility() && r.width > 0 && r.height > 0});
    }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  return out;
}"""


# Every image data source of the page: its values, row-major (NaN arrives as null or NaN).
JS_IMAGES = """() => {
  const out = [];
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type !== 'GlyphRenderer' || !m.glyph || m.glyph.type !== 'Image') continue;
    const image = m.data_source.data.image;
    if (!image || !image.length) continue;
    const rows = image[0];
    const flat = ArrayBuffer.isView(rows) ? Array.from(rows)
      : rows.flatMap(r => Array.from(r));
    out.push(flat.map(v => (v === null || Number.isNaN(v)) ? null : v));
  }
  return out;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path, timeout: float = 600.0) -> subprocess.Popen:
    """``panel serve app.py`` on 127.0.0.1:``port`` in its own process group; waits for HTTP
    and then for the warm-up's background compiles (every solver: a minute or more on a cold,
    busy machine), so that tests see a server with every solver compiled, as before."""
    env = dict(os.environ, PYTHONPATH=str(REPO), BOKEH_LOG_LEVEL="info",
               PANEL_LOG_LEVEL="info")
    panel = Path(sys.executable).with_name("panel")
    cmd = [str(panel), "serve", "app.py", "--setup", "warm_up.py", "--address", "127.0.0.1",
           "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}", "--num-procs", "1"]
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/app"
    answered = False
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited with {proc.returncode}:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        try:
            if not answered:  # one page request; then only the log is read
                with urllib.request.urlopen(url, timeout=5) as response:
                    answered = response.status == 200
            if answered and "background compiles done" in log_path.read_text(errors="replace"):
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"panel serve did not answer {url} within {timeout} s:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.3)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def message_headers(page) -> list[dict]:
    """The header of every Bokeh protocol message that the server sends ``page`` from now on, in
    order (``msgtype``, ``num_buffers``, ...): a list that grows."""
    headers = []

    def on_frame(payload):
        if isinstance(payload, str) and payload.startswith('{"msgid"'):
            headers.append(json.loads(payload))

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    return headers


def poll(fn, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    """Call ``fn`` until it returns something truthy (returned) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except AssertionError as err:  # allow fn to use assert for a descriptive failure
            last = err
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}; last: "
                                 f"{last!r:.2000}")
        time.sleep(interval)


def norm(name: str) -> str:
    """A variable name as HoloViews may sanitise it into a column name."""
    return "".join(c if c.isalnum() else "_" for c in name)


def curves(page) -> dict:
    """``{figure title: (x list, GLM rate list)}`` of every rendered GLM curve. A curve counts
    only if its x column is named after the variable (raw or as HoloViews sanitises it)."""
    return {title: (v["x"], v["y"]) for title, v in page.evaluate(JS_CURVES).items()
            if v["column"] in (title, norm(title))}


def curve(page, name: str):
    """The plotted GLM curve ``(x, rates)`` of the variable ``name``, or None."""
    return curves(page).get(name)


def figures(page) -> dict:
    """``{title: {"visible": bool, "shown": bool}}`` of the tuning-curve figures."""
    return {f["title"]: f for f in page.evaluate(JS_FIGURES) if f["title"]}


def finite(values) -> bool:
    return len(values) > 0 and all(v is not None and math.isfinite(v) for v in values)


def wait_for_app(page, names=("position", "speed", "head direction"), timeout: float = 90.0):
    """Wait until the loading overlay is gone and each named variable has a finite GLM curve."""

    def ready():
        if page.locator(".pn-loading").count():
            return False
        got = {n: curve(page, n) for n in names}
        return all(c is not None and finite(c[1]) for c in got.values()) and got

    return poll(ready, timeout, message=f"finite GLM curves of {list(names)}")


def variable_row(page, index: int):
    """The sidebar card of the ``index``-th variable (order of the session's variables)."""
    return page.locator(".variable-row").nth(index)


def slider_handle(page, index: int, which: str):
    """The noUiSlider handle of variable ``index``'s ``n_bins`` or ``log_strength`` slider."""
    return variable_row(page, index).locator(".noUi-handle").nth(
        {"n_bins": 0, "log_strength": 1}[which])


def press_slider(page, index: int, which: str, *keys: str) -> None:
    """Drive a throttled slider with the keyboard: each key press is one committed change."""
    handle = slider_handle(page, index, which)
    handle.focus()
    for key in keys:
        handle.press(key)


def page_url(page) -> str:
    """The address bar's URL, read in the page. (Playwright's ``page.url`` is a copy that the
    sync API refreshes only while a call into Playwright runs: a poll of it alone never sees a
    URL the page writes meanwhile.)"""
    return page.evaluate("() => location.href")


def query_of(page) -> dict:
    """The page URL's query, one value per key (read in the page: ``page_url``)."""
    return {k: v[0] for k, v in parse_qs(urlparse(page_url(page)).query).items()}


def select_with_option(page, value: str):
    """The <select> offering ``value`` (e.g. the data-source select)."""
    return page.locator(f"select:has(option[value='{value}'])")


JS_DEEP_TEXT = """(el) => {
  const parts = [];
  const walk = (n) => {
    if (n.nodeType === Node.TEXT_NODE) { parts.push(n.textContent); return; }
    if (n.nodeType !== Node.ELEMENT_NODE && n.nodeType !== Node.DOCUMENT_FRAGMENT_NODE) return;
    if (n.nodeType === Node.ELEMENT_NODE && ['STYLE', 'SCRIPT', 'LINK'].includes(n.tagName)) return;
    if (n.shadowRoot) walk(n.shadowRoot);
    for (const c of n.childNodes) walk(c);
  };
  walk(el);
  return parts.join(' ').replace(/\\s+/g, ' ').trim();
}"""


def deep_text(locator) -> str:
    """Text of an element including what its (nested) shadow roots render."""
    return locator.evaluate(JS_DEEP_TEXT)


def server_errors(log_path: Path, offset: int) -> list[str]:
    """Tracebacks / ERROR lines the server logged after byte ``offset`` of its log, as
    ``log_errors``."""
    return log_errors(log_path.read_bytes()[offset:].decode(errors="replace"))


def log_errors(text: str) -> list[str]:
    """Tracebacks / ERROR lines of a server's log ``text``, except the harmless ones of a browser
    tab that closed: the server still sending to it, or its last messages read after Bokeh's
    keep-alive ping found it gone and let go of its session (bokeh#13655; the connection then
    asserts it has a session)."""
    blocks = []
    for block in text.split("Traceback (most recent call last):")[1:]:
        lines = [line for line in block.splitlines() if line and not line.startswith(" ")]
        frames = [line.strip() for line in block.splitlines() if line.startswith('  File "')]
        where = f" (at {frames[-1][:200]})" if frames else ""
        blocks.append("Traceback ... " + (lines[0][:300] if lines else block[:300]) + where)
    blocks += [line[:300] for line in text.splitlines() if " ERROR" in line]
    closed = ("StreamClosedError", "WebSocketClosedError")
    detached = re.compile(r'bokeh/server/connection\.py", line \d+, in session\)$')
    return [b for b in blocks if not any(c in b for c in closed) and not detached.search(b)]


@contextlib.contextmanager
def logged_errors():
    """For a server in this process: yields a list that, on exit, holds the errors (as
    ``log_errors``) that Bokeh, Panel and Tornado logged meanwhile."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("bokeh", "panel", "tornado")]
    for logger in loggers:
        logger.addHandler(handler)
    errors = []
    try:
        yield errors
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        errors += log_errors(stream.getvalue())


class CheckedBrowser:
    """Chromium whose every new context records its pages' uncaught exceptions (``pageerror``)
    and console errors in ``errors`` (a test's browser fixture fails on them). It offers only
    ``new_context``, so no page can be opened around the record."""

    def __init__(self, browser):
        self._browser = browser
        self.errors: list[str] = []

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.on("weberror", lambda e: self.errors.append(
            f"pageerror: {e.error.stack or e.error.message}"[:2000]))
        context.on("console", lambda m: m.type == "error" and self.errors.append(
            f"console error: {m.text} (at {m.location.get('url')}:"
            f"{m.location.get('lineNumber')})"[:2000]))
        return context


def write_npz(path: Path, n: int = 6000, seed: int = 0) -> Path:
    """A small valid binned-form NPZ (schema: glm_core/loaders.py): 20 ms bins, two units, a
    linear variable ``track`` in cm and a circular ``heading`` in rad."""
    import numpy as np

    rng = np.random.default_rng(seed)
    track = np.cumsum(rng.normal(0.0, 1.0, n))
    heading = np.mod(np.cumsum(rng.normal(0.0, 0.2, n)) + np.pi, 2 * np.pi) - np.pi
    rate = np.exp(-((track - track.mean()) ** 2) / (2 * track.std() ** 2) + np.cos(heading) - 1)
    np.savez(path, bin_width=0.02, **{
        "count:cell 1": rng.poisson(rate), "count:cell 2": rng.poisson(0.5, n),
        "var:track[cm]": track, "var:heading[rad,circular]": heading})
    return path


@contextlib.contextmanager
def source_page(browser, url: str, source: str, names, timeout: float = 300.0):
    """A new tab of the app, switched to data source ``source`` and fitted (the GLM curves of
    ``names`` finite); closed on exit."""
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(url)
        wait_for_app(page)
        select_with_option(page, source).select_option(source)
        wait_for_app(page, names, timeout=timeout)
        yield page
    finally:
        page.context.close()


def open_app(browser, url, names=("position", "speed", "head direction"), timeout_ms=90_000):
    """A fresh context (so a fresh Bokeh session) with the app loaded and fitted: its page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    wait_for_app(page, names)
    return page


def history_npz(n: int = 12_000, seed: int = 3) -> bytes:
    """The three-cell history simulation (``simulate_history_session``: cell B drives cell A)
    as a binned-form NPZ upload."""
    import numpy as np

    from glm_core.simulation import simulate_history_session

    session = simulate_history_session(n, seed=seed)
    buffer = io.BytesIO()
    np.savez(buffer, bin_width=session.bin_width,
             **{f"count:{name}": session.unit_counts(name) for name in session.unit_names},
             **{f"var:{v.name}[{'rad,circular' if v.circular else v.unit}]": v.values
                for v in session.variables})
    return buffer.getvalue()
