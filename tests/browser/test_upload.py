"""Real-browser test: a slow upload in one tab does not freeze another tab.

Tab A uploads a compressed binned NPZ of 8 million 0.5 ms bins (about 230 kB; reading and
encoding it takes seconds). Once A shows "Reading <file>...", tab B's strength slider is pressed
twice, B's curve follows each press, and A still shows its message afterwards. Were the file read
on the server's event loop, B's first press would wait for the whole read and its second for A's
refit and redraw, so A's message would be gone. (A large CSV makes the same point, but its
transfer from the browser takes minutes on this machine.)
"""

from __future__ import annotations

import io

import numpy as np
import playwright.sync_api as pw
import pytest

from tests.browser.support import curve, deep_text, open_app, poll, press_slider, select_with_option
from tests.browser.test_page_basics import UPLOAD

# Every browser test runs on one xdist worker (`-n 2 --dist loadgroup`), against one served app.
pytestmark = pytest.mark.xdist_group("browser")


def slow_npz(n_bins: int = 8_000_000, seed: int = 0) -> bytes:
    """Binned form at 0.5 ms: two sparse units, x and y (cm) and a circular hd that change every
    second, so the file compresses well; three variables like the simulation, so the compiled
    solver is reused."""
    rng = np.random.default_rng(seed)
    steps = n_bins // 2000 + 1

    def held(values, dtype):
        return np.repeat(values, 2000)[:n_bins].astype(dtype)

    buffer = io.BytesIO()
    np.savez_compressed(buffer, bin_width=0.0005, **{
        "count:cell 1": (rng.random(n_bins) < 0.0025).astype(np.uint8),
        "count:cell 2": (rng.random(n_bins) < 0.005).astype(np.uint8),
        "var:x[cm]": held(np.cumsum(rng.integers(-1, 2, steps)), np.int16),
        "var:y[cm]": held(np.cumsum(rng.integers(-2, 3, steps)), np.int16),
        "var:hd[rad,circular]": held(rng.integers(-3, 4, steps), np.int8)})
    return buffer.getvalue()


def reading(page, name: str) -> bool:
    progress = page.locator(".reading-progress")
    return (progress.count() > 0 and progress.first.is_visible()
            and f"Reading {name}" in deep_text(progress.first))


def test_other_tabs_respond_while_an_upload_is_read(browser, server, tmp_path):
    url = server[0]
    slow = tmp_path / "slow.npz"
    slow.write_bytes(slow_npz())
    uploader, other = open_app(browser, url), open_app(browser, url)
    try:
        select_with_option(uploader, UPLOAD).select_option(UPLOAD)
        chooser = uploader.locator("input[type=file]")
        pw.expect(chooser).to_have_count(1)
        chooser.set_input_files(slow)
        poll(lambda: reading(uploader, "slow.npz"), timeout=120, interval=0.05,
             message="the upload's progress message")

        for press, key in enumerate(["End", "Home"]):
            before = curve(other, "position")[1]
            press_slider(other, 0, "log_strength", key)
            poll(lambda: curve(other, "position")[1] != before, timeout=60, interval=0.05,
                 message=f"the other tab's curve after press {press + 1}")
        assert reading(uploader, "slow.npz"), "the upload was done before the other tab's changes"

        poll(lambda: curve(uploader, "x") is not None, timeout=120, message="the upload's curves")
        poll(lambda: not reading(uploader, "slow.npz"), timeout=60,
             message="the progress message to go")
        pw.expect(uploader.locator(".alert-danger")).to_be_hidden()
    finally:
        uploader.context.close()
        other.context.close()
