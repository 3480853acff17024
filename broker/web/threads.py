"""Where a request's blocking work runs: on the event loop itself on SQLite, in few threads on
PostgreSQL.

A request whose work is blocking (a customer's read through the ORM, a token request through Authlib)
can run it in a worker thread, so that the event loop goes on meanwhile. But that work is mostly
Python, and Python runs one thread at a time: the thread and the loop then take turns at the
interpreter lock at every call into the database driver (which lets the lock go), often on two cores,
and the turns cost more than the thread gains. Measured on the development machine (2 cores, one
process, 32 clients over HTTP, SQLite), CPU per request:

| request | in a thread | on the loop |
| --- | --- | --- |
| client-credentials token | 955 µs (1,055 req/s) | 652 µs (1,535 req/s) |
| a customer's 20 grants | 2,478 µs (403 req/s) | 2,078 µs (481 req/s) |
| the dashboard | 3,609 µs (277 req/s) | 2,997 µs (333 req/s) |

(In process, the token request cost 420 µs on the loop, 740 µs through a thread, and 540 µs through a
thread with the process held to one core: the lock moving between cores is most of the cost.) Earlier,
more threads were worse still: a list of 20 grants was served 219 times a second with anyio's 40
threads, 298 with 2, 383 with 1.

Hence `Settings.request_threads`: 0 on SQLite by default, where these reads never wait for a lock (a
deferred transaction in WAL mode, beside the writer) nor for a network, so the loop loses nothing to
them that a thread would have saved; 2 on PostgreSQL, whose round trips leave the loop and the lock
free for other requests meanwhile. The profile read does not come here: its work runs in a batch of
the audit group committer with its entry, on the loop as well on SQLite (the same measurement: 522
against 422-434 µs of CPU per read in process), in its appender thread on PostgreSQL. The price of
the loop: a read that must wait for a pooled connection (every one held by writers, in a burst of
more writes than `CONSENTRY_DATABASE_POOL_SIZE`) holds up the whole loop until one comes back, where
a thread would have held up only the reads behind it; writes on SQLite take a few milliseconds each,
and `CONSENTRY_REQUEST_THREADS=1` restores the thread.

A client-credentials token whose brand is cached (`broker.oauth.client_cache`) needs no database at
all: it is answered on the loop whatever the count (`broker.api.oauth.token`), and only one whose
brand must be looked up comes here. On PostgreSQL that served 2,800 tokens a second against 1,890
through a thread (over HTTP, one worker, 32 clients).

Only reads that run whole in one call go here (their transaction begun and ended inside it): a call
in a thread never waits for another call that needs one, so the small number cannot deadlock, and
never waits for SQLite's write lock, which would hold up every read of the process (or, on the loop,
the process). Writes (a token request that stores a token, a session's last-seen time) and a request's
unit of work that FastAPI spreads over several thread calls (a generator dependency, then the
endpoint) stay on FastAPI's own pool. The threads are plain ones fed by one queue (`RequestThreads`),
not anyio's `to_thread`, whose limiter and cancel scopes cost about 35 µs a call under load (7
against 41 µs for an empty call, 32 at once).
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
    """`work(*args)` in one of the app's request threads, awaited; at most `request_threads` run at
    once. With `request_threads` 0, on the event loop itself, at once."""
    threads = _threads(request.app)
    if threads is None:
        return work(*args)
    return await threads.run(work, *args)


def _threads(app: Any) -> RequestThreads | None:
    """The app's request threads for the running event loop (a test may serve one app from several
    loops, one after the other); None when the calls run on the loop."""
    state = app.state
    threads: RequestThreads | None = getattr(state, "request_threads", None)
    if threads is not None and threads.loop is asyncio.get_running_loop():
        return threads
    # Looked up once per app: with 0 threads this runs for every request, and the default count
    # resolves the database's path on disk.
    count: int | None = getattr(state, "request_thread_count", None)
    if count is None:
        runtime: Runtime = state.runtime
        count = state.request_thread_count = runtime.settings.request_thread_count
    if count == 0:
        return None
    threads = state.request_threads = RequestThreads(asyncio.get_running_loop(), count)
    return threads


async def stop_request_threads(app: ASGIApp) -> None:
    """At shutdown: let the calls already queued finish, then end the threads."""
    threads: RequestThreads | None = getattr(app.state, "request_threads", None)  # type: ignore[attr-defined]
    if threads is not None:
        app.state.request_threads = None  # type: ignore[attr-defined]
        await asyncio.to_thread(threads.stop)
