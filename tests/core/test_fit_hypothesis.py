"""Property-based bad input at the fitting pipeline: only InputError may escape, and every fit that
succeeds returns finite numbers."""

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from glm_core import explorer, tuning
from glm_core.errors import InputError
from glm_core.glm import GLM
from glm_core.session import Variable, make_session

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
odd_floats = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e300, -1e-300, 5.0])


@st.composite
def sessions(draw):
    n = draw(st.integers(1, 200))
    n_vars = draw(st.integers(1, 3))
    variables = []
    for v in range(n_vars):
        kind = draw(st.sampled_from(["random", "constant", "odd", "huge"]))
        values = np.random.default_rng(draw(st.integers(0, 2**16))).normal(size=n)
        if kind == "constant":
            values = np.full(n, draw(st.floats(-5, 5)))
        elif kind == "odd":
            values[draw(st.lists(st.integers(0, n - 1), max_size=n))] = draw(odd_floats)
        elif kind == "huge":
            values = values * 1e300
        variables.append(Variable(f"v{v}", values, circular=draw(st.booleans())))
    counts = draw(st.sampled_from(["zeros", "poisson", "bursty"]))
    y = {"zeros": np.zeros(n), "poisson": np.random.default_rng(n).poisson(0.5, n),
         "bursty": np.where(np.arange(n) % 7 == 0, 1000, 0)}[counts]
    valid = draw(st.one_of(st.none(), st.lists(st.booleans(), min_size=n, max_size=n)))
    return make_session(draw(st.sampled_from([0.02, 1.0])), variables, y, valid=valid)


@SETTINGS
@given(data=st.data())
def test_binned_fit_only_raises_input_error(data):
    try:
        session = data.draw(sessions())
        n_vars = len(session.variables)
        n_bins = data.draw(st.lists(st.one_of(st.integers(1, 8), st.integers(-1, 80)),
                                    min_size=n_vars, max_size=n_vars))
        enc = explorer.encode(session, 0, n_bins)
        include = data.draw(st.one_of(st.just([True] * n_vars),
                                      st.lists(st.booleans(), min_size=n_vars, max_size=n_vars)))
        strengths = data.draw(st.lists(st.sampled_from([0.0, 1e-8, 1e-3, 1.0, 1e6]),
                                       min_size=n_vars, max_size=n_vars))
        regularizer = data.draw(st.sampled_from(["UnRegularized", "Ridge", "Lasso",
                                                 "GroupLasso"]))
        fit = explorer.fit(enc, include, strengths, regularizer)
        curves = tuning.tuning_curves(session, enc, fit)
    except InputError as err:
        event(f"InputError: {''.join(c for c in str(err) if not c.isdigit())[:40]}")
        return
    event(f"fitted ({fit.converged=})")
    assert np.isfinite(fit.intercept) and np.all(np.isfinite(fit.weights))
    for curve in curves:
        assert not np.any(np.isinf(curve.model))


@SETTINGS
@given(data=st.data())
def test_dense_glm_only_raises_input_error(data):
    n = data.draw(st.sampled_from([3, 30]))  # few shapes: each new shape compiles
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    X = {"a": rng.normal(size=(n, data.draw(st.sampled_from([1, 3]))))}
    if data.draw(st.booleans()):
        X["a"][0, 0] = data.draw(odd_floats)
    y = rng.poisson(1.0, data.draw(st.sampled_from([n, n + 1])))
    if data.draw(st.booleans()):
        y = y * -1
    strength = data.draw(st.sampled_from([0.0, 1e-3, 1e6, {"a": 1.0}, {"b": 1.0}, [1.0]]))
    regularizer = data.draw(st.sampled_from(["UnRegularized", "Ridge", "Lasso", "GroupLasso"]))
    try:
        model = GLM(regularizer, strength).fit(X, y)
    except InputError:
        event("InputError")
        return
    event("fitted")
    assert np.isfinite(model.intercept_).all()
