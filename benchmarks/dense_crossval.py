"""10-fold cross-validation of the dense pytree GLM in one jitted call against 10 separate fits.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/dense_crossval.py [--sizes 10000] [--repeats 7]

For each sample count T it simulates a session, builds the one-hot design (position, speed, head
direction; 20/20/16 bins) and times, after one warm-up call each, along a sweep of strengths:

* ``cross_validate``: all folds fitted in one vmapped, jitted call, plus the float64 scores;
* 10 separate ``GLM.fit`` calls, one per fold on its training samples, as a user would write it
  (each also computes its Laplace covariance, about 1 ms at T = 1e4; no scores).

Medians in ms, the ratio, and the XLA compilations counted during the timed calls (expected 0).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from glm_core import GLM, cross_validate
from glm_core.crossval import fold_index
from glm_core.encoding import bin_index, make_binning, one_hot
from glm_core.simulation import simulate_session

N_BINS = (20, 20, 16)
N_FOLDS = 10
SWEEP = (1e-3, 1e-2, 1e-1, 1e-2)

_COMPILES = [0]


def _on_event(event, duration, *args, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES[0] += 1


def design(n_samples):
    session = simulate_session(n_samples, seed=0)
    X = {v.name: one_hot(bin_index(v.values, make_binning(v.values, n, v.circular)), n)
         for v, n in zip(session.variables, N_BINS)}
    return X, session.counts[:, 0].astype(float)


def separate(X, y, fit):
    fold = fold_index(y.size, N_FOLDS)
    subsets = [({k: v[fold != f] for k, v in X.items()}, y[fold != f]) for f in range(N_FOLDS)]
    return lambda strength: [fit(Xk, yk, strength) for Xk, yk in subsets]


def timed(runs, repeats):
    """Median ms of each run over ``repeats`` rounds, interleaved so that both see the same load,
    and the compilations during the timed calls."""
    for run in runs:
        run(SWEEP[-1])  # warm-up: compiles
    before, times = _COMPILES[0], [[] for _ in runs]
    for r in range(repeats):
        for run, out in zip(runs, times):
            start = time.perf_counter()
            jax.block_until_ready(run(SWEEP[r % len(SWEEP)]))
            out.append(1e3 * (time.perf_counter() - start))
    return [statistics.median(t) for t in times], _COMPILES[0] - before


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    jax.monitoring.register_event_duration_secs_listener(_on_event)
    print(f"backend: {jax.default_backend()}, {N_FOLDS} folds, Ridge, bins {N_BINS}")
    print("| T | cross_validate (ms) | 10 x GLM.fit (ms) | ratio | compiles while timed |")
    print("| --- | --- | --- | --- | --- |")
    for n in args.sizes:
        X, y = design(n)
        (cv, fits), compiles = timed([
            lambda s: cross_validate(GLM("Ridge", s), X, y, N_FOLDS).pooled,
            separate(X, y, lambda Xk, yk, s: GLM("Ridge", s).fit(Xk, yk).intercept_),
        ], args.repeats)
        print(f"| {n:.0e} | {cv:.0f} | {fits:.0f} | {fits / cv:.2f} | {compiles} |")


if __name__ == "__main__":
    main()
