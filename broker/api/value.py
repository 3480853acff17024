"""The value ledger over HTTP: brands deliver and answer disputes, customers confirm and dispute,
either escalates a dispute to the auditors (`broker.value.disputes`), auditors read the per-brand
report."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from broker.api.contract import problems
from broker.errors import (
    Conflict,
    CrossSiteRefused,
    DisputeDecided,
    DisputeNotReady,
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    RequestTooLarge,
    ValidationFailed,
    ValueSettled,
)
from broker.value.schemas import (
    AnswerIn,
    DeliveryIn,
    DisputeIn,
    EscalationIn,
    EscalationPublic,
    LedgerPage,
    ObligationList,
    ObligationPublic,
    ValueReport,
)
from broker.web.deps import (
    BrandAccessDep,
    CurrentCustomer,
    DbSession,
    ReadingAuditor,
    ReadSession,
    RuntimeDep,
)

brand_router = APIRouter(prefix="/v1/grants/{grant_id}/value", tags=["brand"])
customer_router = APIRouter(prefix="/v1/me/value", tags=["customer"])
auditor_router = APIRouter(prefix="/v1/audit/reports", tags=["audit"])

_BRAND: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks grants:read or grants:write", InsufficientScope),
    404: problems("No such grant or obligation for this brand", NotFound),
}
_WRITE: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems("Not what was declared, or an invalid value; `errors` points at each", ValidationFailed),
}
_NOT_LOGGED_IN = problems("Not logged in, or the session has ended", NotAuthenticated)
_CUSTOMER: dict[int | str, dict[str, Any]] = {
    401: _NOT_LOGGED_IN,
    403: problems("Cross-site request refused", CrossSiteRefused),
    404: problems("No such obligation for this customer", NotFound),
    409: problems("The obligation is not in a state that allows this", Conflict),
}


@brand_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="deliverValue",
    responses={
        **_BRAND,
        **_WRITE,
        409: problems("That obligation was already delivered or settled", ValueSettled),
    },
)
def deliver(
    grant_id: UUID, body: DeliveryIn, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> ObligationPublic:
    """Record that the declared value was delivered, with what the customer needs to redeem it.

    Settles the named obligation, or the oldest one owed. A grant suspended for overdue value resumes
    as soon as nothing is overdue any more."""
    access.require("grants:write")
    grant = runtime.grants.for_brand(db, access.brand.id, grant_id)
    obligation = runtime.value.deliver(
        db,
        grant,
        obligation_id=body.obligation_id,
        kind=body.kind,
        amount=body.amount,
        currency=body.currency,
        redemption=body.redemption,
    )
    return runtime.value_views.one(db, obligation, for_customer=False)


@brand_router.get("", operation_id="listGrantValue", responses=_BRAND)
def list_value(grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> ObligationList:
    """What the grant owes and has delivered, oldest first; overdue ones say so."""
    access.require("grants:read")
    return runtime.value_views.for_grant(db, runtime.grants.for_brand(db, access.brand.id, grant_id))


@brand_router.post(
    "/{obligation_id}/answer",
    operation_id="answerValueDispute",
    responses={**_BRAND, **_WRITE, 409: problems("The obligation is not disputed", Conflict)},
)
def answer_dispute(
    grant_id: UUID,
    obligation_id: UUID,
    body: AnswerIn,
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
) -> ObligationPublic:
    """Answer the customer's dispute (the answer is shown to them; they confirm or keep disputing)."""
    access.require("grants:write")
    grant = runtime.grants.for_brand(db, access.brand.id, grant_id)
    obligation = runtime.disputes.answer(db, grant, obligation_id, body.answer)
    return runtime.value_views.one(db, obligation, for_customer=False)


_ESCALATION: dict[int | str, dict[str, Any]] = {
    409: problems(
        "Not disputed, the brand may still answer, the customer may still accept the answer, or the "
        "escalation was decided, declined or withdrawn",
        DisputeNotReady,
        DisputeDecided,
    ),
}
_CREATED_OR_SAME: dict[int | str, dict[str, Any]] = {
    200: {"description": "The escalation was already made; it is returned as it stands"},
    201: {"description": "Escalated"},
}


def _created(response: Response, created: bool) -> None:
    """201 for a new escalation, 200 when the same request found it made (every step is idempotent)."""
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK


@brand_router.post(
    "/{obligation_id}/escalation",
    operation_id="escalateValueDispute",
    status_code=status.HTTP_201_CREATED,
    responses={**_BRAND, **_ESCALATION, **_CREATED_OR_SAME},
)
def escalate_as_brand(
    grant_id: UUID,
    obligation_id: UUID,
    response: Response,
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
) -> EscalationPublic:
    """Ask the auditors to decide a dispute you did not settle with the customer: allowed once the
    customer rejected your answer, or when you have not answered within the answer window. It waits
    for the customer's agreement to show the auditors the dispute file."""
    access.require("grants:write")
    grant = runtime.grants.for_brand(db, access.brand.id, grant_id)
    escalation, created = runtime.disputes.escalate_as_brand(db, grant, obligation_id)
    _created(response, created)
    return runtime.dispute_views.public(db, escalation)


@customer_router.get(
    "",
    operation_id="getMyValue",
    responses={401: _NOT_LOGGED_IN, 422: problems("Bad cursor", ValidationFailed)},
)
def my_value(
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> LedgerPage:
    """What brands owe you and delivered, newest first, with how to redeem it; totals per currency."""
    return runtime.value_views.for_customer(db, customer.id, cursor=cursor, limit=limit)


@customer_router.post("/{obligation_id}/confirm", operation_id="confirmMyValue", responses=_CUSTOMER)
def confirm(
    obligation_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ObligationPublic:
    """You received it as declared (this also ends a dispute)."""
    obligation = runtime.value.confirm(db, customer.id, obligation_id)
    return runtime.value_views.one(db, obligation, for_customer=True)


@customer_router.post(
    "/{obligation_id}/dispute", operation_id="disputeMyValue", responses={**_CUSTOMER, **_WRITE}
)
def dispute(
    obligation_id: UUID, body: DisputeIn, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ObligationPublic:
    """What was delivered is not what was declared: say why; the brand can answer."""
    obligation = runtime.value.dispute(db, customer.id, obligation_id, body.reason)
    return runtime.value_views.one(db, obligation, for_customer=True)


@customer_router.delete("/{obligation_id}/dispute", operation_id="withdrawMyDispute", responses=_CUSTOMER)
def withdraw_dispute(
    obligation_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ObligationPublic:
    """Take a dispute back: the value counts as delivered, awaiting your confirmation."""
    obligation = runtime.value.withdraw_dispute(db, customer.id, obligation_id)
    return runtime.value_views.one(db, obligation, for_customer=True)


@customer_router.post(
    "/{obligation_id}/answer-rejection", operation_id="rejectDisputeAnswer", responses=_CUSTOMER
)
def reject_answer(
    obligation_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ObligationPublic:
    """You do not accept the brand's answer to your dispute: either of you may now escalate it."""
    obligation = runtime.value.reject_answer(db, customer.id, obligation_id)
    return runtime.value_views.one(db, obligation, for_customer=True)


@customer_router.post(
    "/{obligation_id}/escalation",
    operation_id="escalateMyDispute",
    status_code=status.HTTP_201_CREATED,
    responses={**_CUSTOMER, **_WRITE, **_ESCALATION, **_CREATED_OR_SAME},
)
def escalate_as_customer(
    obligation_id: UUID,
    body: EscalationIn,
    response: Response,
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
) -> EscalationPublic:
    """Ask the auditors to decide your dispute, agreeing to show them its file (what was declared and
    delivered, how to redeem it, your reason, the brand's answer): once the brand has not answered
    within the answer window, or when you reject its answer (escalating rejects it). If the brand
    escalated first, this is your agreement."""
    escalation, created = runtime.disputes.escalate_as_customer(db, customer.id, obligation_id)
    _created(response, created)
    return runtime.dispute_views.public(db, escalation)


@customer_router.delete(
    "/{obligation_id}/escalation",
    operation_id="declineEscalation",
    responses={**_CUSTOMER, 409: problems("The escalation does not wait for your agreement", DisputeDecided)},
)
def decline_escalation(
    obligation_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> EscalationPublic:
    """Do not show the dispute file to the auditors: the brand's escalation ends, and the dispute stays
    as it is (you may still escalate it yourself later)."""
    escalation = runtime.disputes.decline(db, customer.id, obligation_id)
    return runtime.dispute_views.public(db, escalation)


@auditor_router.get(
    "/value",
    operation_id="getValueReport",
    responses={401: problems("Missing, unknown or revoked auditor token", NotAuthenticated)},
)
def value_report(_: ReadingAuditor, db: ReadSession, runtime: RuntimeDep) -> ValueReport:
    """Per brand: obligations declared, delivered, confirmed, disputed and overdue, sums per currency,
    and how long the oldest overdue one has been due."""
    return runtime.value_views.report(db)
