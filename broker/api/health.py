"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from broker.api.contract import problems
from broker.errors import ServiceUnavailable
from broker.web.deps import DbSession

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The broker is up and its database answers."""

    status: str


@router.get(
    "/healthz",
    operation_id="health",
    responses={503: problems("The database is unavailable", ServiceUnavailable)},
)
def healthz(db: DbSession) -> Health:
    """200 when the server runs and the database answers a query."""
    db.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return Health(status="ok")
