"""What every session of a server process shares, read-only: the built-in data sets, their
encodings and first fits (the record of compiled solvers is in ``compiles.py``).

Per-user state (settings, fits, views) is never shared: it lives in each session's
``ExplorerState``.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import panel as pn

from glm_core.linear_track import load_linear_track
from glm_core.open_field import simulate_open_field
from glm_core.simulation import simulate_history_session, simulate_session

from .compiles import solver_compiles

shared_simulation = pn.cache(simulate_session, max_items=4)
shared_open_field = pn.cache(simulate_open_field, max_items=4)
shared_history_simulation = pn.cache(simulate_history_session, max_items=4)
shared_recording = pn.cache(load_linear_track, max_items=4)


@dataclass(frozen=True)
class FirstFit:
    """A built-in data set's first fit for some settings, shared by every session that opens
    with them: the fit, its curves and maps, and (once scored) its held-out scores. Immutable:
    frozen, with read-only arrays."""

    encoding: object  # held here, so that its id (the key) cannot be reused meanwhile
    fit: object
    curves: tuple
    maps: tuple
    cv: object = None


class SharedResults:
    """The last ``size`` values of a pure computation on immutable inputs, per key: the
    encodings of built-in data sets and their first fits, computed once per server process
    (in the warm-up for the default settings) instead of once per tab. Values are frozen
    dataclasses whose arrays are made read-only, so no session can change what another sees."""

    def __init__(self, size: int):
        self._values = OrderedDict()
        self._size = size
        self._lock = threading.Lock()  # data sets are read on worker threads too

    def get(self, key):
        """The value of ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def clear(self):
        """Forget every value."""
        with self._lock:
            self._values.clear()

    def holds(self, value) -> bool:
        """Whether ``value`` itself (not an equal one) is held."""
        with self._lock:
            return any(v is value for v in self._values.values())

    def put(self, key, value):
        """Hold ``value`` (made read-only) under ``key``, dropping the least recently used
        beyond ``size``; returns ``value``."""
        read_only(value)
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value


def read_only(value):
    """``value`` with every numpy array in it (through dataclasses, tuples, lists and dicts)
    made read-only."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            read_only(getattr(value, field.name))
    elif isinstance(value, (tuple, list)):
        for item in value:
            read_only(item)
    elif isinstance(value, dict):
        for item in value.values():
            read_only(item)
    return value


shared_encodings = SharedResults(8)  # (data set, unit, encoding settings) -> Encoding
shared_first_fits = SharedResults(32)  # (id of a shared Encoding, model settings) -> FirstFit


def forget_shared() -> None:
    """Forget what this process shares and has compiled, as in a new process (for tests)."""
    solver_compiles.forget()
    shared_encodings.clear()
    shared_first_fits.clear()
