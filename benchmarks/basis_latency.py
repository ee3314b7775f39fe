"""Refit and 10-fold cross-validation latency with B-spline bases against one-hot bins, in the
same process (medians over strength changes, warm starts, after compiling).

    PYTHONPATH=. .venv/bin/python benchmarks/basis_latency.py
"""

import time

import numpy as np

from glm_core import explorer
from glm_core.simulation import simulate_session


def median_ms(fn, repeats=6):
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - start)
    return 1e3 * np.median(times)


def main():
    session = simulate_session(20_000, seed=0)
    bins = explorer.encode(session, 0, [20, 20, 16])
    splines = explorer.with_basis(explorer.with_basis(bins, session, 0, 10), session, 2, 8)
    include = [True] * 3
    print("T = 20,000; bins 20/20/16; splines: position 10 B-splines, head direction 8 cyclic")
    for reg in ("Ridge", "Smooth", "Lasso", "GroupLasso"):
        row = []
        for label, enc in (("bins", bins), ("splines", splines)):
            first = explorer.fit(enc, include, [1e-3] * 3, reg)
            cv = explorer.cross_validate_encoding(enc, include, [1e-3] * 3, reg, first.theta)

            def strengths(k):
                return [10 ** (-3 + 0.1 * (k % 3 + 1))] * 3

            refit = median_ms(lambda k: explorer.fit(enc, include, strengths(k), reg, first.theta))
            folds = median_ms(lambda k: explorer.cross_validate_encoding(
                enc, include, strengths(k), reg, cv.theta))
            row.append(f"{label}: refit {refit:.0f} ms, 10-fold CV {folds:.0f} ms")
        print(f"{reg:10s}", " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
