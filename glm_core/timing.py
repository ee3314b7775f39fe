"""Wall time of a call with the time JAX spent compiling for it set apart, so that a refit that
compiles (a new regularizer or data shape) is not reported as a slow fit."""

from __future__ import annotations

import threading
import time

import jax

COMPILE_EVENTS = "/jax/core/compile/"  # prefix of jax.monitoring's tracing/lowering/compile events


_running = threading.local()  # per thread: its Timers, innermost last


def _listen(event, duration, **kwargs):
    if event.startswith(COMPILE_EVENTS):
        for timer in getattr(_running, "timers", ()):
            timer.compile_seconds += duration


# One listener for the process, registered once: jax.monitoring has no public way to remove a
# listener before jax 0.9, and the project supports jax 0.4.30. JAX calls it on the compiling
# thread, so each Timer counts only its own thread's compiles.
jax.monitoring.register_event_duration_secs_listener(_listen)


class Timer:
    """A context manager: ``seconds`` of wall time inside it, of which ``compile_seconds`` JAX
    spent tracing, lowering and compiling on this thread (other threads' compiles, e.g. another
    session's, are not counted)."""

    def __init__(self):
        self.seconds = self.compile_seconds = 0.0

    def __enter__(self):
        if not hasattr(_running, "timers"):
            _running.timers = []
        _running.timers.append(self)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._start
        _running.timers.remove(self)
