"""One tab's long job against another tab's key press, in Chromium against `panel serve app.py`.

    PYTHONPATH=. .venv/bin/python benchmarks/busy_tab.py                # ~3 min
    PYTHONPATH=. .venv/bin/python benchmarks/busy_tab.py --presses 8 --no-ascent

Tab A picks Lasso and presses "Best strengths" on the default session (a job on a worker thread,
see widgets/jobs.py); meanwhile tab B presses ArrowRight on position's strength slider again and
again, each press timed until its redrawn curve is painted (``browser_latency.JS_PROBE``). Prints
tab B's median while A is busy against its idle median (target: at most 2x), and how long tab A
waited for its Best strengths. Then, in this process, Lasso ``explorer.ascent_strengths`` against
the exhaustive ascent it replaced (every one of the 25 points of each path, two sweeps), as a
ratio: both on the same encoding, the reference run first.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import playwright.sync_api as pw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.browser_latency import JS_PROBE, SERVE_ARGS, open_tab, start, stop  # noqa: E402
from tests.browser.support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    slider_handle,
)


def press(page, handle) -> float | None:
    """One ArrowRight on ``handle``: milliseconds until the redrawn curve was painted (None if
    it was not within 10 s). At the slider's end, Home first (not timed)."""
    if float(handle.get_attribute("aria-valuenow")) > -0.05:
        handle.press("Home")
        page.wait_for_timeout(1500)
    n = page.evaluate("window.__latency.length")
    handle.press("ArrowRight")
    page.wait_for_function(f"window.__latency.length > {n} && "
                           f"window.__latency[{n}].painted !== undefined", timeout=120_000)
    page.wait_for_timeout(400)  # its held-out score follows once the slider rests
    return page.evaluate(f"window.__latency[{n}].painted")


def busy(page) -> bool:
    box = page.locator(".job-progress").first
    return box.count() > 0 and box.is_visible()


def tabs(browser, url, presses: int) -> None:
    a, b = open_tab(browser, url), open_tab(browser, url)
    b.evaluate(JS_PROBE)
    handle = slider_handle(b, 0, "log_strength")
    handle.focus()
    b.wait_for_timeout(1000)
    idle = [press(b, handle) for _ in range(presses)]
    a.locator("select:has(option[value='Lasso'])").select_option("Lasso")
    a.wait_for_function("!document.querySelector('.pn-loading')")
    a.wait_for_timeout(2000)
    start_a = time.monotonic()
    a.locator("button").filter(has_text="Best strengths").first.click()
    a.locator(".job-progress").first.wait_for(state="visible")
    during = []
    while busy(a):
        during.append(press(b, handle))
    waited = time.monotonic() - start_a  # to the end of the press running when A finished
    idle, during = [t for t in idle if t is not None], [t for t in during if t is not None]
    a.context.close()
    b.context.close()
    ratio = statistics.median(during) / statistics.median(idle) if during else float("nan")
    print(f"{'tab B idle: key press to painted curve, median':58s} "
          f"{statistics.median(idle):.0f} ms ({len(idle)} presses)")
    print(f"{'tab B while tab A runs Lasso Best strengths, median':58s} "
          f"{statistics.median(during) if during else float('nan'):.0f} ms "
          f"({len(during)} presses, max {max(during, default=float('nan')):.0f} ms)")
    print(f"{'busy / idle (target <= 2)':58s} {ratio:.2f}")
    print(f"{'tab A: Lasso Best strengths, click to done (+ one press)':58s} {waited:.1f} s",
          flush=True)


def exhaustive_ascent(enc, include, logs, grid, rounds=2):
    """The ascent ``explorer.ascent_strengths`` replaced: every grid point of every path."""
    from glm_core import explorer

    logs = list(logs)
    for _ in range(rounds):
        for v, keep in enumerate(include):
            if keep:
                means = [s.pooled for s in explorer.path(enc, include, [10.0**x for x in logs],
                                                       "Lasso", v, grid)]
                logs[v] = float(grid[int(np.nanargmax(means))])
    return logs


def ascent() -> None:
    from glm_core import explorer
    from widgets.heldout_jobs import PATH_POINTS
    from widgets.state import ExplorerState

    state = ExplorerState()
    state.start()  # the default session, as a tab gets it
    enc, include = state.encoding, [True] * len(state.variables)
    logs = [row.log_strength for row in state.variables]  # no 2-D map: one leaf a variable
    explorer.warm_up(enc, ["Lasso"])
    t = time.perf_counter()
    before = exhaustive_ascent(enc, include, logs, PATH_POINTS)
    t_before = time.perf_counter() - t
    t = time.perf_counter()
    after = explorer.ascent_strengths(enc, include, logs, "Lasso", PATH_POINTS)
    t_after = time.perf_counter() - t

    def score(x):
        return explorer.cross_validate_encoding(enc, include, [10.0**v for v in x], "Lasso").pooled

    print(f"{'Lasso Best strengths search, exhaustive (before)':58s} {t_before:.1f} s "
          f"-> {before}, held-out {score(before):.4f} bits/spike")
    print(f"{'Lasso Best strengths search, coarse-to-fine (after)':58s} {t_after:.1f} s "
          f"-> {after}, held-out {score(after):.4f} bits/spike")
    print(f"{'after / before':58s} {t_after / t_before:.2f}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=10, help="idle presses in tab B")
    parser.add_argument("--no-ascent", action="store_true", help="skip the in-process timing")
    parser.add_argument("--serve-args", default="--setup warm_up.py")
    args = parser.parse_args()
    SERVE_ARGS.extend(args.serve_args.split())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    print(f"{'load average (1 min) at start':58s} {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        port = free_port()
        proc, _ = start(port, Path(tmp) / "server.log")
        try:
            tabs(browser, f"http://127.0.0.1:{port}/app", args.presses)
        finally:
            stop(proc)
            browser.close()
    if not args.no_ascent:
        ascent()
    print(f"{'load average (1 min) at end':58s} {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
