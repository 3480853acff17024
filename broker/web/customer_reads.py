"""A customer's read-only requests (their grant list, one grant, the portal's dashboard), each run in one
call in a request thread (`broker.web.threads`): authenticate, read, and shape the answer there, then
send it.

Such a route is `async` and calls `customer_read` once, instead of declaring a read session, the
session check and the customer as sync dependencies: FastAPI runs every sync dependency and endpoint in
a worker thread of its own, and under load those hand-offs cost more than the work of a small page.

The request takes no lock a writer needs: it reads in a read-only transaction (`ReadSession`'s), and a
write through it fails. The session is still checked on every request (revoked, past its expiry or
idle: refused), and its last-seen time, when due (at most once a minute, `Accounts.seen_due`), is
written after the read in a short transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from broker.accounts.service import LiveSession
from broker.errors import NotAuthenticated
from broker.runtime import Runtime
from broker.web.deps import SESSION_COOKIE, session_token
from broker.web.threads import run_sync

log = logging.getLogger("consentry.sessions")

T = TypeVar("T")
CustomerRead = Callable[[Session, LiveSession], T]


async def customer_read(request: Request, runtime: Runtime, read: CustomerRead[T]) -> T:
    """`read(session, customer_session)` for the customer behind the bearer token or session cookie
    (else NotAuthenticated, a 401 problem), in one call in a request thread."""
    result, current = await run_sync(request, _run, runtime, session_token(request, runtime), read)
    await _note_seen_if_due(runtime, current)
    return result


async def portal_read(request: Request, runtime: Runtime, read: CustomerRead[T]) -> T | None:
    """`read(session, customer_session)` for the customer behind the portal's cookie, in one call in a
    request thread; None when there is no live session (the page sends the browser to log in)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    outcome = await run_sync(request, _run_if_live, runtime, token, read)
    if outcome is None:
        return None
    result, current = outcome
    await _note_seen_if_due(runtime, current)
    return result


def _run(runtime: Runtime, token: str, read: CustomerRead[T]) -> tuple[T, LiveSession]:
    with runtime.read_sessions() as db:
        current = runtime.accounts.live_session(db, token)
        return read(db, current), current


def _run_if_live(runtime: Runtime, token: str, read: CustomerRead[T]) -> tuple[T, LiveSession] | None:
    with runtime.read_sessions() as db:
        try:
            current = runtime.accounts.live_session(db, token)
        except NotAuthenticated:
            return None
        return read(db, current), current


async def _note_seen_if_due(runtime: Runtime, current: LiveSession) -> None:
    # After the read transaction has ended: the write is its own, short, and only once a minute. It
    # runs on FastAPI's own thread pool, not in a request thread: waiting for SQLite's write lock there
    # would hold up every other read of the process. It is bookkeeping: if the database refuses it (a
    # writer holds the lock past the timeout), the read still answers and the next request, still
    # due, tries again.
    if runtime.accounts.seen_due(current):
        await run_in_threadpool(_note_seen, runtime, current)


def _note_seen(runtime: Runtime, current: LiveSession) -> None:
    try:
        with runtime.sessions() as db:
            runtime.accounts.note_seen(db, current.id)
            db.commit()
    except SQLAlchemyError as exc:
        log.warning("a session's last-seen time was not written (%s); the next request tries again",
                    type(exc).__name__)  # fmt: skip
