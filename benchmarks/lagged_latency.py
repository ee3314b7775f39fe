"""Latency of the lagged-leaf engine: 3 behavioural leaves plus a spike-history leaf.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/lagged_latency.py [--sizes 200000 1000000]
        [--repeats N]

For each sample count T it simulates a session of 10 ms bins (position, speed, head direction;
20/20/16 bins, Ridge) and adds the unit's own history (8 raised cosines over 250 ms), then
times in one process what the app does after a strength change: a warm-started refit, and a
refit plus a warm-started 10-fold cross-validation. Reference, in the same process on the same
design: the dense pytree GLM (``glm_core.GLM``, one-hot columns plus the lagged columns) fitted
once from cold and once warm, and the bin-grid engine's refit of the behavioural leaves alone.
Every timing ends in host values; each is given as wall time and as the process's CPU time
(on the shared, loaded machine the CPU time is the closer estimate of an idle machine's wall
time, up to XLA's use of the second core). The issue's targets: refit <= 50 ms and refit + CV
<= 500 ms at T = 2e5, refit <= 250 ms at T = 1e6.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from glm_core import GLM, explorer
from glm_core.lag_leaves import LagLeaf, with_lags
from glm_core.simulation import simulate_session

N_BINS = (20, 20, 16)
HISTORY = LagLeaf("history", None, 0.25, 8)
SWEEP = (10**-1.5, 1e-1, 10**-1.5, 1e-2, 10**-2.5, 1e-3, 10**-2.5, 1e-2)


CPU = []  # process CPU time of each timed call, ms: on a loaded machine, closer to idle wall


def timed(f):
    start, cpu = time.perf_counter(), time.process_time()
    out = f()
    CPU.append(1e3 * (time.process_time() - cpu))
    return out, 1e3 * (time.perf_counter() - start)


def dense_design(enc):
    """The same model as a dict of dense leaves: one-hot bins, then the lagged rows."""
    rows = np.arange(enc.indices.shape[0])
    design = {}
    for v, n in enumerate(enc.n_bins):
        one_hot = np.zeros((rows.size, n), np.float32)
        one_hot[rows, enc.indices[:, v]] = 1.0
        design[f"v{v}"] = one_hot
    history = np.where(enc.lag.used[:, None], enc.lag.rows[:, :HISTORY.n_basis], np.nan)
    design["history"] = history.astype(np.float32)
    return design


def run(n_samples, repeats):
    session = simulate_session(n_samples, seed=1, bin_width=0.01)
    enc = with_lags(explorer.encode(session, 0, N_BINS), session, [HISTORY])
    include = [True] * 4
    fit, first = timed(lambda: explorer.fit(enc, include, [1e-2] * 4, "Ridge"))
    cv, first_cv = timed(lambda: explorer.cross_validate_encoding(enc, include, [1e-2] * 4,
                                                                  "Ridge", fit.theta))
    refits, with_cv, iters, refit_cpu, cv_cpu = [], [], [], [], []
    for _ in range(repeats):
        for strength in SWEEP:
            before = fit.theta
            fit, ms = timed(lambda: explorer.fit(enc, include, [strength] * 4, "Ridge",
                                                 init=before))
            refits.append(ms)
            refit_cpu.append(CPU[-1])
            iters.append(fit.n_iter)
            cv, ms_cv = timed(lambda: explorer.cross_validate_encoding(
                enc, include, [strength] * 4, "Ridge", cv.theta, moved=(before, fit.theta)))
            with_cv.append(ms + ms_cv)
            cv_cpu.append(CPU[-2] + CPU[-1])
    grid_enc = explorer.encode(session, 0, N_BINS)
    grid_fit = explorer.fit(grid_enc, include[:3], [1e-2] * 3, "Ridge")
    grid_refits = []
    for strength in SWEEP:
        grid_fit, ms = timed(lambda: explorer.fit(grid_enc, include[:3], [strength] * 3,
                                                  "Ridge", init=grid_fit.theta))
        grid_refits.append(ms)
        grid_cpu = CPU[-1]
    design, y = dense_design(enc), enc.counts
    strengths = dict.fromkeys(design, 1e-2)
    dense, dense_cold = timed(lambda: GLM("Ridge", strengths).fit(design, y))
    strengths = dict.fromkeys(design, 10**-1.5)
    _, dense_warm = timed(lambda: GLM("Ridge", strengths).fit(design, y, init_params=(
        dense.coef_, dense.intercept_)))
    refit, both = statistics.median(refits), statistics.median(with_cv)
    print(f"T = {n_samples:.0e}: {enc.lag.n_dropped} samples dropped, "
          f"{enc.grid.n_cells} occupied cells")
    print(f"  first fit (compile included)     {first:9.1f} ms; first CV {first_cv:9.1f} ms")
    print(f"  refit after a strength change    {refit:9.1f} ms median "
          f"(min {min(refits):.1f}, max {max(refits):.1f}; Newton iterations "
          f"{statistics.median(iters):.0f}); CPU {statistics.median(refit_cpu):.1f} ms")
    print(f"  refit + 10-fold CV               {both:9.1f} ms median "
          f"(min {min(with_cv):.1f}, max {max(with_cv):.1f}); CPU "
          f"{statistics.median(cv_cpu):.1f} ms")
    print(f"  bin grid alone, refit            {statistics.median(grid_refits):9.1f} ms median "
          f"(CPU of the last {grid_cpu:.1f} ms)")
    print(f"  dense pytree GLM, cold fit       {dense_cold:9.1f} ms "
          f"({dense_cold / refit:.0f}x the lagged refit)")
    print(f"  dense pytree GLM, warm refit     {dense_warm:9.1f} ms "
          f"({dense_warm / refit:.0f}x the lagged refit)")
    same = explorer.fit(enc, include, [1e-2] * 4, "Ridge")
    gap = np.max(np.abs(np.asarray(dense.coef_["history"]) - same.lag_coef[0]))
    print(f"  history coefficients, lagged engine vs dense GLM: max |difference| {gap:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at start")
    for n in args.sizes:
        run(n, args.repeats)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
