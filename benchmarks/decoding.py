"""Bayesian decoding of a whole recording's worth of windows: ``glm_core.bayes_decode`` against a
plain float64 reference written window by window (the formula, one window at a time), in the
same process. Issue 20's size: about 10,000 windows, 63 units, 400 states (a 20 x 20 map).

    PYTHONPATH=. .venv/bin/python benchmarks/decoding.py [--windows 10000 --units 63 --states 400]

Prints the medians in ms and the reference / ours ratio, for the flat prior and with the
continuity prior (``sigma`` = 1 bin per window) on the 20 x 20 grid. With ``--session``, also a
whole session decoded cross-validated after its population fit (``glm_core.decode_cv``): the
open-field simulation with 63 units, T = 100,000 bins of 20 ms (10 folds, every variable in
bins, Smooth), x and y (20 x 20 = 400 states) in 200 ms windows (about 10,000): the fold maps
(``fold_maps``, once per population fit and target), then ``decode_windows`` (windows, posterior,
error against units; what a new window or prior costs), flat and continuity, against one plain
``bayes_decode`` of as many windows, in the same process; wall and process CPU time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from glm_core import bayes_decode, explorer
from glm_core.decode_cv import decode_session, decode_windows, fold_maps
from glm_core.open_field import simulate_open_field
from glm_core.population import fit_population, population_grid


def reference(rates_hz, counts, window_s):
    """The posterior of each window by the formula, one window at a time (float64)."""
    lam = rates_hz * window_s
    out = np.empty((counts.shape[0], rates_hz.shape[1]))
    for t, n in enumerate(counts):
        log_post = n @ np.log(lam) - lam.sum(axis=0)
        log_post -= log_post.max()
        post = np.exp(log_post)
        out[t] = post / post.sum()
    return out


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=63)
    parser.add_argument("--side", type=int, default=20, help="states = side x side")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--session", action="store_true",
                        help="also decode a simulated session after its population fit")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.side, args.side)
    rates = rng.gamma(2.0, 3.0, size=(args.units, shape[0] * shape[1])) + 0.1
    states = rng.integers(0, shape[0] * shape[1], size=args.windows)
    window = 0.2
    counts = rng.poisson(rates[:, states].T * window)
    ours = bayes_decode(rates, counts, window)
    assert np.allclose(ours, reference(rates, counts, window), atol=1e-9)
    flat = median_ms(lambda: bayes_decode(rates, counts, window), args.repeats)
    ref = median_ms(lambda: reference(rates, counts, window), max(1, args.repeats // 2))
    memory = median_ms(lambda: bayes_decode(rates, counts, window, sigma=1.0, grid_shape=shape),
                       args.repeats)
    print(f"{args.windows} windows x {args.units} units x {shape[0] * shape[1]} states")
    print(f"flat prior       ours {flat:8.1f} ms   reference {ref:8.1f} ms   "
          f"ratio {ref / flat:5.1f}x")
    print(f"continuity prior ours {memory:8.1f} ms   (forward filter, sigma = 1 bin per window)")
    if args.session:
        session_decoding(args.repeats)


def median_times(fn, repeats):
    """Median wall and process CPU time of ``fn`` in ms (the CPU time shows the load)."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(1e3 * (time.perf_counter() - start))
        cpu.append(1e3 * (time.process_time() - start_cpu))
    return float(np.median(wall)), float(np.median(cpu))


def session_decoding(repeats):
    """A whole session decoded, cross-validated, after the population fit: the fold maps (once
    per fit and target), then each window or prior decodes from them alone."""
    field = simulate_open_field(100_000, seed=0, n_units=63)
    enc = explorer.encode(field, 0, [20, 20, 16, 20], 10)
    pop = population_grid(enc.grid, field.counts[field.valid])
    start = time.perf_counter()
    fit = fit_population(pop, enc.n_bins, [True] * 4, [1e-3] * 4, "Smooth", enc.circular)
    fitted = time.perf_counter() - start
    maps = fold_maps(field, enc, fit, pop, ("x", "y"))
    decoding = decode_windows(field, enc, maps, 0.2)
    n = decoding.error.size
    rng = np.random.default_rng(1)
    rates = rng.gamma(2.0, 3.0, size=(63, 400)) + 0.1
    counts = rng.poisson(rates[:, rng.integers(0, 400, n)].T * 0.2)
    plain = median_ms(lambda: bayes_decode(rates, counts, 0.2), repeats)
    made = median_times(lambda: fold_maps(field, enc, fit, pop, ("x", "y")), repeats)
    flat = median_times(lambda: decode_windows(field, enc, maps, 0.2), repeats)
    memory = median_times(lambda: decode_windows(field, enc, maps, 0.2, sigma=2.0), repeats)
    whole = median_times(lambda: decode_session(field, enc, fit, pop, ("x", "y"), 0.2), repeats)
    print(f"session: {n} windows x 63 units x 400 states (population fit with CV, first call "
          f"with its compile: {fitted:.1f} s); median wall / process CPU ms")
    print(f"fold maps (once per fit and target) {made[0]:8.1f} / {made[1]:8.1f}")
    print(f"decode, flat                        {flat[0]:8.1f} / {flat[1]:8.1f}   one "
          f"bayes_decode {plain:.1f} ms   ratio {flat[0] / plain:4.2f}x   median error "
          f"{decoding.median_error:.1f} cm")
    print(f"decode, continuity (sigma 2)        {memory[0]:8.1f} / {memory[1]:8.1f}")
    print(f"decode_session (maps + flat)        {whole[0]:8.1f} / {whole[1]:8.1f}")


if __name__ == "__main__":
    main()
