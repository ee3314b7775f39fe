"""Sequential sampling with spike history against the plain bin-by-bin loop, in one process.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/history_simulation.py [--samples 100000] [--repeats 3]

Times ``glm_core.sequential.simulate_with_history`` (spike to spike, one by one where nearly
every bin spikes) and a reference loop over every bin (a numpy dot of the window with the
filter per bin, the same uniforms and quantiles), on 10 ms bins with a 250 ms filter:

* sparse: cell A's true burst filter on a 10 Hz drive;
* runaway: a self-exciting filter (+0.5 at every lag), the rate capped at 500 Hz;

and ``simulate_history_session`` (three cells). Checks that both give the same counts; prints
medians in ms, the ratios, and the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from glm_core.sequential import poisson_quantile, simulate_with_history
from glm_core.simulation import burst_history, simulate_history_session

BIN = 0.01
CAP = 500.0 * BIN


def reference_loop(drive, history, seed=0):
    """Every bin in turn: eta = drive + history . (the last W counts, newest first)."""
    uniforms = np.random.default_rng(seed).random(drive.size)
    window = history.size
    padded = np.zeros(drive.size + window)  # padded[window + t] = counts[t]
    reversed_history = history[::-1].copy()  # against the window, oldest first
    for t in range(drive.size):
        eta = drive[t] + float(padded[t:t + window] @ reversed_history)
        rate = max(min(math.exp(min(eta, 700.0)), CAP), 0.0)
        if uniforms[t] >= math.exp(-rate):
            padded[window + t] = poisson_quantile(float(uniforms[t]), rate)
    return padded[window:].astype(np.int64)


def median_ms(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.samples
    lags = np.arange(1, 26) * BIN
    cases = {"sparse (10 Hz, burst filter)": (np.full(n, math.log(10.0 * BIN)),
                                              burst_history(lags)),
             "runaway (+0.5 at every lag)": (np.full(n, math.log(5.0 * BIN)), np.full(25, 0.5))}
    print(f"T = {n:,} bins of {BIN * 1e3:g} ms, load average {os.getloadavg()[0]:.1f}")
    print("| case | spike bins | simulate_with_history ms | bin-by-bin loop ms | loop / ours |")
    print("| --- | --- | --- | --- | --- |")
    for name, (drive, history) in cases.items():
        ours, sample = median_ms(lambda: simulate_with_history(drive, history, max_count=CAP),
                                 args.repeats)
        loop, counts = median_ms(lambda: reference_loop(drive, history), 1)
        assert np.array_equal(sample.counts, counts), "the sampler and the loop disagree"
        print(f"| {name} | {np.count_nonzero(counts):,} | {ours:.0f} | {loop:.0f} | "
              f"{loop / ours:.1f}x |")
    session_ms, _ = median_ms(lambda: simulate_history_session(n), args.repeats)
    print(f"simulate_history_session({n:,}): {session_ms:.0f} ms (three cells)")


if __name__ == "__main__":
    main()
