"""Fitting every unit at once (``glm_core.population``) against a loop of per-unit fits.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/population.py [--sim-units 200] [--sim-samples 1000000]

Two data sets: the built-in recording (31 units; linear position 20 bins + running direction,
speed off, Ridge) and simulated place cells (``simulate_place_cells`` on ``simulate_session``;
position, speed, head direction 20/20/16 bins). For each it times, after warm-up (compiles
excluded and counted), a strength change: the population's full fits alone, and full fits plus
10-fold held-out scores; the reference in the same process is a loop of ``fit_bin_grid`` (and
``cross_validate_grid``) over the units, each warm-started from its own previous fit, as the page
does for one unit. Medians in ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from glm_core import explorer
from glm_core.binned import cross_validate_grid, fit_bin_grid
from glm_core.linear_track import load_linear_track
from glm_core.population import fit_population, population_grid
from glm_core.simulation import simulate_place_cells, simulate_session

COMPILES = [0]


def _count(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILES[0] += 1


def median_ms(fn, repeats):
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run(name, enc, counts, include, repeats):
    strengths = lambda i: [10.0 ** (-3 + 0.1 * (i % 5))] * len(include)  # noqa: E731
    start = time.perf_counter()
    pop = population_grid(enc.grid, counts)
    grid_ms = 1e3 * (time.perf_counter() - start)
    state = {"pop": fit_population(pop, enc.n_bins, include, strengths(0), "Ridge",
                                   enc.circular)}
    grids = [enc.grid.with_counts(counts[:, u]) for u in range(counts.shape[1])]
    grids = [g for g in grids if g.n_spikes > 0]
    loop = {"fit": [fit_bin_grid(g, enc.n_bins, include, strengths(0), "Ridge",
                                 circular=enc.circular) for g in grids]}
    loop["cv"] = [cross_validate_grid(g, enc.n_bins, include, strengths(0), "Ridge", f.theta,
                                      enc.circular) for g, f in zip(grids, loop["fit"])]
    compiles = COMPILES[0]

    def population(cv):
        def go(i):
            state["pop"] = fit_population(pop, enc.n_bins, include, strengths(i + 1), "Ridge",
                                          enc.circular, cross_validate=cv, init=state["pop"])
        return go

    def per_unit(cv):
        def go(i):
            loop["fit"] = [fit_bin_grid(g, enc.n_bins, include, strengths(i + 1), "Ridge",
                                        f.theta, enc.circular)
                           for g, f in zip(grids, loop["fit"])]
            if cv:
                loop["cv"] = [cross_validate_grid(g, enc.n_bins, include, strengths(i + 1),
                                                  "Ridge", c.theta, enc.circular)
                              for g, c in zip(grids, loop["cv"])]
        return go

    rows = []
    for label, cv in (("full fits", False), ("full fits + 10-fold held-out", True)):
        ours = median_ms(population(cv), repeats)
        ref = median_ms(per_unit(cv), max(1, repeats // 3))
        rows.append((label, ours, ref))
    print(f"\n{name}: {counts.shape[1]} units ({len(grids)} with spikes), T = "
          f"{counts.shape[0]:,} valid samples, {enc.grid.n_cells} cells; totalling the cells "
          f"once: {grid_ms:.0f} ms; compiles during the timed runs: {COMPILES[0] - compiles}")
    print("| after a strength change | population (ms) | loop of per-unit fits (ms) | ratio |")
    print("| --- | --- | --- | --- |")
    for label, ours, ref in rows:
        print(f"| {label} | {ours:.1f} | {ref:.1f} | {ref / ours:.1f}x |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sim-units", type=int, default=200)
    parser.add_argument("--sim-samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    jax.monitoring.register_event_duration_secs_listener(_count)

    session = load_linear_track()
    enc = explorer.encode(session, 0, [20, 2, 20])
    run("built-in recording", enc, session.counts[session.valid], [True, True, False],
        args.repeats)

    session = simulate_session(args.sim_samples, seed=0)
    counts = simulate_place_cells(session, args.sim_units, seed=0)
    enc = explorer.encode(session, 0, [20, 20, 16])
    run("simulated place cells", enc, counts[session.valid], [True] * 3,
        max(3, args.repeats // 3))


if __name__ == "__main__":
    main()
