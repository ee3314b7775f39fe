"""Do the lowest versions that pyproject.toml declares work? Installs them and opens the page.

    PYTHONPATH=. .venv/bin/python benchmarks/lowest_versions.py                  # ~5-10 min
    PYTHONPATH=. .venv/bin/python benchmarks/lowest_versions.py --pin panel==1.5.0 --keep /tmp/v

Creates a fresh venv in a temporary folder (or reuses ``--keep DIR``), installs the declared
lower bounds of jax, jaxlib, numpy, panel, holoviews, bokeh and param (read from pyproject.toml's
``>=`` bounds, each pinned with ``==``; ``--pin NAME==VERSION`` overrides one) and the rest of the
project's dependencies at whatever pip resolves, then serves ``panel serve app.py --setup
warm_up.py`` from that venv and opens the page in Chromium (Playwright of the interpreter running
this script). Passes when the page shows finite GLM curves with no page error, no console error
and no server traceback. Prints PASS or FAIL, the installed versions and the errors; exits 1 on
FAIL. A script, not a test: it is slow (pip, then the warm-up's compiles).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import playwright.sync_api as pw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.browser.support import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    free_port,
    server_errors,
    stop_server,
    wait_for_app,
)

PINNED = ("jax", "jaxlib", "numpy", "panel", "holoviews", "bokeh", "param")
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$")


def requirement_name(requirement: str) -> str:
    """The normalised project name of a requirement string (``"jax>=0.4,<1"`` -> ``"jax"``)."""
    return REQUIREMENT.match(requirement).group(1).lower().replace("_", "-")


def lowest_requirements(pyproject: Path, pins: dict[str, str]) -> list[str]:
    """The project's dependencies with each of PINNED fixed at its declared ``>=`` bound, or at
    ``pins[name]`` when given."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for requirement in dependencies:
        name = requirement_name(requirement)
        if name in pins:
            out.append(f"{name}=={pins[name]}")
        elif name in PINNED:
            lower = re.search(r">=\s*([\w.]+)", requirement)
            if lower is None:
                raise SystemExit(f"pyproject.toml declares no lower bound for {requirement!r}")
            out.append(f"{name}=={lower.group(1)}")
        else:
            out.append(requirement)
    missing = set(PINNED) - {requirement_name(r) for r in out}
    if missing:
        raise SystemExit(f"pyproject.toml does not declare {sorted(missing)}")
    return out


def install(venv: Path, requirements: list[str]) -> None:
    """A venv at ``venv`` (created if absent) holding exactly ``requirements``' resolution."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print("pip install", " ".join(requirements), flush=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *requirements], check=True)


def installed_versions(venv: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, sys\n"
            "for n in sys.argv[1:]: print(n, m.version(n))")
    names = [*PINNED, "pandas", "scipy", "pynwb"]
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code, *names], check=True,
                         capture_output=True, text=True).stdout
    return dict(line.split() for line in out.splitlines())


def serve(venv: Path, port: int, log_path: Path, timeout: float) -> subprocess.Popen:
    """``panel serve app.py --setup warm_up.py`` of the venv, from the repository; returns once
    the page answers (raises if it answers with an error, if the server exits or ``timeout``
    seconds pass)."""
    cmd = [str(venv / "bin" / "panel"), "serve", "app.py", "--setup", "warm_up.py",
           "--address", "127.0.0.1", "--port", str(port),
           f"--allow-websocket-origin=127.0.0.1:{port}", "--num-procs", "1"]
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(REPO),
           "HOME": str(log_path.parent), "BOKEH_LOG_LEVEL": "info"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log_path, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"panel serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=5):
                return proc
        except urllib.error.HTTPError as err:  # the app script failed
            raise RuntimeError(f"the page answered HTTP {err.code}") from None
        except OSError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"panel serve did not answer within {timeout} s")
        time.sleep(0.5)


def open_page(url: str) -> list[str]:
    """Open ``url`` in Chromium, wait for finite curves; the browser's errors (empty: none)."""
    errors = []
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("console", lambda m: m.type == "error"
                    and errors.append(f"console error: {m.text}"))
            page.goto(url, timeout=120_000)
            try:
                wait_for_app(page, timeout=180)
            except AssertionError as err:
                errors.append(f"no curves: {str(err)[:500]}")
            page.wait_for_timeout(2000)  # late errors, e.g. of a deferred restyle
        finally:
            browser.close()
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", action="append", default=[], metavar="NAME==VERSION",
                        help="install this version instead of the declared lower bound")
    parser.add_argument("--keep", type=Path, help="venv folder to create or reuse, kept")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds the server may take to answer (the warm-up compiles)")
    args = parser.parse_args()
    pins = dict(requirement.split("==") for requirement in args.pin)
    pins = {requirement_name(name): version for name, version in pins.items()}
    requirements = lowest_requirements(REPO / "pyproject.toml", pins)

    with tempfile.TemporaryDirectory(prefix="lowest-versions-") as tmp:
        venv = args.keep or Path(tmp) / "venv"
        install(venv, requirements)
        versions = installed_versions(venv)
        log_path = Path(tmp) / "server.log"
        errors, proc = [], None
        try:
            port = free_port()
            proc = serve(venv, port, log_path, args.timeout)
            errors += open_page(f"http://127.0.0.1:{port}/app")
        except RuntimeError as err:
            errors.append(str(err))
        finally:
            if proc is not None:
                stop_server(proc)
        errors += server_errors(log_path, 0)
        if errors:
            tail = log_path.read_text(errors="replace")[-3000:]
            errors.append("server log (tail):\n" + tail)

    print(("FAIL" if errors else "PASS"), " ".join(f"{n}=={v}" for n, v in versions.items()))
    for error in errors:
        print(" ", error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
