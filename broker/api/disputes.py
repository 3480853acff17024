"""Escalated disputes for the auditors: the list, one with its file, and the decision.

Every route needs an auditor token. Opening an escalation is logged (the file is the customer's
data); deciding one is idempotent: the same decision again answers 200 with the escalation as it is.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from broker.api.contract import problems
from broker.errors import (
    DisputeDecided,
    DisputeNotReady,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    RequestTooLarge,
    ValidationFailed,
)
from broker.usecases.dispute_views import AuditedEscalation, StatusFilter
from broker.value.schemas import DecisionIn, EscalationPage, EscalationPublic
from broker.web.deps import CurrentAuditor, DbSession, ReadingAuditor, ReadSession, RuntimeDep

router = APIRouter(prefix="/v1/audit/disputes", tags=["audit"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("No auditor token, or an unknown or revoked one", NotAuthenticated),
}
_ONE: dict[int | str, dict[str, Any]] = {**_AUTH, 404: problems("No such escalation", NotFound)}


@router.get(
    "",
    operation_id="listDisputes",
    responses={**_AUTH, 422: problems("Bad status or cursor", ValidationFailed)},
)
def list_disputes(
    _: ReadingAuditor,
    db: ReadSession,
    runtime: RuntimeDep,
    status_: Annotated[StatusFilter, Query(alias="status")] = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EscalationPage:
    """Escalated disputes, newest first: the open ones (waiting for a decision) unless `status` asks
    for others, or `all`."""
    return runtime.dispute_views.page(db, status=status_, cursor=cursor, limit=limit)


@router.get("/{escalation_id}", operation_id="getDispute", responses=_ONE)
def get_dispute(
    escalation_id: UUID, auditor: CurrentAuditor, db: DbSession, runtime: RuntimeDep
) -> AuditedEscalation:
    """One escalation with the dispute file the customer agreed to show (each opening is logged, and the
    customer sees it) and, once decided, the decision's signed receipt."""
    return runtime.dispute_views.show(db, auditor, escalation_id)


@router.post(
    "/{escalation_id}/decision",
    operation_id="decideDispute",
    status_code=status.HTTP_201_CREATED,
    responses={
        **_ONE,
        200: {"description": "The same auditor made the same decision before; it is returned as it stands"},
        201: {"description": "Decided"},
        400: problems("The body is not JSON", MalformedRequest),
        409: problems(
            "The customer has not agreed to show the file yet, or the escalation was decided otherwise, "
            "declined or withdrawn",
            DisputeNotReady,
            DisputeDecided,
        ),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems("No outcome, or reasons missing or too short", ValidationFailed),
    },
)
def decide_dispute(
    escalation_id: UUID,
    body: DecisionIn,
    response: Response,
    auditor: CurrentAuditor,
    db: DbSession,
    runtime: RuntimeDep,
) -> EscalationPublic:
    """Decide an open escalation, with reasons for both parties. Upheld: the obligation is owed again,
    due within the redelivery window; missed, the grant is suspended as for overdue value. Rejected:
    the value counts as delivered. The decision is logged, signed as a receipt for the customer, and
    sent to the brand (webhook `dispute.decided`) and the customer (mail)."""
    escalation, decided = runtime.dispute_views.decide(db, auditor, escalation_id, body.outcome, body.reasons)
    response.status_code = status.HTTP_201_CREATED if decided else status.HTTP_200_OK
    return escalation
