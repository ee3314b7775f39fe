"""Long work off the server's event loop: one job at a time per session, with its progress, a
Cancel button, and superseding.

A job is ``compute(on_step)``, which takes only immutable inputs captured when the job starts
and runs on a worker thread (JAX releases the GIL while XLA runs, so the other sessions keep
answering), then ``apply(result)``, which runs on the session's turn and only if the job is
still the current one: a newer job, :meth:`Jobs.cancel` or a settings change drops it.
``on_step(done, total)`` publishes the progress and raises :class:`Cancelled` in a dropped job,
so that its thread stops at its next step. Outside a server (tests, notebooks) a job runs
synchronously.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

import panel as pn
import param

from glm_core.errors import InputError

from .compiles import solver_compiles

PROGRESS_POLL_S = 0.25  # how often a running job's progress reaches the page


def in_server() -> bool:
    """Whether this runs in a served session (with an event loop to schedule work on)."""
    return pn.state.curdoc is not None and pn.state.curdoc.session_context is not None


class Cancelled(Exception):
    """Raised by a dropped job's ``on_step``, to stop its thread."""


class Jobs(param.Parameterized):
    """A session's long jobs; ``progress`` says what the running one is doing."""

    progress = param.String(default="", doc="The running job's progress, e.g. 'Best strengths: "
                            "7/51'; empty when no job runs.")

    def __init__(self, **params):
        super().__init__(**params)
        self._current = 0  # number of the current job; a job with another number is dropped

    @property
    def running(self) -> bool:
        return bool(self.progress)

    def run(self, title: str, compute: Callable, apply: Callable,
            failed: Callable[[InputError], None]) -> None:
        """Start a job, dropping the running one.

        Args:
            title: what the page shows while it runs, e.g. "Best strengths".
            compute: ``compute(on_step) -> result``; it must not touch the session's state.
            apply: ``apply(result)``, on the session's turn.
            failed: ``failed(error)`` when ``compute`` raised an InputError.
        """
        self._current += 1
        job = self._current
        solver_compiles.make_room()  # a job may compile new shapes (e.g. a population's)
        if not in_server():
            try:
                result = compute(lambda done, total: None)
            except InputError as err:
                failed(err)
                return
            apply(result)
            return
        text = {"now": f"{title}…"}

        def on_step(done, total):
            if job != self._current:
                raise Cancelled
            text["now"] = f"{title}: {done}/{total}…"

        self.progress = text["now"]
        pn.state.execute(partial(self._off_loop, job, compute, on_step, text,
                                 partial(self._finish, job, apply, failed)))

    async def _off_loop(self, job, compute, on_step, text, finish):
        """Compute on a thread (Panel runs this coroutine outside the document lock), showing
        the progress as it changes, then finish on the session's turn."""
        future = asyncio.get_running_loop().run_in_executor(None, compute, on_step)
        shown = text["now"]
        while not future.done():
            await asyncio.wait([future], timeout=PROGRESS_POLL_S)
            if text["now"] != shown and not future.done() and job == self._current:
                shown = text["now"]
                pn.state.execute(partial(self._show, job, shown), schedule=True)
        if job == self._current:
            pn.state.execute(partial(finish, future), schedule=True)
            return
        error = future.exception()  # a dropped job's: retrieved, so asyncio does not log it
        if error is not None and not isinstance(error, (Cancelled, InputError)):
            raise error

    def _show(self, job, text):
        if job == self._current:
            self.progress = text

    def _finish(self, job, apply, failed, future):
        if job != self._current:
            future.exception()  # dropped meanwhile: retrieved, so asyncio does not log it
            return
        self.progress = ""
        try:
            result = future.result()
        except Cancelled:
            return
        except InputError as err:
            failed(err)
            return
        apply(result)

    def cancel(self) -> None:
        """Drop the running job, if any: its thread stops at its next step and its result is
        not applied."""
        if self.progress:
            self._current += 1
            self.progress = ""


def job_progress(jobs: Jobs) -> pn.Row:
    """The running job's progress and a Cancel button, shown only while a job runs."""
    text = pn.widgets.StaticText(value=jobs.progress, css_classes=["job-progress"])
    cancel = pn.widgets.Button(name="Cancel", button_type="warning", width=90,
                               css_classes=["job-cancel"])
    cancel.on_click(lambda _: jobs.cancel())
    row = pn.Row(pn.indicators.LoadingSpinner(value=True, size=20), text, cancel,
                 visible=jobs.running, sizing_mode="stretch_width")

    def show(event):
        text.value = event.new
        row.visible = bool(event.new)

    jobs.param.watch(show, "progress")
    return row
