"""Held-out scoring latency on the explorer's cell table: issue 6's targets, each beside a
reference run in the same process.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/heldout_latency.py [--sizes 10000 1000000]

For each T it simulates a session (position, speed, head direction; 20/20/16 bins, Ridge) and
times, after warm-up (compiles excluded), what the page does, against its target:

* refit + 10-fold CV after a strength change (warm starts), target <= 20 ms; reference: the
  dense pytree GLM's ``cross_validate`` on the same one-hot design (all folds, one vmapped call);
* one regularization path (25 log10 strengths from -6 to 0, 10 folds), target <= 300 ms;
  reference: the same 25 points as 25 separate ``cross_validate`` calls;
* "Best strengths", target <= 2 s: evidence maximisation (Ridge, Smooth), against the previous
  method, coordinate ascent over the paths (two sweeps), with both results' held-out scores;
* forward selection of the three variables;
* compilations after warm-up while changing strengths, bins (<= max), includes, unit and folds
  (target 0).

Medians in ms; the load average is printed, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
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
    cv = explorer.cross_validate_encoding(enc, include, [1e-3] * 3, "Ridge", fit.theta)
    for regularizer in ("Ridge", "Smooth"):
        explorer.path(enc, include, [1e-3] * 3, regularizer, 0, PATH, cv.theta)
        explorer.best_strengths(enc, include, [-3] * 3, regularizer, PATH)
    X = {n: one_hot(enc.indices[:, v], b) for v, (n, b) in enumerate(zip(session.names,
                                                                          enc.n_bins))}
    cross_validate(GLM("Ridge", 1e-3), X, enc.counts)
    COMPILES[0] = 0
    state = {"fit": fit, "cv": cv, "k": 0}

    def refit_and_cv():
        state["k"] += 1
        s = [10.0 ** (-3 + 0.1 * (state["k"] % 5))] * 3
        before = state["fit"].theta
        state["fit"] = explorer.fit(enc, include, s, "Ridge", before)
        state["cv"] = explorer.cross_validate_encoding(enc, include, s, "Ridge", state["cv"].theta,
                                                       (before, state["fit"].theta))
        return state["cv"]

    def separate_points():
        return [explorer.cross_validate_encoding(enc, include, [10.0**x, 1e-3, 1e-3], "Ridge",
                                                 state["cv"].theta) for x in PATH]

    def held_out(logs):
        return explorer.cross_validate_encoding(enc, include, [10.0**x for x in logs],
                                                "Ridge").pooled

    refit_ms, _ = timed(refit_and_cv, repeats * 4)
    dense_ms, _ = timed(lambda: cross_validate(GLM("Ridge", 2e-3), X, enc.counts), repeats)
    path_ms, _ = timed(lambda: explorer.path(enc, include, [1e-3] * 3, "Ridge", 0, PATH,
                                             state["cv"].theta)[0], repeats)
    points_ms, _ = timed(lambda: separate_points()[0], 1)
    best_ms, best = timed(lambda: explorer.best_strengths(enc, include, [-3] * 3, "Ridge", PATH),
                          repeats)
    ascent_ms, ascent = timed(lambda: explorer.ascent_strengths(
        enc, include, [-3] * 3, "Ridge", PATH, init=state["cv"].theta), 1)
    select_ms, _ = timed(lambda: explorer.forward_select_encoding(enc, [1e-3] * 3, "Ridge",
                                                                  init=state["cv"].theta), 1)
    compiles = COMPILES[0]
    changed = explorer.with_folds(explorer.with_bins(explorer.with_unit(enc, session, 0),
                                                     session, 0, 64), 5)
    for regularizer in ("Ridge", "Smooth"):
        explorer.fit(changed, [True, False, True], [1e-2, 1e-4, 1e-1], regularizer)
        explorer.cross_validate_encoding(changed, [True, False, True], [1e-2, 1e-4, 1e-1],
                                         regularizer)
        explorer.path(changed, [False, True, True], [1e-2] * 3, regularizer, 2, PATH)
        explorer.best_strengths(changed, [True, True, False], [-2] * 3, regularizer, PATH)

    print(f"\nT = {T:,}: {enc.grid.n_cells} occupied cells; load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"  {'':44s} {'ms':>9s} {'target':>8s} {'reference (same process)':>40s}")
    rows = [
        ("refit + 10-fold CV (strength change)", refit_ms, "<= 20",
         f"dense GLM cross_validate {dense_ms:.0f} ms ({dense_ms / refit_ms:.0f}x)"),
        ("path of one variable (25 x 10 folds)", path_ms, "<= 300",
         f"25 separate CV calls {points_ms:.0f} ms ({points_ms / path_ms:.1f}x)"),
        ("Best strengths (evidence, Ridge)", best_ms, "<= 2000",
         f"coordinate ascent {ascent_ms:.0f} ms ({ascent_ms / best_ms:.0f}x)"),
        ("forward selection", select_ms, "", ""),
    ]
    for name, ms, target, ref in rows:
        print(f"  {name:44s} {ms:9.1f} {target:>8s} {ref:>40s}")
    print(f"  Best strengths: evidence {np.round(best, 2).tolist()} held-out "
          f"{held_out(best):.4f} bits/spike; coordinate ascent {np.round(ascent, 2).tolist()} "
          f"held-out {held_out(ascent):.4f}")
    print(f"  compilations after warm-up: {compiles} while timing, {COMPILES[0] - compiles} "
          "for new strengths, bins (64), includes, unit and folds (target 0)")


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
