"""Retention over HTTP: brands acknowledge a grant's end and attest deletions, auditors read the
deletion report."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, status

from broker.api.contract import problems
from broker.api.grant_schemas import DeletionAttestation, DeletionIn
from broker.consent.deletion_report import DeletionReport
from broker.errors import (
    DeletionAlreadyAttested,
    DeletionNotAttested,
    EndAlreadyAcknowledged,
    GrantNotEnded,
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    RequestTooLarge,
    ValidationFailed,
)
from broker.usecases.acknowledgements import AcknowledgementIn, AcknowledgementPublic
from broker.web.deps import (
    BrandAccessDep,
    DbSession,
    ReadingAuditor,
    ReadSession,
    RuntimeDep,
)

brand_router = APIRouter(prefix="/v1/grants/{grant_id}/deletion", tags=["brand"])
acknowledgement_router = APIRouter(prefix="/v1/grants/{grant_id}/acknowledgement", tags=["brand"])
auditor_router = APIRouter(prefix="/v1/audit/reports", tags=["audit"])

_BRAND: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks grants:write (to attest) or grants:read (to look)", InsufficientScope),
}


@brand_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="attestDeletion",
    responses={
        **_BRAND,
        400: problems("The body is not JSON", MalformedRequest),
        404: problems("No such grant for this brand", NotFound),
        409: problems(
            "The grant has not ended yet, or its deletion was already attested",
            GrantNotEnded,
            DeletionAlreadyAttested,
        ),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems(
            "Unknown outcome, or completed_at in the future or before the grant ended", ValidationFailed
        ),
    },
)
def attest_deletion(
    grant_id: UUID, body: DeletionIn, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> DeletionAttestation:
    """Attest, once, that the data this ended grant gave was deleted or de-identified, and when.
    Due by the grant's `deletion_due_at` (its end plus the offer's retention). Needs `grants:write`."""
    access.require("grants:write")
    grant = runtime.retention.attest(
        db, access.brand.id, grant_id, outcome=body.outcome, completed_at=body.completed_at, note=body.note
    )
    return DeletionAttestation.of(grant)


@brand_router.get(
    "",
    operation_id="getDeletionAttestation",
    responses={
        **_BRAND,
        404: problems(
            "No such grant for this brand, or no attestation yet (with deletion_due_at)",
            NotFound,
            DeletionNotAttested,
        ),
    },
)
def get_deletion(
    grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> DeletionAttestation:
    """The grant's deletion attestation. Needs `grants:read`."""
    access.require("grants:read")
    return DeletionAttestation.of(runtime.retention.attested(db, access.brand.id, grant_id))


@acknowledgement_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="acknowledgeGrantEnd",
    responses={
        **_BRAND,
        400: problems("The body is not JSON", MalformedRequest),
        404: problems("No such grant for this brand", NotFound),
        409: problems(
            "The grant has not ended yet, or its end was already acknowledged",
            GrantNotEnded,
            EndAlreadyAcknowledged,
        ),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems(
            "Unsigned when you registered keys, a bad signature, or impossible times; `errors` points at it",
            ValidationFailed,
        ),
    },
)
def acknowledge_end(
    grant_id: UUID, body: AcknowledgementIn, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> AcknowledgementPublic:
    """Acknowledge, once, that this grant ended: you stopped processing its data (when), and deletion
    will follow (by when, within the offer's retention). Due within the acknowledgement window of the
    end (`acknowledge_by` on the grant). Signed with a registered key when you have one. Needs
    `grants:write`."""
    access.require("grants:write")
    return runtime.acknowledgements.acknowledge(db, access, grant_id, body)


@acknowledgement_router.get(
    "",
    operation_id="getGrantEndAcknowledgement",
    responses={**_BRAND, 404: problems("No such grant for this brand, or no acknowledgement yet", NotFound)},
)
def get_acknowledgement(
    grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> AcknowledgementPublic:
    """Your acknowledgement of the grant's end. Needs `grants:read`."""
    access.require("grants:read")
    found = runtime.acknowledgements.get(db, access.brand.id, grant_id)
    if found is None:
        raise NotFound(f"the end of grant '{grant_id}' was not acknowledged (POST to this URL to do so)")
    return found


@auditor_router.get(
    "/deletion",
    operation_id="getDeletionReport",
    responses={
        401: problems("Missing, unknown or revoked auditor token", NotAuthenticated),
        422: problems("Bad limit or cursor", ValidationFailed),
    },
)
def deletion_report(
    _: ReadingAuditor,
    db: ReadSession,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200, description="overdue deletions per page")] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the last page")] = None,
) -> DeletionReport:
    """Per brand: ended grants whose deletion is not yet due, overdue, attested on time or late; and
    the overdue deletions (grant, brand, due date, days overdue), most recently due first. No customer
    is named."""
    return runtime.deletion_reports.report(db, cursor=cursor, limit=limit)
