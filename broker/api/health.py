"""Liveness and readiness.

`/healthz` says whether the broker can serve: the database answers a transaction of the kind every
audited read needs (on SQLite one that takes the write lock, so a backup or a shell holding it is
"unavailable", as the resilience tests define it). Under load that check would queue behind the
writers for every probe, so one that succeeded less than `FRESH_SECONDS` ago answers for it, and
probes that arrive while a check runs wait for that one check rather than start their own: the
endpoint stays on the event loop (no worker thread, no connection, no dependency to solve) and the
database sees at most a few checks a second whatever the load. A failure is never remembered: the
next probe checks again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from broker.api.contract import problems
from broker.db import SessionFactory
from broker.errors import ServiceUnavailable
from broker.web.plain import answer_plainly

router = APIRouter(tags=["health"])

FRESH_SECONDS = 0.25  # how long a successful check answers for: what a load balancer sees is this old
_OK = b'{"status":"ok"}'


class Health(BaseModel):
    """The broker is up and its database answers."""

    status: str


@dataclass
class HealthChecks:
    """The app's last successful check and the one running now (shared by the probes awaiting it)."""

    checked_at: float | None = None
    running: asyncio.Future[None] | None = field(default=None, repr=False)

    async def ensure(self, sessions: SessionFactory) -> None:
        """Return at once if a check succeeded within FRESH_SECONDS; else await the running check, or
        start one. Raises `ServiceUnavailable` when the database does not answer."""
        now = time.monotonic()
        if self.checked_at is not None and now - self.checked_at < FRESH_SECONDS:
            return
        running = self.running
        if running is None or running.done() or running.get_loop() is not asyncio.get_running_loop():
            running = self.running = asyncio.ensure_future(self._check(sessions, now))
        await asyncio.shield(running)  # a probe that gives up does not cancel the others' check

    async def _check(self, sessions: SessionFactory, started: float) -> None:
        await run_in_threadpool(_database_answers, sessions)  # a 503 if it does not
        self.checked_at = started


@router.get(
    "/healthz",  # documented here; answered through `answer_plainly` below
    operation_id="health",
    response_model=Health,
    responses={503: problems("The database is unavailable", ServiceUnavailable)},
)
async def healthz(request: Request) -> Response:
    """200 when the server runs and the database answers a query."""
    # (answered, a check that succeeded at most FRESH_SECONDS ago: see the module docstring)
    state = request.app.state
    checks: HealthChecks | None = getattr(state, "health_checks", None)
    if checks is None:
        checks = state.health_checks = HealthChecks()
    await checks.ensure(state.runtime.sessions)
    return Response(_OK, media_type="application/json")


def _database_answers(sessions: SessionFactory) -> None:
    with sessions() as session:  # a writer's transaction (BEGIN IMMEDIATE on SQLite), rolled back
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]


answer_plainly(router, "/healthz", healthz)  # the probe called most of all: see broker.web.plain
