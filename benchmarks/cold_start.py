"""A first start on a new machine, and a restart, measured as a visitor sees them.

    PYTHONPATH=. .venv/bin/python benchmarks/cold_start.py          # ~3-6 min on 2 busy cores
    PYTHONPATH=. .venv/bin/python benchmarks/cold_start.py --reference ../main  # and vs another

A fresh HOME (a temporary directory: no ~/.cache, so JAX's compilation cache is empty) and
``panel serve app.py --setup warm_up.py`` as the README says. Times from the command's start:
the first HTTP 200 of /app, and a tab in Chromium showing fitted curves (every variable's GLM
curve drawn and finite, no loading overlay). While the background thread is still compiling, a
tab chooses Lasso: the seconds until its Lasso fit shows, and meanwhile another tab's
strength key press until its curve is redrawn (against the same press once all is compiled).
Then the server is stopped and started again with the same HOME (the cache now warm): HTTP 200
and fitted page again. The server's own log lines give the warm-up's phases. A script, not a
test: it prints numbers and asserts nothing. ``--reference CHECKOUT`` first measures the same
starts (without the Lasso tab) served from another checkout, e.g. the commit before a change, in
the same run, and prints the ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import playwright.sync_api as pw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser.support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    curve,
    deep_text,
    free_port,
    select_with_option,
    slider_handle,
    stop_server,
    wait_for_app,
)


def serve(repo: Path, home: Path, port: int, log: Path) -> tuple[subprocess.Popen, float]:
    """``panel serve app.py --setup warm_up.py`` in ``repo`` with HOME=``home``; returns it and
    its start."""
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(repo), PANEL_LOG_LEVEL="info")
    panel = Path(sys.executable).with_name("panel")
    cmd = [str(panel), "serve", "app.py", "--setup", "warm_up.py", "--address", "127.0.0.1",
           "--port", str(port), f"--allow-websocket-origin=127.0.0.1:{port}"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, started


def until_http(url: str, proc, log: Path) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)


def open_fitted(browser, url: str):
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(180_000)
    page.goto(url, wait_until="commit")
    wait_for_app(page, timeout=300)
    return page


def key_press_s(page) -> float:
    """Seconds from an ArrowRight on position's strength slider until its curve is redrawn."""
    before = curve(page, "position")
    handle = slider_handle(page, 0, "log_strength")
    handle.focus()
    start = time.monotonic()
    handle.press("ArrowRight")
    while curve(page, "position") == before:
        page.wait_for_timeout(20)
    return time.monotonic() - start


def a_start(browser, repo: Path, home: Path, log: Path, lasso: bool) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}/app"
    proc, started = serve(repo, home, port, log)
    out = {}
    try:
        until_http(url, proc, log)
        out["http 200 (s)"] = time.monotonic() - started
        other = open_fitted(browser, url)
        out["fitted page (s)"] = time.monotonic() - started
        if lasso:
            out.update(lasso_while_compiling(browser, url, other, log))
        other.context.close()
    finally:
        stop_server(proc)
    out["server log"] = re.findall(r"warm-up: .*", log.read_text(errors="replace"))
    return out


def lasso_while_compiling(browser, url: str, other, log: Path) -> dict:
    """A tab chooses Lasso; meanwhile ``other`` presses a key. Then the same press once the
    background compiles are done."""
    tab = open_fitted(browser, url)
    before = curve(tab, "position")
    background_done = "background compiles done" in log.read_text(errors="replace")
    start = time.monotonic()
    select_with_option(tab, "Lasso").select_option("Lasso")
    press = key_press_s(other)
    message = ""
    while curve(tab, "position") == before or tab.locator(".pn-loading").count():
        message = message or ("Preparing the Lasso solver" in deep_text(tab.locator("body"))
                              and "shown")
        tab.wait_for_timeout(50)
    lasso = time.monotonic() - start
    while "background compiles done" not in log.read_text(errors="replace"):
        time.sleep(1)
    idle = sorted(key_press_s(other) for _ in range(5))[2]
    tab.context.close()
    return {"background done before Lasso": background_done, "Lasso fit shown (s)": lasso,
            "'Preparing' message": message or "not seen", "other tab's key press meanwhile (s)":
            press, "key press once compiled, median of 5 (s)": idle}


def first_start_and_restart(browser, repo: Path, logs: Path, lasso: bool) -> dict:
    """Both starts served from ``repo``, printed; returns {start: result}."""
    home = Path(tempfile.mkdtemp(prefix="glm-cold-home-"))
    results = {}
    try:
        for name in ("first start (empty cache)", "restart (cache warm)"):
            result = a_start(browser, repo, home, logs / f"{repo.name}-{name[:5]}.log",
                             lasso and name.startswith("first"))
            print(f"{repo}: {name}, load average {os.getloadavg()[0]:.1f}", flush=True)
            for key, value in result.items():
                print(f"  {key}: {value:.1f}" if isinstance(value, float)
                      else f"  {key}: {value}", flush=True)
            results[name] = result
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, help="another checkout to measure first")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="glm-cold-logs-"))
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        reference = (first_start_and_restart(browser, args.reference.resolve(), logs, False)
                     if args.reference else None)
        ours = first_start_and_restart(browser, REPO, logs, True)
        browser.close()
    if reference:
        for name, result in ours.items():
            for key in ("http 200 (s)", "fitted page (s)"):
                print(f"{name}, {key}: {result[key] / reference[name][key]:.2f} x the "
                      "reference", flush=True)
    print(f"load average at end: {os.getloadavg()}; logs in {logs}", flush=True)


if __name__ == "__main__":
    main()
