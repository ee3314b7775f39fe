"""Wall time of a call with the time JAX spent compiling for it set apart, so that a refit that
compiles (a new regularizer or data shape) is not reported as a slow fit."""

from __future__ import annotations

import threading
import time

import jax

COMPILE_EVENTS = "/jax/core/compile/"  # prefix of jax.monitoring's tracing/lowering/compile events


class Timer:
    """A context manager: ``seconds`` of wall time inside it, of which ``compile_seconds`` JAX
    spent tracing, lowering and compiling on this thread (other threads' compiles, e.g. another
    session's, are not counted)."""

    def __init__(self):
        self.seconds = self.compile_seconds = 0.0
        self._thread = threading.get_ident()

    def _listen(self, event, duration, **kwargs):
        if event.startswith(COMPILE_EVENTS) and threading.get_ident() == self._thread:
            self.compile_seconds += duration

    def __enter__(self):
        self._thread = threading.get_ident()
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        jax.monitoring.unregister_event_duration_listener(self._listen)
