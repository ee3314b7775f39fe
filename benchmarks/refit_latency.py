"""Refit latency of the explorer's bin-grid solver against a dense one-hot GLM and NeMoS.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python benchmarks/refit_latency.py [--sizes 10000 1000000] [--repeats N]

For each sample count T it simulates a session (position, speed, head direction; 20/20/16 bins,
Ridge) and times, in one process, what the app does after each user action:

* first call: ``explorer.encode`` + a cold ``explorer.fit`` after ``jax.clear_caches()`` (so the
  compile is included; the dense GLM and NeMoS get the same treatment, with the one-hot design
  built from the explorer's bin indices inside their timing);
* strength change: a warm-started fit (init = the previous fit) along a zigzag sweep of strengths;
* bin-count change: re-bin position to a bin count not seen before, then a cold fit (as the app
  does); for the dense models this changes the design's shape;
* unit change: swap to another unit's spike counts, then a warm fit (as the app does).

Every timing ends in host values (``float``/``np.asarray``) or ``jax.block_until_ready``. The time
spent tracing and compiling inside each timed call is read from ``jax.monitoring`` events and
reported next to it. The script ends with a check that the three solvers and scikit-learn's
``PoissonRegressor`` solve the same problem, and a breakdown of where the explorer's time goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from glm_core import explorer
from glm_core.cell_table import bin_grid
from glm_core.encoding import bin_index, make_binning, one_hot
from glm_core.glm import GLM
from glm_core.session import make_session
from glm_core.simulation import simulate_session

N_BINS = (20, 20, 16)
REF_STRENGTH = 1e-2
# One cycle of the strength sweep, starting from a fit at REF_STRENGTH: up, down, back.
SWEEP = (10**-1.5, 1e-1, 10**-1.5, 1e-2, 10**-2.5, 1e-3, 10**-2.5, 1e-2)
LARGE_T = 100_000  # from here on, the dense GLM and NeMoS get fewer repeats

# --- compile accounting ---------------------------------------------------------------------

_COMPILE = {"secs": 0.0, "n": 0}


def _on_event(event, duration, *args, **kwargs):
    if event.startswith("/jax/core/compile/"):
        _COMPILE["secs"] += duration
        if event.endswith("backend_compile_duration"):
            _COMPILE["n"] += 1


jax.monitoring.register_event_duration_secs_listener(_on_event)


class Sample:
    """One timed call: wall seconds, seconds of tracing/lowering/compiling inside it, and the
    number of XLA compilations."""

    def __init__(self, wall, compile_s, n_compiles, note=""):
        self.wall, self.compile_s, self.n_compiles, self.note = wall, compile_s, n_compiles, note


def timed(fn, sync, note=lambda out: ""):
    """Run ``fn`` and wait for the arrays ``sync(out)`` before stopping the clock."""
    c0, n0 = _COMPILE["secs"], _COMPILE["n"]
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(sync(out))
    wall = time.perf_counter() - start
    return out, Sample(wall, _COMPILE["secs"] - c0, _COMPILE["n"] - n0, note(out))


# --- the three fitters -----------------------------------------------------------------------


def ours_fit(enc, strength, init=None):
    res = explorer.fit(enc, [True] * len(enc.n_bins), [strength] * len(enc.n_bins), "Ridge", init)
    return res


def ours_note(res):
    return f"{res.n_iter} it{'' if res.converged else ' NOT converged'}"


def design(indices, n_bins, names):
    return {name: one_hot(indices[:, v], n) for v, (name, n) in enumerate(zip(names, n_bins))}


def dense_fit(X, y, strength, init=None):
    model = GLM(regularizer="Ridge", regularizer_strength=strength).fit(X, y, init)
    return model


def dense_note(model):
    f = model.fit_
    return f"{f.n_iter} it{'' if f.converged else ' NOT converged'}"


def nemos_fit(X, y, strength, init=None):
    import nemos as nmo

    Xp = nmo.pytrees.FeaturePytree(**{_key(k): v for k, v in X.items()})
    if init is not None:
        init = ({_key(k): v for k, v in init[0].items()}, init[1])
    model = nmo.glm.GLM(regularizer="Ridge", regularizer_strength=strength)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-convergence is reported from optim_info_ instead
        model.fit(Xp, y, init_params=init)
    model.coef_ = {k: model.coef_[_key(k)] for k in X}
    return model


def nemos_note(model):
    info = model.optim_info_
    return f"{int(info.num_steps)} st{'' if bool(info.converged) else ' NOT converged'}"


def _key(name):
    return name.replace(" ", "_")


def model_params(model):
    return (model.coef_, model.intercept_)


def sync_ours(res):
    return res.theta


def sync_model(model):
    return (model.coef_, model.intercept_)


# --- scenarios -------------------------------------------------------------------------------


def two_unit_session(session, seed):
    """The simulated session plus a second unit with the same tuning and fresh Poisson noise."""
    rng = np.random.default_rng(seed + 1)
    log_rate = session.truth_intercept + sum(
        f(session.variable(name).values) for name, f in session.truth.items()
    )
    second = rng.poisson(np.exp(log_rate))
    return make_session(
        bin_width=session.bin_width,
        variables=session.variables,
        counts=np.column_stack([session.counts[:, 0], second]),
        unit_names=("unit 0", "unit 1"),
        truth=session.truth,
        truth_intercept=session.truth_intercept,
        source=session.source,
    )


def run_size(T, args):
    large = T >= LARGE_T
    dense_reps = 1 if large else args.repeats
    nemos_n = 1 if large else args.nemos_repeats
    session = two_unit_session(simulate_session(T, args.seed), args.seed)
    names = session.names
    valid = session.valid
    counts = {u: session.unit_counts(u)[valid] for u in (0, 1)}
    rows = {}
    fits = {}

    jax.clear_caches()

    # first call ------------------------------------------------------------------------------
    key = "first call (encode+compile+fit)"
    rows[key] = {}

    def ours_first():
        e = explorer.encode(session, 0, N_BINS)
        return e, ours_fit(e, REF_STRENGTH)

    (enc, ref), s = timed(ours_first, lambda o: o[1].theta, lambda o: ours_note(o[1]))
    rows[key]["ours"], fits["ours"] = [s], ref

    def dense_first():
        Xd = design(enc.indices, enc.n_bins, names)
        return Xd, dense_fit(Xd, counts[0], REF_STRENGTH)

    (X, dref), s = timed(dense_first, lambda o: sync_model(o[1]), lambda o: dense_note(o[1]))
    rows[key]["dense"], fits["dense"] = [s], dref

    if not args.no_nemos:
        def nemos_first():
            Xd = design(enc.indices, enc.n_bins, names)
            return Xd, nemos_fit(Xd, counts[0], REF_STRENGTH)

        (_, nref), s = timed(nemos_first, lambda o: sync_model(o[1]), lambda o: nemos_note(o[1]))
        rows[key]["nemos"], fits["nemos"] = [s], nref

    # strength change (warm) ------------------------------------------------------------------
    key = "strength change (warm start)"
    rows[key] = {"ours": [], "dense": [], "nemos": []}
    prev = ref
    for _ in range(args.repeats):
        for strength in SWEEP:
            prev, s = timed(lambda: ours_fit(enc, strength, prev.theta), sync_ours, ours_note)
            rows[key]["ours"].append(s)
    prev = dref
    for strength in SWEEP * dense_reps:
        prev, s = timed(lambda: dense_fit(X, counts[0], strength, model_params(prev)),
                        sync_model, dense_note)
        rows[key]["dense"].append(s)
    if not args.no_nemos:
        prev = fits["nemos"]
        positions = np.unique(np.linspace(0, len(SWEEP) - 1, nemos_n).round().astype(int))
        for i in positions:
            strength = SWEEP[i]
            prev, s = timed(lambda: nemos_fit(X, counts[0], strength, model_params(prev)),
                            sync_model, lambda m: f"s={strength:.2g}: {nemos_note(m)}")
            rows[key]["nemos"].append(s)

    # bin-count change (cold, as the app does) ------------------------------------------------
    key = "bin-count change (cold)"
    rows[key] = {"ours": [], "dense": [], "nemos": []}
    # bin counts never used before in this process, so no jit cache can be hit by accident
    new_counts = [N_BINS[0] + 1 + i for i in range(max(args.repeats, dense_reps, nemos_n))]
    var = session.variables[0]

    def rebinned_design(n):
        binning = make_binning(var.values, n, var.circular, valid)
        Xn = dict(X)
        Xn[names[0]] = one_hot(bin_index(var.values[valid], binning), n)
        return Xn

    for n in new_counts[: args.repeats]:
        def ours_rebin():
            e = explorer.with_bins(enc, session, 0, n)
            return e, ours_fit(e, REF_STRENGTH)

        _, s = timed(ours_rebin, lambda o: o[1].theta, lambda o: ours_note(o[1]))
        rows[key]["ours"].append(s)
    for n in new_counts[:dense_reps]:
        _, s = timed(lambda: dense_fit(rebinned_design(n), counts[0], REF_STRENGTH),
                     sync_model, dense_note)
        rows[key]["dense"].append(s)
    if not args.no_nemos:
        for n in new_counts[:nemos_n]:
            _, s = timed(lambda: nemos_fit(rebinned_design(n), counts[0], REF_STRENGTH),
                         sync_model, nemos_note)
            rows[key]["nemos"].append(s)

    # unit change (warm start, as the app does) -----------------------------------------------
    key = "unit change (warm start)"
    rows[key] = {"ours": [], "dense": [], "nemos": []}
    cur, prev = enc, ref
    for i in range(args.repeats):
        unit = 1 - i % 2

        def ours_unit():
            e = explorer.with_unit(cur, session, unit)
            return e, ours_fit(e, REF_STRENGTH, prev.theta)

        (cur, prev), s = timed(ours_unit, lambda o: o[1].theta, lambda o: ours_note(o[1]))
        rows[key]["ours"].append(s)
    prev = dref
    for i in range(dense_reps):
        y = counts[1 - i % 2]
        prev, s = timed(lambda: dense_fit(X, y, REF_STRENGTH, model_params(prev)),
                        sync_model, dense_note)
        rows[key]["dense"].append(s)
    if not args.no_nemos:
        prev = fits["nemos"]
        for i in range(nemos_n):
            y = counts[1 - i % 2]
            prev, s = timed(lambda: nemos_fit(X, y, REF_STRENGTH, model_params(prev)),
                            sync_model, nemos_note)
            rows[key]["nemos"].append(s)

    return session, enc, X, counts[0], fits, rows


# --- agreement with scikit-learn -------------------------------------------------------------


def flat_params(coef, intercept, names):
    return np.concatenate([*(np.ravel(np.asarray(coef[k], float)) for k in names),
                           np.ravel(np.asarray(intercept, float))])


def objective(theta, X, y, strength):
    """Mean Poisson NLL (without log y!) + 0.5 * s * ||w||^2, in float64."""
    Xf = np.hstack([np.asarray(X[k], float) for k in X] + [np.ones((y.shape[0], 1))])
    eta = Xf @ theta
    return float(np.mean(np.exp(eta) - y * eta) + 0.5 * strength * np.sum(theta[:-1] ** 2))


def agreement(enc, X, y, fits, names):
    from sklearn.linear_model import PoissonRegressor

    Xf = np.hstack([np.asarray(X[k], float) for k in names])
    start = time.perf_counter()
    skl = PoissonRegressor(alpha=REF_STRENGTH, solver="newton-cholesky", tol=1e-10,
                           max_iter=1000).fit(Xf, y)
    skl_s = time.perf_counter() - start
    sizes = [X[k].shape[1] for k in names]
    skl_coef = dict(zip(names, np.split(skl.coef_, np.cumsum(sizes)[:-1])))
    thetas = {"sklearn": flat_params(skl_coef, skl.intercept_, names)}
    ref = fits["ours"]
    thetas["ours"] = flat_params(ref.coef(names, enc.n_bins), ref.intercept, names)
    thetas["dense"] = flat_params(fits["dense"].coef_, fits["dense"].intercept_, names)
    if "nemos" in fits:
        thetas["nemos"] = flat_params(fits["nemos"].coef_, fits["nemos"].intercept_, names)
    obj = {k: objective(t, X, y, REF_STRENGTH) for k, t in thetas.items()}
    return thetas, obj, skl_s


# --- where the explorer's time goes ----------------------------------------------------------


def profile(session, enc, repeats):
    """Median seconds of each step of encode / with_bins / fit at this T."""
    valid = session.valid
    var = session.variables
    steps = {}

    def add(name, fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = fn()
            jax.block_until_ready(out)
            times.append(time.perf_counter() - start)
        steps[name] = statistics.median(times)
        return out

    binnings = add("make_binning x3", lambda: [
        make_binning(v.values, n, v.circular, valid) for v, n in zip(var, enc.n_bins)])
    indices = add("bin_index x3 (+ values[valid], stack)", lambda: np.stack(
        [bin_index(v.values[valid], b) for v, b in zip(var, binnings)], 1))
    counts = add("unit_counts[valid]", lambda: session.unit_counts(0)[valid])
    m = enc.max_bins
    shape = (m,) * indices.shape[1]
    add("bin_grid total", lambda: bin_grid(indices, counts, m))
    # bin_grid's own steps, replicated with the same numpy calls
    flat = add("  bin_grid: ravel_multi_index", lambda: np.ravel_multi_index(tuple(indices.T),
                                                                           shape))
    add("  bin_grid: bincount occupancy", lambda: np.bincount(flat, minlength=m**len(shape)))
    add("  bin_grid: bincount spikes (weights)",
        lambda: np.bincount(flat, weights=np.asarray(counts, float), minlength=m**len(shape)))
    add("encode total", lambda: explorer.encode(session, 0, enc.n_bins))
    add("with_bins total (1 variable)", lambda: explorer.with_bins(enc, session, 0, 21))
    add("with_unit total", lambda: explorer.with_unit(enc, session, 1))
    cold = add("fit cold (grid Newton solve)", lambda: ours_fit(enc, REF_STRENGTH))
    add("fit warm, s x 10^0.5 (grid Newton solve)",
        lambda: ours_fit(enc, REF_STRENGTH * 10**0.5, cold.theta))
    steps["  cold fit Newton iterations"] = cold.n_iter
    add("  fit: host->device copy of the two grids", lambda: (
        jnp.asarray(enc.grid.occupancy), jnp.asarray(enc.grid.spikes)))
    return steps


# --- report ----------------------------------------------------------------------------------


def fmt_ms(samples):
    if not samples:
        return "-"
    return f"{1e3 * statistics.median(s.wall for s in samples):.1f}"


def fmt_compile(samples):
    if not samples:
        return "-"
    c = statistics.median(s.compile_s for s in samples) * 1e3
    n = statistics.median(s.n_compiles for s in samples)
    return f"{c:.0f}/{n:g}"


def ratio(a, b):
    if not a or not b:
        return "-"
    return f"{statistics.median(s.wall for s in a) / statistics.median(s.wall for s in b):.1f}x"


def report(T, rows, thetas, obj, skl_s, steps, args):
    print(f"\n=== T = {T:,} samples (3 variables, bins {N_BINS}, Ridge) ===")
    header = (f"{'scenario':34s} {'ours ms':>9s} {'dense ms':>9s} {'NeMoS ms':>10s} "
              f"{'NeMoS/ours':>10s} {'dense/ours':>10s}  "
              f"{'compile ms/#  ours | dense | NeMoS':>34s}"
              f"  {'n ours/dense/NeMoS':>18s}")
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        o, d, n = r.get("ours", []), r.get("dense", []), r.get("nemos", [])
        comp = f"{fmt_compile(o)} | {fmt_compile(d)} | {fmt_compile(n)}"
        counts = f"{len(o)}/{len(d)}/{len(n)}"
        print(f"{name:34s} {fmt_ms(o):>9s} {fmt_ms(d):>9s} {fmt_ms(n):>10s} {ratio(n, o):>10s} "
              f"{ratio(d, o):>10s}  {comp:>34s}  {counts:>18s}")
    print("  (ms = median wall time; compile ms/# = median tracing+compile time inside the call / "
          "number of XLA compiles)")
    print("  solver notes:")
    for name, r in rows.items():
        for who in ("ours", "dense", "nemos"):
            notes = sorted({s.note for s in r.get(who, []) if s.note})
            if notes:
                print(f"    {name:32s} {who:5s}: {'; '.join(notes)}")

    print(f"\n  agreement at strength {REF_STRENGTH:g} (cold fits; scikit-learn PoissonRegressor"
          f" newton-cholesky tol=1e-10 took {1e3 * skl_s:.0f} ms):")
    ref = thetas["sklearn"]
    for who, theta in thetas.items():
        if who == "sklearn":
            continue
        print(f"    {who:6s} vs sklearn: max|dcoef| = {np.max(np.abs(theta - ref)):.2e}   "
              f"objective - sklearn's = {obj[who] - obj['sklearn']:+.2e}")
    if "nemos" in thetas:
        print(f"    ours   vs NeMoS  : max|dcoef| = "
              f"{np.max(np.abs(thetas['ours'] - thetas['nemos'])):.2e}")
    print(f"    sklearn objective = {obj['sklearn']:.8f}")

    print("\n  explorer breakdown (median ms):")
    for name, v in steps.items():
        print(f"    {name:44s} {v if isinstance(v, int) else f'{1e3 * v:9.2f}'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5,
                        help="repeats for the explorer (strength sweeps of 8 fits each) and, "
                             f"below T={LARGE_T:,}, the dense GLM (default 5)")
    parser.add_argument("--nemos-repeats", type=int, default=3,
                        help=f"NeMoS fits per scenario below T={LARGE_T:,} (1 above; default 3)")
    parser.add_argument("--no-nemos", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import nemos
    import sklearn

    print(f"python {sys.version.split()[0]}, jax {jax.__version__} ({jax.default_backend()}, "
          f"{jax.device_count()} device), numpy {np.__version__}, nemos {nemos.__version__}, "
          f"scikit-learn {sklearn.__version__}, {os.cpu_count()} CPUs; "
          f"x64={'on' if jax.config.jax_enable_x64 else 'off'}")
    print(f"strength sweep (warm): start {REF_STRENGTH:g}, then "
          + ", ".join(f"{s:.3g}" for s in SWEEP))
    total = time.perf_counter()
    for T in args.sizes:
        t0 = time.perf_counter()
        session, enc, X, y, fits, rows = run_size(T, args)
        thetas, obj, skl_s = agreement(enc, X, y, fits, session.names)
        steps = profile(session, enc, max(5, args.repeats))
        report(T, rows, thetas, obj, skl_s, steps, args)
        print(f"  (T={T:,} took {time.perf_counter() - t0:.0f} s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\ntotal {time.perf_counter() - total:.0f} s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
