"""What a lecture hall notices, measured in Chromium against `panel serve app.py`.

    PYTHONPATH=. .venv/bin/python benchmarks/browser_latency.py              # everything, ~3 min
    PYTHONPATH=. .venv/bin/python benchmarks/browser_latency.py latency --presses 30
    PYTHONPATH=. .venv/bin/python benchmarks/browser_latency.py tabs --tabs 30 --cycles 20

``latency``: a strength-slider key press (ArrowRight on the handle) until the GLM curve's data in
``Bokeh.documents[0]`` has changed and one more animation frame has passed (painted), timed inside
the page, split at the arrival of the first document patch, and the part before it at the refit
(its start and end, from the server log's times, to the millisecond: one machine's wall clock);
the websocket messages and bytes the
server sent for each press (the curves, then the held-out score, table and URL once the slider
rests); the server's own time per update (refit + publishing, from its log) and CPU; the
browser main thread's time per update (Chrome's performance metrics). The load average is
printed at the start and the end: compare runs made back to back.

``tabs``: seconds from the server accepting connections until the first tab shows fitted curves,
then a later tab (from its navigation's start to the painted, fitted page, timed in the page),
then N tabs opened at once (with the CPU that the server and the rest of the machine, mostly
Chromium, spent per tab), then N page requests at once without a browser (the server alone);
then the server's RSS growth over N open/close cycles, and over N more.

A script, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import playwright.sync_api as pw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser.support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    JS_CURVES,
    REPO,
    free_port,
    slider_handle,
    wait_for_app,
)

# On every ArrowRight key press: note the time, then check each animation frame whether the GLM
# curve of `position` changed; one frame after it did (so the change has been painted), record.
# The curve's data source is found once: walking every view on each frame would load the page
# being measured. `__patches` (from JS_SOCKET) gives the arrival of the first document patch.
JS_PROBE = """() => {
  let src = null;
  const walk = (v) => {
    if (!v || src) return;
    if (v.model && v.model.type === 'Figure' && v.model.title && v.model.title.text === 'position')
      for (const r of v.model.renderers) {
        const d = r.data_source && r.data_source.data;
        if (d && (d instanceof Map ? d.has('model') : 'model' in d)) src = r.data_source;
      }
    for (const c of (v.child_views || [])) walk(c);
  };
  for (const v of Object.values(Bokeh.index)) walk(v);
  const sig = () => {
    const d = src.data;
    return JSON.stringify(Array.from(d instanceof Map ? d.get('model') : d.model));
  };
  window.__latency = [];
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight') return;
    const before = sig(), t0 = performance.now();
    const press = {t0, epoch: performance.timeOrigin + t0};
    window.__latency.push(press);
    const tick = () => {
      const done = () => { press.painted = performance.now() - t0;
                           const p = window.__patches.find(t => t > t0);
                           press.patch = p === undefined ? null : p - t0; };
      if (sig() !== before) requestAnimationFrame(done);
      else if (performance.now() - t0 > 10000) press.painted = null;
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, true);
}"""

# Before the page loads: note when each document patch from the server arrives (its header).
JS_SOCKET = """
window.__patches = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const ws = new NativeWebSocket(...args);
  ws.addEventListener('message', (e) => {
    if (typeof e.data === 'string' && e.data.includes('"msgtype": "PATCH-DOC"'))
      window.__patches.push(performance.now());
  });
  return ws;
};
window.WebSocket.prototype = NativeWebSocket.prototype;
"""

UPDATE_LOG = re.compile(r"update ([\d.]+) ms \(solver ([\d.]+) ms\)")
# A log line's time (local, to the millisecond), and its update's duration
TIMED_UPDATE_LOG = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) .*?update ([\d.]+) ms",
                              re.MULTILINE)


def start(port: int, log: Path) -> tuple[subprocess.Popen, float]:
    """``panel serve`` as the README says; returns it and the time it accepted a TCP connection
    (no HTTP request: that would open a session before the measured first tab)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PANEL_LOG_LEVEL="debug")
    panel = Path(sys.executable).with_name("panel")
    cmd = [str(panel), "serve", "app.py", *SERVE_ARGS, "--check-unused-sessions", "1000",
           "--unused-session-lifetime", "1000", "--address", "127.0.0.1",
           "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, time.monotonic()
        except OSError:
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process and its live children (``--num-procs`` workers)
    have used: a cost that the machine's load does not inflate as much as wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return ((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            + sum(cpu_s(int(child)) for child in children))


# Milliseconds from the start of the page's navigation until it shows a fitted page: checked on
# every animation frame (no loading overlay, a finite GLM curve for each simulated variable),
# then one frame more, so that it has been painted.
JS_FITTED = f"""() => new Promise((resolve, reject) => {{
  const curves = {JS_CURVES};
  const loading = () => [...Bokeh.documents[0].all_models].some(
    m => Array.isArray(m.css_classes) && m.css_classes.includes('pn-loading'));
  const fitted = () => {{
    if (!(window.Bokeh && Bokeh.documents && Bokeh.documents.length) || loading()) return false;
    const got = curves();
    return ['position', 'speed', 'head direction'].every(
      n => got[n] && got[n].y.length && got[n].y.every(Number.isFinite));
  }};
  const tick = () => {{
    if (fitted()) requestAnimationFrame(() => resolve(performance.now()));
    else if (performance.now() > 180000) reject(new Error('no fitted page after 180 s'));
    else requestAnimationFrame(tick);
  }};
  tick();
}})"""


def machine_busy_s() -> float:
    """CPU seconds that all the machine's cores have spent busy (not idle, not waiting)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def open_tab(browser, url, wait=True):
    """A new browser context (an empty cache, as on a student's laptop) showing ``url``; with
    ``wait``, its ``fitted_ms`` is set (see JS_FITTED)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url, wait_until="commit")
    if wait:
        page.fitted_ms = page.evaluate(JS_FITTED)
    return page


def latency(browser, url, log: Path, server_pid: int, presses: int) -> dict:
    """Key presses on position's strength slider; medians per press."""
    page = open_tab(browser, url)
    frames = []  # (time, bytes, is a message header) of every frame the server sent

    def on_frame(payload):
        text = payload if isinstance(payload, str) else ""
        frames.append((time.monotonic(), len(payload), text.startswith('{"msgid"')))

    page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    page.add_init_script(JS_SOCKET)
    page.reload()  # reconnect with the websocket hook in place
    wait_for_app(page, timeout=120)
    page.evaluate(JS_PROBE)
    handle = slider_handle(page, 0, "log_strength")
    handle.focus()
    page.wait_for_timeout(1000)
    log_offset = log.stat().st_size
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    busy_start = _browser_busy(cdp)
    cpu_start = cpu_s(server_pid)
    per_press = []
    for i in range(presses):
        t = time.monotonic()
        handle.press("ArrowRight")
        page.wait_for_function(f"window.__latency.length > {i} && "
                               f"window.__latency[{i}].painted !== undefined", timeout=15_000)
        page.wait_for_timeout(1000)  # the rest of this update (the held-out score) arrives
        sent = [f for f in frames if f[0] >= t]
        per_press.append((sum(f[2] for f in sent), sum(f[1] for f in sent)))
    cpu = (cpu_s(server_pid) - cpu_start) / presses
    busy = {k: (v - busy_start[k]) / presses for k, v in _browser_busy(cdp).items()}
    timed = [p for p in page.evaluate("window.__latency") if p["painted"] is not None]
    ms = [p["painted"] for p in timed]
    patch = [p["patch"] for p in timed if p["patch"] is not None]
    browser = [p["painted"] - p["patch"] for p in timed if p["patch"] is not None]
    page.context.close()
    text = log.read_bytes()[log_offset:].decode(errors="replace")
    server = [float(m[0]) for m in UPDATE_LOG.findall(text)]
    solver = [float(m[1]) for m in UPDATE_LOG.findall(text)]
    to_refit, to_patch = _server_split(timed, text)
    return Printed({
        "presses": presses, "painted": len(ms),
        "median ms": statistics.median(ms), "p90 ms": _p90(ms), "max ms": max(ms),
        "key press to first patch, median ms": statistics.median(patch),
        "  key press to the refit's start, median ms": _median(to_refit),
        "  refit (server update), median ms": statistics.median(server) if server else None,
        "  refit's end to first patch, median ms": _median(to_patch),
        "first patch to painted, median ms": statistics.median(browser),
        "messages / update": statistics.median(m for m, _ in per_press),
        "kB / update": statistics.median(b for _, b in per_press) / 1e3,
        "solver ms / update (median)": statistics.median(solver) if solver else None,
        "server CPU ms / update (mean)": 1e3 * cpu,
        **{f"browser {k} ms / update (mean)": 1e3 * v for k, v in busy.items()},
    })


def _server_split(presses: list, log_text: str) -> tuple[list, list]:
    """Per press, from the server log's update lines (their time, to the millisecond, and
    duration): key press to the start of its refit, and the refit's end to the first patch's
    arrival (wall clocks of one machine)."""
    updates = sorted(
        (time.mktime(time.strptime(m[0], "%Y-%m-%d %H:%M:%S")) * 1e3 + int(m[1]), float(m[2]))
        for m in TIMED_UPDATE_LOG.findall(log_text))
    to_refit, to_patch = [], []
    for press in presses:
        end, took = next(((e, d) for e, d in updates if e >= press["epoch"]), (None, None))
        if end is None or press["patch"] is None:
            continue
        to_refit.append(end - took - press["epoch"])
        to_patch.append(press["epoch"] + press["patch"] - end)
    return to_refit, to_patch


def _median(values):
    return statistics.median(values) if values else None


def _browser_busy(cdp) -> dict:
    """Seconds the page's main thread has spent: in all tasks, in script, in style and layout
    (Chrome's performance metrics; like CPU time, less inflated by the machine's load)."""
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {"main thread": metrics["TaskDuration"], "script": metrics["ScriptDuration"],
            "style + layout": metrics["RecalcStyleDuration"] + metrics["LayoutDuration"]}


def tabs(browser, url, proc, accepted: float, n_tabs: int, cycles: int) -> dict:
    out = Printed()
    page = open_tab(browser, url)
    out["first tab fitted, s after accept"] = time.monotonic() - accepted
    page.context.close()
    later, cpu = [], []
    for _ in range(5):
        c = cpu_s(proc.pid)
        page = open_tab(browser, url)
        later.append(page.fitted_ms / 1e3)
        cpu.append(cpu_s(proc.pid) - c)
        page.context.close()
    out["later tab fitted, s (median of 5)"] = statistics.median(later)
    out["server CPU s per later tab (median of 5)"] = statistics.median(cpu)

    t, c, busy = time.monotonic(), cpu_s(proc.pid), machine_busy_s()
    pages = [open_tab(browser, url, wait=False) for _ in range(n_tabs)]
    for page in pages:
        page.evaluate(JS_FITTED)
    out[f"{n_tabs} tabs at once, all fitted, s"] = time.monotonic() - t
    server = cpu_s(proc.pid) - c
    out["  server CPU s per tab"] = server / n_tabs
    out["  rest of the machine (Chromium) CPU s per tab"] = (
        machine_busy_s() - busy - server) / n_tabs
    out[f"{n_tabs} tabs: error alerts shown"] = sum(
        p.locator(".alert-danger").first.is_visible() for p in pages)
    for page in pages:
        page.context.close()

    # The server alone: the same number of page requests at once, with no browser to share the
    # cores with (each request builds a whole session: its first fit and every model).
    t, c = time.monotonic(), cpu_s(proc.pid)
    with ThreadPoolExecutor(n_tabs) as pool:
        list(pool.map(lambda _: urllib.request.urlopen(url, timeout=300).read(), range(n_tabs)))
    out[f"{n_tabs} page requests at once, no browser: all served, s"] = time.monotonic() - t
    out["  server CPU s per session"] = (cpu_s(proc.pid) - c) / n_tabs

    # Twice N cycles: the allocator keeps some freed memory (RSS swings by about 20 MB between
    # runs), so a leak shows as growth that goes on in the second N, not only in the first.
    time.sleep(5)
    rss = [rss_mb(proc.pid)]
    for _ in range(2):
        for _ in range(cycles):
            open_tab(browser, url).context.close()
        time.sleep(5)  # sessions are destroyed once the server sees the socket closed
        rss.append(rss_mb(proc.pid))
    out["RSS before cycles, MB"] = rss[0]
    out[f"RSS growth over {cycles} open/close cycles, MB"] = rss[1] - rss[0]
    out[f"  then over {cycles} more, MB"] = rss[2] - rss[1]
    return out


class Printed(dict):
    """A dict of results that prints each one as it is set."""

    def __init__(self, items=()):
        super().__init__()
        for key, value in dict(items).items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        print(f"{key:45s} {text}", flush=True)


def _p90(values):
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


SERVE_ARGS: list[str] = []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["all", "latency", "tabs"], default="all")
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--tabs", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--serve-args", default="--setup warm_up.py",
                        help="`panel serve` arguments (default: as the README serves it)")
    args = parser.parse_args()
    SERVE_ARGS.extend(args.serve_args.split())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server on a timeout too
    with tempfile.TemporaryDirectory() as tmp, pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        log = Path(tmp) / "server.log"
        port = free_port()
        proc, accepted = start(port, log)
        url = f"http://127.0.0.1:{port}/app"
        print(f"{'load average (1 min) at start':45s} {os.getloadavg()[0]:.1f}", flush=True)
        try:
            if args.what in ("all", "tabs"):
                tabs(browser, url, proc, accepted, args.tabs, args.cycles)
            if args.what in ("all", "latency"):
                latency(browser, url, log, proc.pid, args.presses)
        finally:  # the server is stopped first: a print to a closed pipe (| head) raises
            load = os.getloadavg()[0]
            stop(proc)
            browser.close()
            print(f"{'load average (1 min) at end':45s} {load:.1f}", flush=True)


if __name__ == "__main__":
    main()
