"""Near-valid uploads with one defect each: every one ends in a clear InputError or in a session
whose units fit (or say they have no spikes), at a cost bounded by the file's size.

Each case runs the app's upload path (load as a new upload, encode with the default bins, fit
every unit, tuning curves) in a worker process limited to 3 GB of address space and a time-out:
a defect that would exhaust memory or loop for minutes fails its case instead of taking the
suite (or a server) down. numpy's peak allocation, traced per case, must stay small too.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import resource
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CASE_TIMEOUT_S = 120  # a hang fails the case; not a speed target (cases take well under 1 s)
ADDRESS_SPACE = 3 * 2**30
PEAK_BYTES = 200 * 2**20  # numpy's peak for files of ~100 kB; the old code needed 8 GB
NO_SPIKES = "no spikes"


# --- the pipeline, run in the worker --------------------------------------------------------


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def upload_outcome(name: str, data: bytes, bin_width):
    """The app's path for a new upload: an InputError message, or ``{unit: "fits" | message}``;
    with numpy's traced peak allocation in bytes."""
    from glm_core import explorer, tuning
    from glm_core.cell_table import max_bins_for
    from glm_core.errors import InputError
    from glm_core.loaders import load_upload

    tracemalloc.start()
    try:
        session = load_upload(name, data, bin_width=bin_width, default_bin_width=0.025)
        max_bins = max_bins_for(len(session.variables))
        n_bins = [min(v.default_bins or (16 if v.circular else 20), max_bins)
                  for v in session.variables]
        encoding = explorer.encode(session, 0, n_bins)
        outcome = {}
        for unit in session.unit_names:
            try:
                encoding = explorer.with_unit(encoding, session, unit)
                fit = explorer.fit(encoding, [True] * len(n_bins), [1e-3] * len(n_bins), "Ridge")
                curves = tuning.tuning_curves(session, encoding, fit)
                finite = all(np.isfinite(c.model).any() for c in curves)
                outcome[unit] = "fits" if fit.converged and finite else "no finite curve"
            except InputError as err:
                outcome[unit] = str(err)
    except InputError as err:
        outcome = str(err)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, peak


class Worker:
    """One spawned worker process; a case that overruns its time-out is killed with it."""

    def __init__(self):
        self.pool = None

    def run(self, name, data, bin_width=None):
        if self.pool is None:
            context = multiprocessing.get_context("spawn")
            self.pool = context.Pool(1, initializer=_limit_memory)
        job = self.pool.apply_async(upload_outcome, (name, data, bin_width))
        try:
            outcome, peak = job.get(CASE_TIMEOUT_S)
        except multiprocessing.TimeoutError:
            self.close()
            pytest.fail(f"{name}: still running after {CASE_TIMEOUT_S} s")
        assert peak < PEAK_BYTES, f"{name}: numpy peak {peak / 2**20:.0f} MB"
        return outcome

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


# --- near-valid files -------------------------------------------------------------------------

T = 2000
RNG = np.random.default_rng(3)
X = np.cumsum(RNG.normal(0, 1, T))
HD = np.mod(np.cumsum(RNG.normal(0, 0.2, T)) + np.pi, 2 * np.pi) - np.pi
RATE = np.exp(-((X - X.mean()) ** 2) / (2 * X.std() ** 2) + np.cos(HD) - 1)


def binned_arrays() -> dict:
    return {"bin_width": np.float64(0.02), "count:a": RNG.poisson(RATE).astype(float),
            "count:b": RNG.poisson(0.5, T).astype(float), "var:x[cm]": X.copy(),
            "var:hd[rad,circular]": HD.copy(), "valid": np.ones(T)}


def events_arrays() -> dict:
    t = np.arange(T) * 0.01
    spikes = np.sort(RNG.uniform(0, t[-1], 600))
    return {"spike_times": spikes, "spike_unit": np.where(np.arange(600) % 3, "a", "b"),
            "var_t": t, "var:x[cm]": X.copy(), "var:hd[rad,circular]": HD.copy()}


def to_npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def to_csv(arrays: dict) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    if "spike_times" in arrays:  # long events form
        names = [k for k in arrays if k.startswith("var:")]
        writer.writerow(["time", "spike_unit", *names])
        writer.writerows([repr(float(t)), "", *(repr(float(arrays[k][i])) for k in names)]
                         for i, t in enumerate(arrays["var_t"]))
        writer.writerows([repr(float(t)), u, *[""] * len(names)]
                         for t, u in zip(arrays["spike_times"], arrays["spike_unit"]))
    else:
        names = list(arrays)
        writer.writerow(names)
        columns = [np.atleast_1d(arrays[k]) for k in names]
        writer.writerows([repr(float(c[i])) if i < c.size else "" for c in columns]
                         for i in range(T))
    return text.getvalue().encode()


def with_defect(arrays: dict, **changes) -> dict:
    return {**arrays, **changes}


def put(values, index, value) -> np.ndarray:
    out = np.array(values, float)
    out[index] = value
    return out


# (form, name of the defect) -> arrays, upload bin width, expected outcome: a piece of the error
# message, or per unit "fits" / a piece of its fit's message
CASES = {
    ("binned", "1e9 spikes in one bin"):
        (lambda a: with_defect(a, **{"count:a": put(a["count:a"], 7, 1e9)}), None,
         "a bin of 0.02 s holds 1000000000 spikes; at most 100 (5000 spikes/s) are plausible"),
    ("binned", "3e9 spikes in one bin"):
        (lambda a: with_defect(a, **{"count:a": put(a["count:a"], 7, 3e9)}), None, "plausible"),
    ("binned", "1e300 spikes in one bin"):
        (lambda a: with_defect(a, **{"count:b": put(a["count:b"], 0, 1e300)}), None, "plausible"),
    ("binned", "a variable value of 1e300"):
        (lambda a: with_defect(a, **{"var:x[cm]": put(a["var:x[cm]"], 5, 1e300)}), None,
         {"a": "fits", "b": "fits"}),
    ("binned", "variable values of -1e308 and 1e308"):
        (lambda a: with_defect(a, **{"var:x[cm]": put(a["var:x[cm]"], [5, 6], [-1e308, 1e308])}),
         None, "too wide to bin"),
    ("binned", "variable values of 1e-300"):
        (lambda a: with_defect(a, **{"var:x[cm]": a["var:x[cm]"] * 1e-300}), None,
         {"a": "fits", "b": "fits"}),
    ("binned", "a bin width of 1e-12 s"):
        (lambda a: with_defect(a, bin_width=np.float64(1e-12)), None,
         "bin_width 1e-12 s is outside the supported range, 0.1 ms to 1 h"),
    ("binned", "every bin marked invalid"):
        (lambda a: with_defect(a, valid=np.zeros(T)), None, "no valid samples"),
    ("binned", "every variable value NaN"):
        (lambda a: with_defect(a, **{"var:x[cm]": np.full(T, np.nan)}), None, "no valid samples"),
    ("binned", "a silent unit"):
        (lambda a: with_defect(a, **{"count:b": np.zeros(T)}), None,
         {"a": "fits", "b": NO_SPIKES}),
    ("events", "a spike at 1e300 s"):
        (lambda a: with_defect(a, spike_times=put(a["spike_times"], -1, 1e300)), None,
         {"a": "fits", "b": "fits"}),
    ("events", "a behaviour sample at 1e300 s"):
        (lambda a: with_defect(a, var_t=put(a["var_t"], -1, 1e300)), None,
         "choose a larger bin width"),
    ("events", "behaviour samples at -1e308 s and 1e308 s"):
        (lambda a: with_defect(a, var_t=put(a["var_t"], [0, -1], [-1e308, 1e308])), None,
         "choose a larger bin width"),
    ("events", "a bin width of 1e-12 s"):
        (lambda a: a, 1e-12, "bin width 1e-12 s"),
    ("events", "a variable value of 1e300"):
        (lambda a: with_defect(a, **{"var:x[cm]": put(a["var:x[cm]"], 5, 1e300)}), None,
         {"a": "fits", "b": "fits"}),
    ("events", "variable values of 1e-300"):
        (lambda a: with_defect(a, **{"var:x[cm]": a["var:x[cm]"] * 1e-300}), None,
         {"a": "fits", "b": "fits"}),
    ("events", "every variable value NaN"):
        (lambda a: with_defect(a, **{"var:hd[rad,circular]": np.full(T, np.nan)}), None,
         "no valid samples"),
    ("events", "a silent unit (its spikes outside the behaviour)"):
        (lambda a: with_defect(a, spike_times=np.where(a["spike_unit"] == "b",
                                                       a["spike_times"] + 100, a["spike_times"])),
         None, {"a": "fits", "b": NO_SPIKES}),
    ("events", "every spike its own unit"):
        (lambda a: with_defect(a, spike_times=np.linspace(1, 19, 5000),
                               spike_unit=np.arange(5000)), None, "more than the 2000"),
}


@pytest.mark.parametrize("file_type", ["npz", "csv"])
@pytest.mark.parametrize("form, defect", list(CASES), ids=[" / ".join(k) for k in CASES])
def test_one_defect(worker, file_type, form, defect):
    change, bin_width, expected = CASES[(form, defect)]
    arrays = change(binned_arrays() if form == "binned" else events_arrays())
    data = (to_npz if file_type == "npz" else to_csv)(arrays)
    outcome = worker.run(f"defect.{file_type}", data, bin_width)
    if isinstance(expected, str):
        assert isinstance(outcome, str) and expected in outcome, outcome
    else:
        assert isinstance(outcome, dict), outcome
        assert outcome.keys() == expected.keys()
        for unit, want in expected.items():
            assert want in outcome[unit], (unit, outcome[unit])


EXTREMES = st.sampled_from([0.0, -1.0, 0.5, 7.0, 1e9, 3e9, 1e300, -1e300, 1e-300, 5e-324, 1e308,
                            -1e308, np.inf, -np.inf, np.nan])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(file_type=st.sampled_from(["npz", "csv"]), form=st.sampled_from(["binned", "events"]),
       data=st.data(), value=EXTREMES, where=st.lists(st.integers(0, T - 1), min_size=1,
                                                       max_size=3))
def test_any_one_extreme_value_is_handled(worker, file_type, form, data, value, where):
    """One entry of one array set to an extreme value: an InputError message, or every unit fits
    or says it has no spikes."""
    arrays = binned_arrays() if form == "binned" else events_arrays()
    key = data.draw(st.sampled_from([k for k, v in arrays.items()
                                     if np.ndim(v) and v.dtype.kind == "f"]))
    arrays[key] = put(arrays[key], [i % arrays[key].size for i in where], value)
    outcome = worker.run(f"defect.{file_type}", (to_npz if file_type == "npz" else to_csv)(arrays))
    if isinstance(outcome, str):
        assert outcome
    else:
        assert all(v == "fits" or NO_SPIKES in v for v in outcome.values()), outcome


def test_npz_of_many_one_byte_values_is_refused_before_loading(worker):
    """70 million uint8 zeros pack into a small file but would take 560 MB as floats."""
    buffer = io.BytesIO()
    n = 70_000_000
    np.savez_compressed(buffer, bin_width=0.02, **{"count:a": np.zeros(n, np.uint8),
                                                    "var:x": np.zeros(10, np.uint8)})
    assert len(buffer.getvalue()) < 2**20
    outcome = worker.run("many.npz", buffer.getvalue())
    assert isinstance(outcome, str) and "70,000,011 values; the limit is 60,000,000" in outcome
