"""Run-wide test set-up: one on-disk JAX compilation cache shared by the xdist workers, the
``@group`` node ids that ``--dist loadgroup`` schedules by, and ``fresh_process`` (a cold server
process, for compile counts). The browser fixtures are in ``tests/browser/conftest.py``."""

from __future__ import annotations

import os
import shutil
import tempfile

import jax
import pytest
from _pytest.nodeid import coerce_node_id

JAX_CACHE = "GLM_EXPLORER_TEST_JAX_CACHE"


def pytest_configure(config):
    """One on-disk compilation cache for the whole run, shared by the xdist workers (they inherit
    the directory from the controlling process). Tests that clear JAX's caches to start cold then
    load a solver compiled before instead of compiling it again (about 50 s per cold start). Compile
    counts are unchanged: JAX reports a load from this cache as a backend compile too."""
    if not hasattr(config, "workerinput"):  # the controlling process, or a run without xdist
        os.environ[JAX_CACHE] = tempfile.mkdtemp(prefix="glm-explorer-jax-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(JAX_CACHE), ignore_errors=True))
    jax.config.update("jax_compilation_cache_dir", os.environ[JAX_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def pytest_collection_modifyitems(config, items):
    """Give ``--dist loadgroup`` the ``@group`` node ids it schedules by. pytest-xdist 3.8 writes
    them to ``item._nodeid``, which pytest 9 no longer reads (it keeps ids in ``item._id``), so
    its groups are silently spread over the workers; without loadgroup this does nothing."""
    if not getattr(config.option, "loadgroup", False):  # set in the workers of --dist loadgroup
        return
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None and "@" not in item.nodeid.rpartition("]")[2]:
            item._id = coerce_node_id(f"{item.nodeid}@{mark.args[0]}")


@pytest.fixture(autouse=True, scope="module")
def room_for_compiled_code():
    """Between test modules, clear JAX's compiled code once a worker holds more than a third of
    the memory-mapping limit: a worker runs hundreds of tests' solvers, and past the limit XLA
    crashes (the served app makes room the same way, at a higher share, before each compile)."""
    from widgets.compiles import solver_compiles

    solver_compiles.make_room(share=0.35)
    yield


@pytest.fixture
def fresh_process():
    """As in a newly started server process: no compiled solvers, no record of them, nothing
    shared between sessions; a compile count then holds alone and in any order."""
    import jax

    from widgets.shared import forget_shared

    jax.clear_caches()
    forget_shared()
    yield
    forget_shared()  # nor does it leave its warm-up's settings to later tests
