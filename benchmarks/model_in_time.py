"""The "Model in time" card's refresh and the population's coupling matrix, against the refit and
the cross-validation they follow, in one process.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/model_in_time.py [--samples 200000] [--units 12]
        [--repeats 3]

* Model in time: cell A of ``simulate_history_session(samples)`` (10 ms bins), position, head
  direction and a history leaf (8 functions, 250 ms); ``glm_core.time_view.time_view`` of a 20 s
  window with the fold fits (the card's refresh after a refit), without and with the simulation,
  against a warm refit (``explorer.fit``) and the 10-fold cross-validation.
* Coupling matrix: the ``--units`` most active units of the built-in recording (25 ms bins, its
  default model), ``glm_core.coupling_matrix.coupling_matrix``, against one cross-validation of
  a coupled pair (the matrix runs n (n - 1) of them plus fits and n baselines).

Prints medians in ms, the ratios, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from glm_core import LagLeaf, explorer, with_lags
from glm_core.coupling_matrix import coupling_matrix, most_active
from glm_core.linear_track import load_linear_track
from glm_core.simulation import CELL_A, simulate_history_session
from glm_core.time_view import stretch, time_view


def median_ms(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def model_in_time(n, repeats):
    session = simulate_history_session(n, seed=0)
    enc = with_lags(explorer.encode(session, CELL_A, [20, 8, 12], 10), session,
                    [LagLeaf("history", None, 0.25, 8)])
    include, strengths = [True, False, True, True], [1e-3] * 4
    fit = explorer.fit(enc, include, strengths, "Smooth")
    cv = explorer.cross_validate_encoding(enc, include, strengths, "Smooth", fit.theta)
    start, stop = stretch(session, 100.0, 20.0)
    refit, _ = median_ms(lambda: explorer.fit(enc, include, strengths, "Smooth", fit.theta),
                         repeats)
    cross, _ = median_ms(lambda: explorer.cross_validate_encoding(
        enc, include, strengths, "Smooth", cv.theta), repeats)
    plain, _ = median_ms(lambda: time_view(session, enc, fit.theta, cv.theta, start, stop),
                         repeats)
    simulated, _ = median_ms(lambda: time_view(session, enc, fit.theta, cv.theta, start, stop,
                                               simulate_seed=0), repeats)
    print(f"Model in time: T = {n:,} bins of 10 ms, a 20 s window; load average "
          f"{os.getloadavg()[0]:.1f}")
    print("| step | ms | / warm refit |")
    print("| --- | --- | --- |")
    for name, ms in (("warm refit (explorer.fit)", refit),
                     ("10-fold cross-validation", cross),
                     ("time_view (observed, predicted, behaviour)", plain),
                     ("time_view with the simulation", simulated)):
        print(f"| {name} | {ms:.1f} | {ms / refit:.2f} |")


def coupling(n_units, repeats):
    session = load_linear_track(0.025)
    enc = explorer.encode(session, 0, [30, 2, 10], 10)
    include, strengths = [True, True, False], [1e-3] * 3
    units = most_active(session, n_units)
    pair = with_lags(explorer.with_unit(enc, session, units[0]), session,
                     [LagLeaf("coupling", units[1], 0.25, 5)])
    settings = ([*include, True], [*strengths, 1e-3], "Smooth")
    explorer.cross_validate_encoding(pair, *settings)  # compiled before timing
    one, _ = median_ms(lambda: explorer.cross_validate_encoding(pair, *settings), repeats)
    whole, matrix = median_ms(lambda: coupling_matrix(session, enc, units, include, strengths,
                                                      "Smooth"), 1)
    models = n_units * n_units
    print(f"Coupling matrix: {n_units} of {len(session.unit_names)} units of the recording "
          f"(T = {session.n_valid:,} valid bins of 25 ms); load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"one coupled cross-validation {one:.0f} ms; the matrix ({models} models: "
          f"{n_units * (n_units - 1)} fits and cross-validations, {n_units} baselines) "
          f"{whole / 1e3:.1f} s = {whole / one:.0f} cross-validations; largest gain "
          f"{np.nanmax(matrix.held_out_gain):.3f} bits/spike")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--units", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model_in_time(args.samples, args.repeats)
    coupling(args.units, args.repeats)


if __name__ == "__main__":
    main()
