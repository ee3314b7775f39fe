"""Mutation check of the fast test suite: plant each known bug in a temporary copy of the repo, run
the non-browser tests on it, and report which test kills it. Every mutant must be killed.

    PYTHONPATH=. .venv/bin/python tools/mutation_check.py            # all mutants
    PYTHONPATH=. .venv/bin/python tools/mutation_check.py --list     # what each one plants
    PYTHONPATH=. .venv/bin/python tools/mutation_check.py --sites    # are the sites still there
    PYTHONPATH=. .venv/bin/python tools/mutation_check.py ridge-doubled no-warm-start

Sites are found by exact source snippets; a snippet that is missing (or not where it is expected
the given number of times) stops the run with "site not found", so update the snippet when the
code moves. Exit status 0 only if the baseline passes and every mutant is killed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache",
                                "*.egg-info", ".ruff_cache")
# Quick targeted files first and the long property-based files last, so a mutant dies early.
FIRST = ("test_tuning_curves.py", "test_binned_references.py", "test_live_refits.py",
         "test_glm_pytree_references.py", "test_binned.py", "test_loaders.py", "test_state.py")
LAST = ("test_fit_hypothesis.py", "test_loaders_hypothesis.py", "test_upload_defects.py")
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-m", "not browser")


@dataclass(frozen=True)
class Edit:
    path: str
    old: str
    new: str
    count: int = 1  # occurrences expected (all are replaced)


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    edits: tuple[Edit, ...]


MUTANTS = (
    Mutant("curve-x-left-edges", "tuning-curve x at the left bin edges instead of the centres",
           (Edit("glm_core/tuning.py", "binning.centres, model,",
                 "binning.edges[:-1], model,"),)),
    Mutant("centres-left-edges", "Binning.centres returns the left edges",
           (Edit("glm_core/encoding.py", "return 0.5 * (self.edges[:-1] + self.edges[1:])",
                 "return self.edges[:-1]"),)),
    Mutant("null-without-log-y!", "bin-grid null model without log y! (pseudo-R2)",
           (Edit("glm_core/_grid_fit.py", "n * mean_y - log_factorial) / n", "n * mean_y) / n"),)),
    Mutant("ridge-doubled", "Ridge penalty s w^2 instead of 0.5 s w^2",
           (Edit("glm_core/regularizers.py", "return 0.5 * jnp.sum(weights * theta**2)",
                 "return jnp.sum(weights * theta**2)"),)),
    Mutant("dict-coef-insertion-order", "dict coefficients keyed in insertion order",
           (Edit("glm_core/glm.py",
                 "coef=jax.tree_util.tree_unflatten(treedef, _split(jnp.asarray(res.theta[:-1]), "
                 "sizes)),",
                 "coef=(dict(zip(X, _split(jnp.asarray(res.theta[:-1]), sizes))) if "
                 "isinstance(X, dict) else jax.tree_util.tree_unflatten(treedef, "
                 "_split(jnp.asarray(res.theta[:-1]), sizes))),"),)),
    Mutant("dict-strength-insertion-order", "dict strengths read in insertion order",
           (Edit("glm_core/glm.py", "per_leaf = treedef.flatten_up_to(strength)",
                 "per_leaf = (list(strength.values()) if isinstance(strength, dict) "
                 "else treedef.flatten_up_to(strength))"),)),
    Mutant("no-warm-start", "the app state never warm-starts a refit",
           (Edit("widgets/state.py", "init = None if self._fit is None else self._fit.theta",
                 "init = None"),)),
    Mutant("every-upload-errors", "every upload ends in an error message",
           (Edit("widgets/state.py", "if self.upload is None:", "if True:"),)),
    Mutant("include-static", "`include` a static jit argument (a recompile per toggle)",
           (Edit("glm_core/_grid_fit.py",
                 '@partial(jax.jit, static_argnames=("reg", "tol", "maxiter"))\ndef fit_full(',
                 '@partial(jax.jit, static_argnames=("reg", "tol", "maxiter", "include"))\n'
                 "def fit_full("),
            Edit("glm_core/_grid_problem.py", "np.asarray(include, bool),",
                 "tuple(bool(i) for i in include),"))),
    Mutant("lasso-stationarity-sign", "Lasso stationarity sign flipped",
           (Edit("glm_core/regularizers.py", "grad + weights * jnp.sign(theta)",
                 "grad - weights * jnp.sign(theta)"),)),
    Mutant("residual-under-reported", "solver under-reports its residual 1000x",
           (Edit("glm_core/solvers.py", "weights, groups))) / scale",
                 "weights, groups))) / scale / 1000"),)),
    Mutant("throttle-never-waits", "a dragged slider refits on every event",
           (Edit("widgets/controls.py", "if not in_server():", "if True:"),)),
    Mutant("packed-hessian-pair-transposed",
           "the packed Newton system reads a pair table transposed below the diagonal",
           (Edit("glm_core/_packed_newton.py", "(aj == v), offset + bj * sizes[u] + bi, index)",
                 "(aj == v), offset + bi * sizes[u] + bj, index)"),)),
    Mutant("packed-hessian-same-axis-coupled",
           "the packed Newton system couples two bins of one axis through the total",
           (Edit("glm_core/_packed_newton.py", "same_axis_off_diagonal, offset + 1, index)",
                 "same_axis_off_diagonal, offset, index)"),)),
    Mutant("merge-keeps-first", "merged bins keep the first value instead of the mean",
           (Edit("glm_core/loaders.py", "return blocks.mean(axis=1)", "return blocks[:, 0]"),)),
)


class SiteNotFound(RuntimeError):
    pass


def apply(mutant: Mutant, root: Path) -> None:
    for edit in mutant.edits:
        path = root / edit.path
        text = path.read_text()
        found = text.count(edit.old)
        if found != edit.count:
            raise SiteNotFound(f"{mutant.name}: site not found in {edit.path} (expected "
                               f"{edit.count}, found {found}): {edit.old!r}")
        path.write_text(text.replace(edit.old, edit.new))


def suite_files(root: Path) -> list[str]:
    """The core and app test files (not the browser ones), quick targeted ones first."""
    paths = {p.name: p.relative_to(root).as_posix()
             for folder in ("core", "app") for p in (root / "tests" / folder).glob("test_*.py")}
    first = [f for f in FIRST if f in paths]
    rest = sorted((f for f in paths if f not in first), key=lambda f: (f in LAST, f))
    return [paths[f] for f in first + rest]


def run_suite(root: Path, timeout: float, tests=()) -> tuple[str, str, float]:
    """('passed' | 'killed' | 'timeout' | 'error', first failing test or message, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *(tests or suite_files(root))]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", f"no result in {timeout:.0f} s", time.perf_counter() - start
    elapsed = time.perf_counter() - start
    if proc.returncode == 0:
        return "passed", "", elapsed
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.MULTILINE)
    if proc.returncode == 1 and failed:
        return "killed", failed[0], elapsed
    return "error", out.strip().splitlines()[-1] if out.strip() else f"exit {proc.returncode}", \
        elapsed


def check(mutants, timeout: float, baseline: bool, tests=()) -> bool:
    rows = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        if baseline:
            copy = Path(tmp) / "baseline"
            shutil.copytree(ROOT, copy, ignore=IGNORE)
            status, detail, seconds = run_suite(copy, timeout, tests)
            print(f"baseline: {status} {detail} ({seconds:.0f} s)", flush=True)
            if status != "passed":
                print("the unmutated suite must pass first")
                return False
        for mutant in mutants:
            copy = Path(tmp) / mutant.name
            shutil.copytree(ROOT, copy, ignore=IGNORE)
            apply(mutant, copy)
            status, detail, seconds = run_suite(copy, timeout, tests)
            shutil.rmtree(copy)
            rows.append((mutant, status, detail, seconds))
            print(f"{mutant.name}: {status} {detail} ({seconds:.0f} s)", flush=True)
    print("\n| mutant | planted bug | result | killed by | s |\n| --- | --- | --- | --- | --- |")
    for mutant, status, detail, seconds in rows:
        result = "killed" if status == "killed" else f"SURVIVED ({status})"
        print(f"| {mutant.name} | {mutant.bug} | {result} | {detail} | {seconds:.0f} |")
    survivors = [m.name for m, status, *_ in rows if status != "killed"]
    print(f"\n{len(rows) - len(survivors)} of {len(rows)} killed"
          + (f"; survivors: {', '.join(survivors)}" if survivors else ""))
    return not survivors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per suite run")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unmutated suite")
    parser.add_argument("--tests", nargs="+", default=(),
                        help="run only these test files or ids (default: every non-browser file)")
    parser.add_argument("--sites", action="store_true",
                        help="only check that every mutation site is found")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTANTS}
    if args.list:
        for m in MUTANTS:
            print(f"{m.name}: {m.bug}")
        return 0
    unknown = set(args.names) - set(by_name)
    if unknown:
        parser.error(f"unknown mutants {sorted(unknown)}; see --list")
    mutants = [by_name[n] for n in args.names] if args.names else list(MUTANTS)
    with tempfile.TemporaryDirectory() as tmp:  # every site must exist before anything runs
        for mutant in mutants:
            copy = Path(tmp) / mutant.name
            for edit in mutant.edits:
                (copy / edit.path).parent.mkdir(parents=True, exist_ok=True)
                if not (copy / edit.path).exists():
                    shutil.copy(ROOT / edit.path, copy / edit.path)
            apply(mutant, copy)
    if args.sites:
        print(f"all {len(mutants)} mutants' sites found")
        return 0
    return 0 if check(mutants, args.timeout, not args.no_baseline, args.tests) else 1


if __name__ == "__main__":
    sys.exit(main())
