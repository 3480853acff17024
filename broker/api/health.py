"""Liveness and readiness.

`/healthz` says whether the broker can serve: the database answers a transaction of the kind every
audited read needs (on SQLite one that takes the write lock, so a backup or a shell holding it is
"unavailable", as the resilience tests define it). Under load that check would queue behind the
writers for every probe, so one that succeeded less than `FRESH_SECONDS` ago answers for it: the
endpoint stays on the event loop (no worker thread, no connection) and the database sees at most a
few checks a second whatever the load. A failure is never remembered: the next probe checks again.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import text

from broker.api.contract import problems
from broker.db import SessionFactory
from broker.errors import ServiceUnavailable
from broker.web.deps import RuntimeDep

router = APIRouter(tags=["health"])

FRESH_SECONDS = 0.25  # how long a successful check answers for: what a load balancer sees is this old


class Health(BaseModel):
    """The broker is up and its database answers."""

    status: str


@router.get(
    "/healthz",
    operation_id="health",
    responses={503: problems("The database is unavailable", ServiceUnavailable)},
)
async def healthz(request: Request, runtime: RuntimeDep) -> Health:
    """200 when the server runs and the database answers a query."""
    # (answered, a check that succeeded at most FRESH_SECONDS ago: see the module docstring)
    state, started = request.app.state, time.monotonic()
    checked_at: float | None = getattr(state, "health_checked_at", None)
    if checked_at is None or started - checked_at >= FRESH_SECONDS:
        await run_in_threadpool(_database_answers, runtime.sessions)  # a 503 if it does not
        state.health_checked_at = started
    return Health(status="ok")


def _database_answers(sessions: SessionFactory) -> None:
    with sessions() as session:  # a writer's transaction (BEGIN IMMEDIATE on SQLite), rolled back
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
