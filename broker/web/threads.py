"""The worker threads that run a request's blocking work: few, on purpose.

A request whose work is blocking (a customer's read through the ORM, a token request through Authlib)
runs it in a worker thread, so the event loop stays free. But that work is mostly Python, and Python
runs one thread at a time: with anyio's default of 40 threads, 32 concurrent requests hand the
interpreter lock back and forth between 32 threads, and the hand-offs cost more than the work. Measured
on the development machine (2 cores, a customer's list of 20 grants, 32 clients, one process): 219
requests/s with 40 threads, 298 with 2, 383 with 1 on SQLite; 239, 281 and 258 on PostgreSQL, whose
round trips leave the lock free for a second thread. Hence `Settings.request_threads`: by default 1
on SQLite and 2 on PostgreSQL.

Only reads that run whole in one call go here (their transaction begun and ended inside it): a call
holding the limiter never waits for another call that needs it, so the small number cannot deadlock,
and never waits for SQLite's write lock, which would hold up every read of the process. Writes (a
token request that stores a token, a session's last-seen time) and a request's unit of work that
FastAPI spreads over several thread calls (a generator dependency, then the endpoint) stay on
FastAPI's own pool.

Even one thread costs: a request's work and the event loop then take turns at the interpreter lock,
at every call into the database driver (which lets the lock go), often on two cores. Measured in
process (32 concurrent client-credentials token requests, SQLite): 420 µs of CPU per request run on
the loop, 740 µs through a thread, 540 µs through a thread with the process held to one core. The
threads here are plain ones fed by one queue (`RequestThreads`), not anyio's `to_thread`, whose
limiter and cancel scopes cost about 35 µs a call under load (7 against 41 µs for an empty call,
32 at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple

from starlette.requests import Request
from starlette.types import ASGIApp

from broker.runtime import Runtime

__all__ = ["RequestThreads", "run_sync", "stop_request_threads"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class RequestThreads:
    """`count` threads that run blocking calls for one event loop's requests.

    A call is a job on one queue; the thread that takes it sets its outcome on the loop: what anyio's
    `to_thread.run_sync` does with a capacity limiter, without the limiter, cancel scopes and per-call
    bookkeeping. There are never more than `count` calls running, since there are `count` threads.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self.loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"consentry-request-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    async def run(self, work: Callable[[*Ts], T], *args: *Ts) -> T:
        """`work(*args)` in one of the threads, awaited. A cancelled caller still waits for the call
        to end before the cancellation goes on (as anyio does): the call's transaction is over by then."""
        future: asyncio.Future[T] = self.loop.create_future()
        self._jobs.put((future, work, args))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.wait([future])
            raise

    def stop(self) -> None:
        """Finish the calls already queued, then end the threads (blocking: call it off the loop)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, work, args = job
            try:
                outcome, error = work(*args), None
            except BaseException as exc:  # the caller gets it, as `await` would
                outcome, error = None, exc
            try:
                self.loop.call_soon_threadsafe(_settle, future, outcome, error)
            except RuntimeError:
                return  # the loop is closed: nobody is waiting any more


def _settle(future: asyncio.Future[Any], outcome: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(outcome)


async def run_sync(request: Request, work: Callable[[*Ts], T], *args: *Ts) -> T:
    """`work(*args)` in one of the app's request threads, awaited; at most `request_threads` run at once."""
    return await _threads(request.app).run(work, *args)


def _threads(app: Any) -> RequestThreads:
    """The app's request threads for the running event loop (a test may serve one app from several
    loops, one after the other)."""
    state, loop = app.state, asyncio.get_running_loop()
    threads: RequestThreads | None = getattr(state, "request_threads", None)
    if threads is None or threads.loop is not loop:
        runtime: Runtime = state.runtime
        threads = state.request_threads = RequestThreads(loop, runtime.settings.request_thread_count)
    return threads


async def stop_request_threads(app: ASGIApp) -> None:
    """At shutdown: let the calls already queued finish, then end the threads."""
    threads: RequestThreads | None = getattr(app.state, "request_threads", None)  # type: ignore[attr-defined]
    if threads is not None:
        app.state.request_threads = None  # type: ignore[attr-defined]
        await asyncio.to_thread(threads.stop)
