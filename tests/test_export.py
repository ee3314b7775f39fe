"""Export: the Code card's snippets, run on their own, refit the app's model (glm_core to 1e-5,
NeMoS to its own tolerance); the CSV and JSON downloads hold a fit that, rebuilt from the file
alone with numpy, scores the app's log-likelihood on the raw data."""

import csv
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import panel as pn
import pytest
from scipy.special import gammaln

from glm_core import export
from glm_core.simulation import simulate_session
from tests.browser_support import REPO, write_npz
from widgets.export import fit_record, fit_settings
from widgets.state import UPLOAD, ExplorerState

SETTINGS = {  # per variable (position, speed, head direction): include, bins, log10 strength
    "Ridge": [(True, 14, -2.5), (True, 8, -1.0), (True, 12, -3.5)],
    "Smooth": [(True, 20, -2.0), (False, 20, -3.0), (True, 16, -1.5)],
    "Lasso": [(True, 10, -3.0), (True, 6, -2.0), (True, 8, -4.0)],
    "GroupLasso": [(True, 10, -3.0), (True, 6, -1.0), (True, 8, -2.5)],
}


def fitted(regularizer, **settings):
    state = ExplorerState(regularizer=regularizer, **settings)
    state.start()
    for row, (include, n_bins, log_strength) in zip(state.variables, SETTINGS[regularizer]):
        row.param.update(include=include, n_bins=n_bins, log_strength=log_strength)
    assert state.error == "" and state.fit.converged
    return state


class States(dict):
    """One fitted state per regularizer, made when first asked for."""

    def __missing__(self, regularizer):
        self[regularizer] = fitted(regularizer, n_samples=5000, seed=2)
        return self[regularizer]


@pytest.fixture(scope="module")
def states():
    return States()


@pytest.fixture(scope="module")
def spline_state():
    """Ridge with a B-spline position (8 functions), bins for speed and a cyclic B-spline head
    direction (6 functions)."""
    state = fitted("Ridge", n_samples=5000, seed=2)
    position, _, direction = state.variables
    position.param.update(encoding="B-spline", n_basis=8)
    direction.param.update(encoding="cyclic B-spline", n_basis=6)
    assert state.error == "" and state.fit.converged
    return state


def app_log_rate(state):
    """Each valid sample's log rate in the app's fit (from its own bins' log-rate terms)."""
    fit, enc = state.fit, state.encoding
    return fit.intercept + sum(fit.effects[v, enc.indices[:, v]]
                               for v, row in enumerate(state.variables) if row.include)


def assert_same_coefficients(snippet, app):
    """A leaf's coefficients: their differences (the shape of the curve) to 1e-5; their common
    level to 5e-5, since a leaf's shift against the intercept is only weakly penalised (Ridge
    at 10^-3.5) and both float32 solves stop within their tolerance along it."""
    snippet, app = np.asarray(snippet, float), np.asarray(app, float)
    np.testing.assert_allclose(snippet - snippet.mean(), app - app.mean(), atol=1e-5)
    assert snippet.mean() == pytest.approx(app.mean(), abs=5e-5)


def run_snippet(code, cwd=None):
    namespace = {}
    here = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NeMoS's convergence warnings
            exec(compile(code, "snippet", "exec"), namespace)
    finally:
        os.chdir(here)
    return namespace


@pytest.mark.parametrize("regularizer", list(SETTINGS))
def test_the_glm_snippet_refits_the_apps_coefficients(states, regularizer):
    state = states[regularizer]
    ns = run_snippet(export.glm_snippet(fit_settings(state)))
    model = ns["model"]
    assert model.fit_.converged
    included = [(v, r) for v, r in enumerate(state.variables) if r.include]
    assert sorted(model.coef_) == sorted(r.name for _, r in included)
    log_rate = np.log(np.asarray(model.predict(ns["X"]), float))
    np.testing.assert_allclose(log_rate, app_log_rate(state), atol=1e-5)
    # Identified coefficients. (Lasso's optimum on one-hot leaves may be a segment of
    # leaf-vs-intercept shifts, and Smooth's 1e-3 * s ridge leaves that shift almost flat:
    # there the log rates above are what is determined.)
    if regularizer in ("Ridge", "GroupLasso"):
        for v, row in included:
            assert_same_coefficients(model.coef_[row.name], state.fit.weights[v, :row.n_bins])
        # |intercept| ~ 3: float32 solves agree to 1e-5 relative
        np.testing.assert_allclose(model.intercept_[0], state.fit.intercept, rtol=1e-5)


def test_the_glm_snippet_refits_a_fit_with_spline_bases(spline_state):
    """The snippet builds each basis design as the app does (a snippet that used bins, or the
    spline at the raw values, would miss the app's log rates by far more than 1e-5)."""
    state = spline_state
    code = export.glm_snippet(fit_settings(state))
    assert "spline_bins('position', 64, 8)" in code
    assert "spline_bins('head direction', 64, 6)" in code
    ns = run_snippet(code)
    model = ns["model"]
    assert model.fit_.converged
    assert {k: v.shape for k, v in model.coef_.items()} == {
        "position": (8,), "speed": (8,), "head direction": (6,)}
    np.testing.assert_allclose(np.log(np.asarray(model.predict(ns["X"]), float)),
                               app_log_rate(state), atol=1e-5)
    for v, row in enumerate(state.variables):
        k = model.coef_[row.name].size
        np.testing.assert_allclose(model.coef_[row.name], state.fit.weights[v, :k], atol=1e-5)


def test_the_snippet_runs_alone_in_a_fresh_interpreter(states, tmp_path):
    state = states["Ridge"]
    code = export.glm_snippet(fit_settings(state)) + (
        "import json\nprint(json.dumps({k: [float(x) for x in v] for k, v in "
        "model.coef_.items()}))\n")
    script = tmp_path / "snippet.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    coef = json.loads(out.stdout.splitlines()[-1])
    for v, row in enumerate(state.variables):
        assert_same_coefficients(coef[row.name], state.fit.weights[v, :row.n_bins])


def test_an_uploads_snippet_reads_the_file_by_its_path(tmp_path):
    path = write_npz(tmp_path / "session.npz")
    state = ExplorerState(source=UPLOAD, upload=(path.name, path.read_bytes()))
    state.start()
    assert state.error == ""
    code = export.glm_snippet(fit_settings(state))
    assert "Path('session.npz')  # the uploaded file: set its path here" in code
    ns = run_snippet(code, cwd=tmp_path)
    log_rate = np.log(np.asarray(ns["model"].predict(ns["X"]), float))
    np.testing.assert_allclose(log_rate, app_log_rate(state), atol=1e-5)


def objective(X, y, coef, intercept, penalty):
    eta = sum(np.asarray(X[k], float) @ np.asarray(coef[k], float) for k in coef) + intercept
    return np.mean(np.exp(eta) - y * eta) + penalty


@pytest.mark.parametrize("regularizer", ["Ridge", "GroupLasso"])
def test_the_nemos_snippet_reaches_the_apps_optimum(states, regularizer):
    pytest.importorskip("nemos")
    state = states[regularizer]
    ns = run_snippet(export.nemos_snippet(fit_settings(state)))
    X, y, model = ns["X"], np.asarray(ns["y"], float), ns["model"]
    rows = {k: (v, r) for v, r in enumerate(state.variables)
            for k in [r.name.replace(" ", "_")] if r.include}
    assert sorted(dict(model.coef_)) == sorted(rows)

    def penalty(coef):
        terms = []
        for key, w in coef.items():
            w, s = np.asarray(w, float), 10.0 ** rows[key][1].log_strength
            terms.append(0.5 * s * np.sum(w**2) if regularizer == "Ridge"
                         else s * np.sqrt(w.size) * np.linalg.norm(w))
        return sum(terms)

    theirs = dict(model.coef_)
    ours = {k: state.fit.weights[v, :r.n_bins] for k, (v, r) in rows.items()}
    f_nemos = objective(X, y, theirs, float(np.ravel(model.intercept_)[0]), penalty(theirs))
    f_app = objective(X, y, ours, state.fit.intercept, penalty(ours))
    # NeMoS stops loosely (its default tolerance); the app solves to 1e-6: never worse.
    assert f_app <= f_nemos + 1e-7
    assert f_nemos - f_app < 1e-4 * abs(f_app)


def test_nemos_has_no_smooth_snippet(states):
    text = export.nemos_snippet(fit_settings(states["Smooth"]))
    assert "no Smooth" in text and "nmo.glm" not in text


def test_the_csv_and_json_rebuild_the_apps_log_likelihood_from_the_raw_data(states):
    """Bin each raw sample with the file's edges, sum the file's coefficients and intercept:
    numpy's mean Poisson log-likelihood equals the app's statistic."""
    state = states["Smooth"]  # one variable left out
    record = fit_record(state)
    from_json = json.loads(export.record_json(record),
                           parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    rows = list(csv.DictReader(io.StringIO(export.record_csv(record))))
    assert len(rows) == sum(v["n_bins"] for v in from_json["variables"])
    session = simulate_session(5000, seed=2)
    valid = session.valid
    y = session.unit_counts(from_json["unit"])[valid].astype(float)
    for table in ("json", "csv"):
        eta = np.full(y.size, float(rows[0]["intercept"]) if table == "csv"
                      else from_json["intercept"])
        for var in from_json["variables"]:
            mine = [r for r in rows if r["variable"] == var["name"]]
            assert [int(r["bin"]) for r in mine] == list(range(var["n_bins"]))
            if not var["included"]:
                assert var["coefficients"] is None and all(r["coefficient"] == "" for r in mine)
                continue
            if table == "csv":
                edges = np.array([float(r["left_edge"]) for r in mine]
                                 + [float(mine[-1]["right_edge"])])
                coef = np.array([float(r["coefficient"]) for r in mine])
            else:
                edges, coef = np.array(var["bin_edges"]), np.array(var["coefficients"])
            x = session.variable(var["name"]).values[valid]
            k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
            eta += coef[k]
        ll = np.mean(y * eta - np.exp(eta) - gammaln(y + 1))
        np.testing.assert_allclose(ll, state.stats["log-likelihood"], rtol=1e-5)
    # The curves are the plotted ones, and the settings are the state's.
    for var, curve in zip(from_json["variables"], state.curves):
        for key in ("model_hz", "lower_hz", "upper_hz", "truth_hz"):  # null = NaN
            np.testing.assert_allclose(np.array(var[key], float),
                                       getattr(curve, export.CURVE_FIELDS[key]), rtol=1e-12)
        mine = [r for r in rows if r["variable"] == var["name"]]
        np.testing.assert_allclose([float(r["empirical_hz"] or "nan") for r in mine],
                                   curve.empirical, rtol=1e-12)
    assert [v["log10_strength"] for v in from_json["variables"]] == [-2.0, -3.0, -1.5]
    assert from_json["regularizer"] == "Smooth" and from_json["statistics"]["converged"]


def test_a_spline_fits_csv_and_json_rebuild_its_log_likelihood(spline_state):
    """JSON: basis @ coefficients per bin; CSV: each bin's log-rate term (its coefficient column
    is blank for a basis); both score the app's log-likelihood on the raw samples."""
    state = spline_state
    record = json.loads(export.record_json(fit_record(state)))
    rows = list(csv.DictReader(io.StringIO(export.record_csv(fit_record(state)))))
    encodings = [(v["encoding"], v["n_bins"], None if v["basis"] is None else
                  np.shape(v["basis"])) for v in record["variables"]]
    assert encodings == [("B-spline", 64, (64, 8)), ("bins", 8, None),
                         ("cyclic B-spline", 64, (64, 6))]
    session = simulate_session(5000, seed=2)
    valid = session.valid
    y = session.unit_counts(record["unit"])[valid].astype(float)
    for table in ("json", "csv"):
        eta = np.full(y.size, record["intercept"])
        for var in record["variables"]:
            mine = [r for r in rows if r["variable"] == var["name"]]
            if table == "csv":
                terms = np.array([float(r["log_rate_term"]) for r in mine])
                assert all(r["coefficient"] == "" for r in mine) == (var["basis"] is not None)
            elif var["basis"] is None:
                terms = np.array(var["coefficients"])
            else:
                terms = np.array(var["basis"]) @ np.array(var["coefficients"])
            edges = np.array(var["bin_edges"])
            x = session.variable(var["name"]).values[valid]
            k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
            eta += terms[k]
        ll = np.mean(y * eta - np.exp(eta) - gammaln(y + 1))
        np.testing.assert_allclose(ll, state.stats["log-likelihood"], rtol=1e-5)


def test_a_fit_with_a_2d_map_is_not_exported_as_1d_rows():
    """With the open field's x x y map on, the downloads are disabled and the Code card says why
    (the per-variable record would misalign the map's coefficients); with the map off, every
    variable exports with its own bins' coefficients."""
    from widgets.export import MAP_NOTE, code_view, export_controls
    from widgets.state import OPEN_FIELD

    state = ExplorerState(source=OPEN_FIELD, n_samples=20_000, n_folds=4)
    state.start()
    assert state.error == "" and state.maps
    controls = export_controls(state)
    downloads = [w for w in controls if isinstance(w, pn.widgets.FileDownload)]
    assert len(downloads) == 2 and all(d.disabled for d in downloads)
    snippet = code_view(state)[0]
    assert MAP_NOTE in str(snippet.object)
    state.joint_map = False
    assert state.error == "" and not state.maps
    assert not any(d.disabled for d in downloads)
    record = fit_record(state)
    assert [len(v["coefficients"]) for v in record["variables"] if v["included"]] == [
        n for n, row in zip(state.encoding.n_bins, state.variables) if row.include]
    assert "one_hot_bins('x'" in export.glm_snippet(fit_settings(state))
