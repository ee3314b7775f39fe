"""Fitting every unit at once (``glm_core.population``) against a loop of per-unit fits.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/population.py [--sim-units 200] [--sim-samples 1000000]
        [--only fits|significance|maps]

Two data sets: the built-in recording (31 units; linear position 20 bins + running direction,
speed off, Ridge) and simulated place cells (``simulate_place_cells`` on ``simulate_session``;
position, speed, head direction 20/20/16 bins). For each it times, after warm-up (compiles
excluded and counted), a strength change: the population's full fits alone, and full fits plus
10-fold held-out scores; the reference in the same process is a loop of ``fit_bin_grid`` (and
``cross_validate_grid``) over the units, each warm-started from its own previous fit, as the page
does for one unit. Medians in ms.

Then (issue 20) the shuffle significance of 63 simulated place cells (``simulate_session``, T =
40,000 bins of 25 ms; position 20 bins + head direction 16, speed out, Smooth) with 200 shifts,
against the direct way in the same process (``explorer.cross_validate_encoding`` of each shifted
train, timed on a few and scaled to all), wall and process CPU time (the machine is shared);
and the full fits of 63 units with a 20 x 20 map of the open field (plus head direction,
Smooth) after a strength change, against a loop of ``explorer.fit``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from glm_core import explorer
from glm_core.binned import cross_validate_grid, fit_bin_grid
from glm_core.linear_track import load_linear_track
from glm_core.open_field import simulate_open_field
from glm_core.population import fit_population, leaf_design, population_grid
from glm_core.session import make_session
from glm_core.shuffle import shuffle_significance
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


def significance(n_units=63, n_shuffles=200, n_direct=6):
    session = simulate_session(40_000, seed=0, bin_width=0.025)
    counts = simulate_place_cells(session, n_units, seed=0)
    session = make_session(session.bin_width, session.variables, counts)
    enc = explorer.encode(session, 0, [20, 20, 16])
    n_bins, circular, bases = leaf_design(enc)
    include, strengths = [True, False, True], [1e-2] * 3
    args = (enc.grid, session.counts, session.valid, session.bin_width, n_bins, include,
            strengths, "Smooth", circular, bases)
    shuffle_significance(*args, n_shuffles=8)  # compiles
    compiles = COMPILES[0]
    steps = []
    start, cpu = time.perf_counter(), time.process_time()
    sig = shuffle_significance(*args, n_shuffles=n_shuffles,
                               on_step=lambda done, total: steps.append(done))
    ours, ours_cpu = time.perf_counter() - start, time.process_time() - cpu
    compiled = COMPILES[0] - compiles
    explorer.cross_validate_encoding(enc, include, strengths, "Smooth")  # compiles
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(n_direct):
        rolled = make_session(session.bin_width, session.variables,
                              np.roll(counts, int(sig.shifts_s[k] / session.bin_width), 0))
        one = explorer.encode(rolled, k, [20, 20, 16])
        explorer.cross_validate_encoding(one, include, strengths, "Smooth")
    scaled = n_units * (n_shuffles + 1) / n_direct
    direct = (time.perf_counter() - start) * scaled
    direct_cpu = (time.process_time() - cpu) * scaled
    print(f"\nshuffle significance: {n_units} units x {n_shuffles} shifts, T = "
          f"{session.n_valid:,}, {len(steps)} progress steps, compiles during the run: "
          f"{compiled}")
    print("| | population batches (s) | direct single-unit cross-validations, scaled (s) | "
          "ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| wall | {ours:.2f} | {direct:.0f} | {direct / ours:.0f}x |")
    print(f"| process CPU | {ours_cpu:.2f} | {direct_cpu:.0f} | {direct_cpu / ours_cpu:.0f}x |")
    print(f"significant at p < 0.01: {np.sum(sig.p_value < 0.01)} of {n_units}")


def maps(n_units=63, repeats=5):
    session = simulate_open_field(50_000, seed=0)
    rng = np.random.default_rng(0)
    x, y = (session.variable(n).values for n in ("x", "y"))
    centres = rng.uniform(10, 90, (n_units, 2))
    counts = np.stack([rng.poisson(0.02 * np.exp(2.5 * np.exp(
        -((x - cx) ** 2 + (y - cy) ** 2) / (2 * 10.0**2)))) for cx, cy in centres], 1)
    session = make_session(session.bin_width, session.variables, counts)
    enc = explorer.encode(session, 0, [20, 20, 16, 20], pairs=[(0, 1)])
    n_bins, circular, bases = leaf_design(enc)
    include = [True, True, False]
    pop = population_grid(enc.grid, counts[session.valid])
    strengths = lambda i: [10.0 ** (-3 + 0.1 * (i % 5))] * 3  # noqa: E731
    state = {"pop": fit_population(pop, n_bins, include, strengths(0), "Smooth", circular,
                                   cross_validate=False, bases=bases)}
    compiles = COMPILES[0]

    def go(i):
        state["pop"] = fit_population(pop, n_bins, include, strengths(i + 1), "Smooth",
                                      circular, cross_validate=False, init=state["pop"],
                                      bases=bases)

    cpu = time.process_time()
    ours = median_ms(go, repeats)
    ours_cpu = 1e3 * (time.process_time() - cpu) / repeats
    compiled = COMPILES[0] - compiles
    units = [explorer.with_unit(enc, session, u) for u in range(4)]
    fits = [explorer.fit(e, include, strengths(0), "Smooth") for e in units]

    def loop(i):
        for k, e in enumerate(units):
            fits[k] = explorer.fit(e, include, strengths(i + 1), "Smooth", fits[k].theta)

    ref = median_ms(loop, 3) / len(units) * n_units
    print(f"\n2-D maps: {n_units} units, 20 x 20 map + head direction, Smooth, "
          f"{enc.grid.n_cells} cells; compiles during the timed runs: {compiled}")
    print("| full fits after a strength change | population (ms) | loop of explorer.fit, "
          "scaled (ms) | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| 63 maps | {ours:.0f} | {ref:.0f} | {ref / ours:.1f}x |")
    print(f"population: mean process CPU time per strength change {ours_cpu:.0f} ms")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sim-units", type=int, default=200)
    parser.add_argument("--sim-samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--only", choices=["fits", "significance", "maps"])
    args = parser.parse_args()
    jax.monitoring.register_event_duration_secs_listener(_count)
    if args.only == "significance":
        return significance()
    if args.only == "maps":
        return maps()

    session = load_linear_track()
    enc = explorer.encode(session, 0, [20, 2, 20])
    run("built-in recording", enc, session.counts[session.valid], [True, True, False],
        args.repeats)

    session = simulate_session(args.sim_samples, seed=0)
    counts = simulate_place_cells(session, args.sim_units, seed=0)
    enc = explorer.encode(session, 0, [20, 20, 16])
    run("simulated place cells", enc, counts[session.valid], [True] * 3,
        max(3, args.repeats // 3))
    if args.only is None:
        significance()
        maps()


if __name__ == "__main__":
    main()
