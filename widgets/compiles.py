"""Which solvers this server process has compiled, per (data shape, regularizer), and the
compiles still to do: the first page's are done before the port opens, the rest by a background
thread (most likely first), and one a tab needs sooner on a worker thread, off the event loop.

A compile runs once: a second caller of the same (shape, regularizer) waits for the first.

Compiled code is not free: XLA:CPU maps each kernel into memory on its own (three mappings), a
data set's solvers take about 11,000 mappings (jaxlib 0.10.2), and a process past the kernel's
limit (``vm.max_map_count``, 65,530 by default on Linux) crashes in its next compile. Before each
compile the record makes room: past ``ROOM_SHARE`` of the limit it clears JAX's compiled code,
and fits compile again as they are next asked for.
"""

from __future__ import annotations

import asyncio
import atexit
import queue
import threading
from functools import partial
from pathlib import Path

import jax
import panel as pn

from glm_core import explorer

# The order a server compiles a data shape's regularizers in: the default first (its evidence, for
# Best strengths), then those most often chosen next.
MOST_LIKELY_FIRST = ("Smooth", "Ridge", "Lasso", "GroupLasso", "UnRegularized")

# The share of the memory-mapping limit past which compiled code is cleared before a compile: it
# leaves room for a few data sets' solvers to compile meanwhile on other threads.
ROOM_SHARE = 0.6


def memory_mappings() -> int | None:
    """How many memory mappings this process holds (Linux), or None where that is unknown."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return maps.read().count(b"\n")
    except OSError:
        return None


def mapping_limit() -> int:
    """The kernel's limit on one process's memory mappings (Linux's default where unknown)."""
    try:
        return int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return 65530


def solver_key(encoding, regularizer: str) -> tuple:
    """What a compiled solver depends on: the encoding's array shapes (with lagged leaves, its
    padded sample count too) and the regularizer."""
    lag = getattr(encoding, "lag", None)
    return encoding.grid.sizes, None if lag is None else lag.y.shape, regularizer


class SolverCompiles:
    """The record of compiled solvers, with a lock, and the background thread that compiles the
    queued ones in order."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = set()
        self._running = {}  # key -> threading.Event, set once that compile has finished
        self._queue = queue.Queue()
        self._thread = None
        self._stopping = False
        self.queueing = False  # True once a server's set-up hands later compiles to the thread

    def ready(self, encoding, regularizer: str) -> bool:
        """Whether this regularizer's solvers are compiled for this encoding's shapes."""
        with self._lock:
            return solver_key(encoding, regularizer) in self._done

    def warmed_up(self) -> bool:
        """Whether this process ran a server's warm-up or has compiled any solver."""
        with self._lock:
            return self.queueing or bool(self._done)

    def compile(self, encoding, regularizer: str) -> None:
        """Compile the fit, cross-validation and (Ridge, Smooth) evidence of ``regularizer`` for
        ``encoding``'s shapes, once per process: if another thread is compiling it, wait."""
        key = solver_key(encoding, regularizer)
        self.make_room()
        with self._lock:
            if key in self._done:
                return
            running = self._running.get(key)
            if running is None:
                self._running[key] = threading.Event()
        if running is not None:
            running.wait()
            return
        try:
            explorer.warm_up(encoding, (regularizer,))
            with self._lock:
                self._done.add(key)
        finally:
            with self._lock:
                self._running.pop(key).set()

    def make_room(self, share: float | None = None) -> bool:
        """Clear JAX's compiled code (and this record of it) when this process holds more than
        ``share`` (default ``ROOM_SHARE``) of the memory-mapping limit. Fits running meanwhile
        keep their code; later ones compile again. Returns whether it cleared."""
        mappings = memory_mappings()
        share = ROOM_SHARE if share is None else share
        if mappings is None or mappings < share * mapping_limit():
            return False
        with self._lock:
            jax.clear_caches()
            self._done.clear()
        pn.state.log(f"cleared compiled solvers: {mappings:,} memory mappings", "info")
        return True

    def request(self, encoding, regularizers=MOST_LIKELY_FIRST) -> None:
        """Compile ``regularizers`` for ``encoding``: on the background thread in a server whose
        set-up queues compiles, else now."""
        for name in regularizers:
            if self.queueing:
                self.queue(self.compile, encoding, name)
            else:
                self.compile(encoding, name)

    def queue(self, job, *args) -> None:
        """Run ``job(*args)`` on the background thread, after what is queued before it."""
        self._queue.put((job, args))

    def start_background(self) -> threading.Thread:
        """Start (once) the daemon thread that runs the queued jobs in order, and later ones."""
        if self._thread is not None:
            return self._thread

        def run():
            while (item := self._queue.get()) is not None and not self._stopping:
                job, args = item
                try:
                    job(*args)
                except Exception as err:  # noqa: BLE001 - a failed compile is redone on demand
                    pn.state.log(f"background compile failed: {err!r}", "warning")

        self._thread = threading.Thread(target=run, name="solver-compiles", daemon=True)
        self._thread.start()
        atexit.register(self._stop)
        return self._thread

    def _stop(self) -> None:
        """End the thread and wait for it before the interpreter finalizes: a thread still
        inside XLA then aborts the process ("terminate called ... exception not rethrown")."""
        self._stopping = True  # the queued compiles are dropped; the one running finishes
        self._queue.put(None)
        self._thread.join()

    def wait_idle(self) -> None:
        """Block until every job queued so far has run (the thread must be started)."""
        done = threading.Event()
        self.queue(done.set)
        done.wait()

    def forget(self) -> None:
        """Forget every compile and queued job, as in a new process (the caller clears JAX's
        caches)."""
        with self._lock:
            self._done.clear()
        while not self._queue.empty():
            self._queue.get_nowait()
        self.queueing = False


solver_compiles = SolverCompiles()


async def compile_off_loop(encoding, regularizer: str, then) -> None:
    """Compile ``regularizer`` for ``encoding`` on a worker thread (Panel runs this coroutine
    outside the document lock, so other tabs keep answering), then run ``then()`` on this
    session's turn."""
    loop = asyncio.get_running_loop()
    await asyncio.wait([loop.run_in_executor(None, solver_compiles.compile, encoding,
                                             regularizer)])
    pn.state.execute(then, schedule=True)


async def prepare_off_loop(build, regularizer: str, then) -> None:
    """Run ``build()`` (a new encoding, e.g. with a 2-D map) and compile ``regularizer`` for its
    shapes on a worker thread (outside the document lock, so other tabs keep answering), then
    ``then(result)`` on this session's turn, where ``result()`` returns the encoding or raises
    ``build``'s error."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, build)
    await asyncio.wait([future])
    if future.exception() is None:
        await asyncio.wait([loop.run_in_executor(None, solver_compiles.compile, future.result(),
                                                 regularizer)])
    pn.state.execute(partial(then, future.result), schedule=True)


def preparing_message(regularizer: str) -> str:
    """The progress line shown while a tab waits for a solver to compile."""
    return f"Preparing the {regularizer} solver…"
