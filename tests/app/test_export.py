"""Export: the Code card's snippets, run on their own, refit the app's model (glm_core to 1e-5,
NeMoS to its own tolerance), 2-D maps included; the CSV and JSON downloads hold a fit that,
rebuilt from the file alone with numpy, scores the app's log-likelihood on the raw data."""

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
from glm_core.open_field import simulate_open_field
from glm_core.simulation import simulate_session
from tests.browser.support import REPO, write_npz
from widgets.export import code_view, export_controls, fit_record, fit_settings
from widgets.state import ExplorerState
from widgets.vocabulary import OPEN_FIELD, UPLOAD

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


# Open field, 2-D map of x and y on: (map log10 strength, speed included). (GroupLasso is left
# out: on this 400-cell map the app's solution after a switch from Smooth stops within its
# tolerance but 5e-5 from the dense optimum in log rate, above NeMoS's objective.)
MAP_SETTINGS = {"Ridge": (-3.5, True), "Smooth": (-4.0, False)}


class MapStates(dict):
    """One fitted open-field state with its 2-D map per regularizer (one session, so that the
    2-D layout's solvers compile once)."""

    def __missing__(self, regularizer):
        if not hasattr(self, "base"):
            state = ExplorerState(source=OPEN_FIELD, n_samples=10_000, n_folds=4)
            state.start()
            self.base = state
        state = self.base
        log_strength, speed = MAP_SETTINGS[regularizer]
        state.param.update(regularizer=regularizer, joint_log_strength=log_strength)
        state.variables[3].include = speed
        assert state.error == "" and state.fit.converged and state.encoding.pairs == ((0, 1),)
        assert np.ptp(state.fit.weights[0, :400]) > 1.0  # the map is in the model, tuned
        # a snapshot of what the page shows for these settings
        self[regularizer] = (fit_settings(state), fit_record(state), state.fit, state.encoding,
                             dict(state.stats))
        return self[regularizer]


@pytest.fixture(scope="module")
def map_states():
    return MapStates()


def app_log_rate(state):
    """Each valid sample's log rate in the app's fit (from its own bins' log-rate terms)."""
    return leaf_log_rate(state.fit, state.encoding,
                         [all(state.variables[v].include for v in leaf)
                          for leaf in state.encoding.leaves])


def leaf_log_rate(fit, enc, include):
    """Each valid sample's log rate: the intercept plus each included leaf's term in the
    sample's bin (a 2-D map's in its joint bin bx * ny + by)."""
    eta = np.full(enc.counts.size, float(fit.intercept))
    for a, (leaf, keep) in enumerate(zip(enc.leaves, include)):
        if keep:
            bins = enc.indices[:, leaf[0]]
            if len(leaf) == 2:
                bins = bins * enc.n_bins[leaf[1]] + enc.indices[:, leaf[1]]
            eta += fit.effects[a, bins]
    return eta


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


@pytest.mark.parametrize("regularizer", list(MAP_SETTINGS))
def test_the_glm_snippet_refits_a_fit_with_a_2d_map(map_states, regularizer):
    """The map is one leaf of the design, the one-hot of the joint bin bx * ny + by (a snippet
    with x and y as two leaves, or the bins transposed, misses the app's log rates by far more
    than 1e-5); the open field is simulated again from T and seed; Smooth smooths the map
    along both axes (``grids``; the flattened order alone gives other coefficients)."""
    settings, record, fit, enc, _ = map_states[regularizer]
    code = export.glm_snippet(settings)
    assert "session = simulate_open_field(10000, seed=0)" in code
    assert "'x × y': joint_bins('x', 20, 'y', 20)," in code
    ns = run_snippet(code)
    model = ns["model"]
    assert model.fit_.converged
    include = [settings.leaf_included(leaf) for leaf in enc.leaves]
    names = [settings.leaf_name(leaf) for leaf, keep in zip(enc.leaves, include) if keep]
    assert sorted(model.coef_) == sorted(names)
    assert model.coef_["x × y"].shape == (400,)
    np.testing.assert_allclose(np.log(np.asarray(model.predict(ns["X"]), float)),
                               leaf_log_rate(fit, enc, include), atol=1e-5)
    if regularizer == "Ridge":  # identified coefficients (see above)
        for a, leaf in enumerate(enc.leaves):
            if include[a]:
                n = int(np.prod([enc.n_bins[v] for v in leaf]))
                assert_same_coefficients(model.coef_[settings.leaf_name(leaf)],
                                         fit.weights[a, :n])
        np.testing.assert_allclose(model.intercept_[0], fit.intercept, rtol=1e-5)
    else:  # Smooth: the map's shape (its coefficients less their mean) is identified
        app = fit.weights[0, :400]
        mine = np.asarray(model.coef_["x × y"], float)
        np.testing.assert_allclose(mine - mine.mean(), app - app.mean(), atol=1e-5)


def test_the_nemos_snippet_of_a_fit_with_a_2d_map_reaches_the_apps_optimum(map_states):
    pytest.importorskip("nemos")
    settings, _, fit, enc, _ = map_states["Ridge"]
    code = export.nemos_snippet(settings)
    assert "x_y=joint_bins('x', 20, 'y', 20)," in code
    ns = run_snippet(code)
    X, y, model = ns["X"], np.asarray(ns["y"], float), ns["model"]
    leaves = {"_".join(settings.names[v].replace(" ", "_") for v in leaf): (a, leaf)
              for a, leaf in enumerate(enc.leaves) if settings.leaf_included(leaf)}
    assert sorted(dict(model.coef_)) == sorted(leaves)

    def penalty(coef):
        terms = []
        for key, w in coef.items():
            w = np.asarray(w, float)
            s = 10.0 ** settings.leaf_log_strength(leaves[key][1])
            terms.append(0.5 * s * np.sum(w**2))
        return sum(terms)

    theirs = dict(model.coef_)
    ours = {k: fit.weights[a, :np.asarray(theirs[k]).size] for k, (a, _) in leaves.items()}
    f_nemos = objective(X, y, theirs, float(np.ravel(model.intercept_)[0]), penalty(theirs))
    f_app = objective(X, y, ours, fit.intercept, penalty(ours))
    assert f_app <= f_nemos + 1e-7
    assert f_nemos - f_app < 1e-4 * abs(f_app)


def test_a_fit_with_a_2d_maps_csv_and_json_rebuild_its_log_likelihood(map_states):
    """From the files alone: each raw sample's x bin and y bin by the map's edges, the map's
    coefficient of that cell plus the 1-D leaves' and the intercept give numpy's mean Poisson
    log-likelihood equal to the app's; the map's occupancy and empirical rate equal numpy's
    2-D histograms of the raw samples; unvisited cells are null in the model map."""
    _, record, _, _, stats = map_states["Ridge"]
    record = json.loads(export.record_json(record),
                        parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    rows = list(csv.DictReader(io.StringIO(export.record_csv(record))))
    assert [v["name"] for v in record["variables"]] == ["head direction", "speed"]
    (joint,) = record["maps"]
    assert (joint["name"], joint["variables"], joint["units"], joint["nx"], joint["ny"]) == (
        "x × y", ["x", "y"], ["cm", "cm"], 20, 20)
    assert joint["log10_strength"] == -3.5 and joint["encoding"] == "2-D bins"
    session = simulate_open_field(10_000, seed=0)
    valid, dt = session.valid, session.bin_width
    y = session.unit_counts(record["unit"])[valid].astype(float)
    x_raw, y_raw = (session.variable(n).values[valid] for n in ("x", "y"))

    def cell(values, edges):
        edges = np.asarray(edges, float)
        return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)

    map_rows = [r for r in rows if r["variable"] == "x × y"]
    assert len(rows) == 16 + 20 + 400 and len(map_rows) == 400
    assert [(int(r["bin"]), int(r["second_bin"])) for r in map_rows] == [
        (i, j) for i in range(20) for j in range(20)]
    for table in ("json", "csv"):
        if table == "json":
            x_edges, y_edges = joint["bin_edges"]
            coef = np.array(joint["coefficients"], float)
        else:
            x_edges = [float(r["left_edge"]) for r in map_rows[::20]] + [
                float(map_rows[-1]["right_edge"])]
            y_edges = [float(r["second_left_edge"]) for r in map_rows[:20]] + [
                float(map_rows[-1]["second_right_edge"])]
            coef = np.array([float(r["coefficient"]) for r in map_rows]).reshape(20, 20)
        eta = record["intercept"] + coef[cell(x_raw, x_edges), cell(y_raw, y_edges)]
        for var in record["variables"]:
            if var["included"]:
                terms = (np.array(var["coefficients"]) if table == "json" else np.array(
                    [float(r["log_rate_term"]) for r in rows if r["variable"] == var["name"]]))
                eta += terms[cell(session.variable(var["name"]).values[valid],
                                  var["bin_edges"])]
        ll = np.mean(y * eta - np.exp(eta) - gammaln(y + 1))
        np.testing.assert_allclose(ll, stats["log-likelihood"], rtol=1e-5)
    occupancy, _, _ = np.histogram2d(x_raw, y_raw, joint["bin_edges"])
    spikes, _, _ = np.histogram2d(x_raw, y_raw, joint["bin_edges"], weights=y)
    np.testing.assert_allclose(np.array(joint["occupancy_s"], float), occupancy * dt,
                               rtol=1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        empirical = spikes / (occupancy * dt)
    np.testing.assert_allclose(np.array(joint["empirical_hz"], float), empirical, rtol=1e-12)
    np.testing.assert_allclose([float(r["empirical_hz"] or "nan") for r in map_rows],
                               empirical.ravel(), rtol=1e-12)
    model = np.array(joint["model_hz"], float)  # null -> NaN
    assert (occupancy == 0).any() and np.array_equal(np.isnan(model), occupancy == 0)
    assert np.isfinite(np.array(joint["truth_hz"], float)).all()


def test_a_fit_with_a_2d_map_exports_from_the_page(map_states):
    """With the map on, the downloads are enabled and the Code card holds the map's snippet."""
    map_states["Ridge"]
    state = map_states.base
    downloads = [w for w in export_controls(state) if isinstance(w, pn.widgets.FileDownload)]
    assert len(downloads) == 2 and not any(d.disabled for d in downloads)
    assert "joint_bins('x', 20, 'y', 20)" in str(code_view(state)[0].object)
    assert json.loads(downloads[1].callback().getvalue())["maps"][0]["name"] == "x × y"
