"""Held-out scoring latency on the explorer's cell table against the dense pytree GLM.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/heldout_latency.py [--sizes 10000 1000000]

For each T it simulates a session (position, speed, head direction; 20/20/16 bins, Ridge) and
times, after warm-up (compiles excluded and counted), what the page does:

* refit + 10-fold CV after a strength change (warm starts from the previous fit and folds);
* one regularization path (25 log10 strengths from -6 to 0, 10 folds) and all three;
* "Best strengths" (coordinate ascent, two sweeps of the paths);
* forward selection of the three variables;

and, as the reference in the same process, the dense pytree GLM's ``cross_validate`` on the same
one-hot design (all folds in one vmapped call). Medians in ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from glm_core import GLM, cross_validate, explorer
from glm_core.encoding import one_hot
from glm_core.simulation import simulate_session

PATH = np.linspace(-6.0, 0.0, 25)
COMPILES = [0]


def _count(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILES[0] += 1


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        jax.block_until_ready(getattr(out, "theta", 0))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times), out


def run(T, repeats):
    session = simulate_session(T, seed=0)
    enc = explorer.encode(session, 0, [20, 20, 16])
    include = [True] * 3
    explorer.warm_up(enc)
    fit = explorer.fit(enc, include, [1e-3] * 3, "Ridge")
    cv = explorer.cross_validate(enc, include, [1e-3] * 3, "Ridge", fit.theta)
    explorer.path(enc, include, [1e-3] * 3, "Ridge", 0, PATH, cv.theta)
    X = {n: one_hot(enc.indices[:, v], b) for v, (n, b) in enumerate(zip(session.names,
                                                                          enc.n_bins))}
    model = GLM("Ridge", 1e-3)
    cross_validate(model, X, enc.counts)
    COMPILES[0] = 0
    state = {"fit": fit, "cv": cv, "k": 0}

    def refit_and_cv():
        state["k"] += 1
        s = [10.0 ** (-3 + 0.1 * (state["k"] % 5))] * 3
        state["fit"] = explorer.fit(enc, include, s, "Ridge", state["fit"].theta)
        state["cv"] = explorer.cross_validate(enc, include, s, "Ridge", state["cv"].theta)
        return state["cv"]

    rows = [("refit + 10-fold CV (strength change)", *timed(refit_and_cv, repeats * 4))]
    rows.append(("refit alone (strength change)", *timed(
        lambda: explorer.fit(enc, include, [2e-3] * 3, "Ridge", state["fit"].theta), repeats)))
    rows.append(("path of one variable (25 x 10 folds)", *timed(
        lambda: explorer.path(enc, include, [1e-3] * 3, "Ridge", 0, PATH, state["cv"].theta)[0],
        repeats)))
    rows.append(("Best strengths (2 sweeps)", *timed(
        lambda: explorer.best_strengths(enc, include, [-3] * 3, "Ridge", PATH,
                                        init=state["cv"].theta), 1)))
    rows.append(("forward selection", *timed(
        lambda: explorer.forward_selection(enc, [1e-3] * 3, "Ridge", init=state["cv"].theta),
        1)))
    dense_ms, _ = timed(lambda: cross_validate(GLM("Ridge", 2e-3), X, enc.counts), repeats)
    rows.append(("dense GLM cross_validate (reference)", dense_ms, None))
    print(f"\nT = {T:,}: {enc.grid.n_cells} occupied cells; compiles after warm-up: {COMPILES[0]}")
    cv_ms = rows[0][1]
    for name, ms, _ in rows:
        print(f"  {name:40s} {ms:9.1f} ms")
    print(f"  dense CV / explorer refit+CV: {dense_ms / cv_ms:.0f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    jax.monitoring.register_event_duration_secs_listener(_count)
    for T in args.sizes:
        run(T, args.repeats)


if __name__ == "__main__":
    main()
