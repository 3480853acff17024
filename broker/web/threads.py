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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request

from broker.runtime import Runtime

__all__ = ["run_sync"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def run_sync(request: Request, work: Callable[[*Ts], T], *args: *Ts) -> T:
    """`work(*args)` in one of the app's request threads, awaited; at most `request_threads` run at once."""
    return await anyio.to_thread.run_sync(work, *args, limiter=_limiter(request))


def _limiter(request: Request) -> CapacityLimiter:
    """The app's limiter for the running event loop (a test may serve one app from several loops)."""
    state, loop = request.app.state, asyncio.get_running_loop()
    bound: tuple[asyncio.AbstractEventLoop, CapacityLimiter] | None = getattr(state, "request_threads", None)
    if bound is None or bound[0] is not loop:
        runtime: Runtime = state.runtime
        bound = state.request_threads = (loop, CapacityLimiter(runtime.settings.request_thread_count))
    return bound[1]
