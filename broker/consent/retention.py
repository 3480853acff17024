"""Retention and deletion: when a grant ends, the brand deletes what it got, and says so.

    live ──grant ends──▶ due ──deletion_due_at passes──▶ overdue
                          │                                 │
                          └──────────attest─────────────────┴──▶ attested (on time, or late)

A grant that ends (revoked or expired) gets `deletion_due_at` = its end + the offer's
`retention_days` (set by `Grants` as it moves the grant). The brand attests the deletion once
(deleted or de-identified, when), recorded in the audit log as `deletion.attested`; on time means
attested by `deletion_due_at`. The lifecycle sweep tells (`deletion.due` notice) and logs
(`deletion.overdue`) each deletion that passed its due date unattested, once.

The brand's optional note is sealed in the customer's vault (`deletion-note:<grant id>`), like the
other free texts about a customer: it could name them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast
from uuid import UUID

from sqlmodel import Session, col, select

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants
from broker.consent.models import Grant, GrantFacts
from broker.consent.notices import Notice, NoticeType
from broker.errors import (
    DeletionAlreadyAttested,
    DeletionNotAttested,
    GrantNotEnded,
    ValidationFailed,
)
from vault.profile import Vault

__all__ = [
    "AcknowledgementState",
    "AcknowledgementStatus",
    "DeletionState",
    "DeletionStatus",
    "Outcome",
    "Retention",
    "acknowledgement_state",
    "deletion_state",
    "on_time",
]

DeletionStatus = Literal["not-due", "due", "overdue", "attested"]
Outcome = Literal["deleted", "de-identified"]


@dataclass(frozen=True, slots=True)
class DeletionState:
    """Where a grant's deletion stands: not due (live), due (by `deletion_due_at`), overdue, attested."""

    status: DeletionStatus
    attested_at: datetime | None
    outcome: Outcome | None
    completed_at: datetime | None


def deletion_state(grant: GrantFacts, now: datetime, *, due_at: datetime | None) -> DeletionState:
    """The deletion state of `grant` at `now`, from its row alone and `due_at`, its `deletion_due_at`
    as it is or will be once a lapsed expiry is recorded (`broker.consent.grants.settled_ending`)."""
    status: DeletionStatus
    if grant.deletion_attested_at is not None:
        status = "attested"
    elif due_at is None:
        status = "not-due"
    else:
        status = "overdue" if now >= due_at else "due"
    return DeletionState(
        status=status,
        attested_at=grant.deletion_attested_at,
        outcome=cast("Outcome | None", grant.deletion_outcome),
        completed_at=grant.deletion_completed_at,
    )


AcknowledgementStatus = Literal["not-due", "awaiting", "overdue", "acknowledged", "not-required"]


@dataclass(frozen=True, slots=True)
class AcknowledgementState:
    """Where the brand's acknowledgement of a grant's end stands (`broker.usecases.acknowledgements`):
    not due (live), awaiting (by `acknowledge_by`), overdue, acknowledged; not required for a grant
    that ended before brands had to acknowledge."""

    status: AcknowledgementStatus
    acknowledge_by: datetime | None
    acknowledged_at: datetime | None


def acknowledgement_state(
    grant: GrantFacts, now: datetime, *, ended_at: datetime | None, window: timedelta
) -> AcknowledgementState:
    """The acknowledgement state of `grant` at `now`; `ended_at` its effective end (None while live:
    a lapsed expiry counts from `expires_at` before the sweep records it)."""
    due, done = grant.end_ack_due_at, grant.end_acknowledged_at
    if done is not None:
        return AcknowledgementState("acknowledged", due, done)
    if ended_at is None:
        return AcknowledgementState("not-due", None, None)
    if due is None and grant.deletion_due_at is not None:  # ended (and recorded) before the duty existed
        return AcknowledgementState("not-required", None, None)
    due = due or ended_at + window
    return AcknowledgementState("overdue" if now > due else "awaiting", due, None)


def on_time(grant: Grant) -> bool:
    """Attested no later than the deletion was due."""
    assert grant.deletion_attested_at is not None and grant.deletion_due_at is not None
    return grant.deletion_attested_at <= grant.deletion_due_at


@dataclass(frozen=True, slots=True)
class Retention:
    """Deletion attestations and overdue deletions; the clock is injected."""

    clock: Callable[[], datetime]
    audit: AuditLog
    grants: Grants
    vault: Vault

    def attest(
        self,
        session: Session,
        brand_id: UUID,
        grant_id: UUID,
        *,
        outcome: Outcome,
        completed_at: datetime,
        note: str | None,
    ) -> Grant:
        """The brand attests that it deleted (or de-identified) the grant's data at `completed_at`.

        404 for another brand's grant; 409 `grant-not-ended` for a live one, `deletion-already-attested`
        for a second attestation; 422 (`/completed_at`) for a time in the future or before the end."""
        grant = self.grants.for_brand(session, brand_id, grant_id)
        now = self.clock()
        if grant.deletion_due_at is None:
            raise GrantNotEnded(
                f"grant '{grant.id}' is {grant.status.value} until {grant.expires_at.isoformat()}; deletion "
                f"is attested after the grant ends (end it now with DELETE /v1/grants/{grant.id})",
                expires_at=grant.expires_at.isoformat(),
            )
        if grant.deletion_attested_at is not None:
            raise DeletionAlreadyAttested(
                f"the deletion for grant '{grant.id}' was already attested at "
                f"{grant.deletion_attested_at.isoformat()}; an attestation is made once",
            )
        ended_at = grant.status_changed_at
        if not ended_at <= completed_at <= now:
            detail = (
                f"completed_at must be between the grant's end ({ended_at.isoformat()}) and now "
                f"({now.isoformat()})"
            )
            raise ValidationFailed(detail, errors=[{"pointer": "/completed_at", "detail": detail}])
        grant.deletion_outcome, grant.deletion_completed_at = outcome, completed_at
        grant.deletion_attested_at = now
        session.add(grant)
        if note and self.vault.exists(session, grant.customer_id):  # no vault once the account is gone
            self.vault.put_secret(session, grant.customer_id, f"deletion-note:{grant.id}", note)
        self.audit.record(
            session,
            Kind.DELETION_ATTESTED,
            actor=Actor.BRAND,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            outcome=outcome,
            completed_at=completed_at,
            due_at=grant.deletion_due_at,
        )
        return grant

    def attested(self, session: Session, brand_id: UUID, grant_id: UUID) -> Grant:
        """A brand's grant whose deletion was attested; 404 `deletion-not-attested` (with the due date)
        when it was not, or 404 for another brand's grant."""
        grant = self.grants.for_brand(session, brand_id, grant_id)
        if grant.deletion_attested_at is None:
            due = grant.deletion_due_at
            when = (
                f"it is due by {due.isoformat()}"
                if due is not None
                else "the grant has not ended, so none is due yet"
            )
            raise DeletionNotAttested(
                f"no deletion was attested for grant '{grant.id}': {when}; "
                f"attest with POST /v1/grants/{grant.id}/deletion",
                deletion_due_at=None if due is None else due.isoformat(),
            )
        return grant

    def tell_overdue(self, session: Session, *, limit: int = 500) -> int:
        """Tell (`deletion.due` notice) and log (`deletion.overdue`) up to `limit` deletions that passed
        their due date unattested and were not told yet, each once. Returns how many; the caller commits."""
        now = self.clock()
        overdue = (
            select(Grant)
            .where(col(Grant.deletion_notified_at).is_(None), col(Grant.deletion_attested_at).is_(None))
            .where(col(Grant.deletion_due_at) <= now)
            .order_by(col(Grant.deletion_due_at), col(Grant.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        grants = list(session.exec(overdue))
        for grant in grants:
            assert grant.deletion_due_at is not None
            grant.deletion_notified_at = now
            session.add(grant)
            self.audit.record(
                session,
                Kind.DELETION_OVERDUE,
                actor=Actor.BROKER,
                customer_id=grant.customer_id,
                brand_id=grant.brand_id,
                grant=grant.id,
                due_at=grant.deletion_due_at,
            )
            self.grants.notices.publish(
                session,
                Notice(
                    type=NoticeType.DELETION_DUE,
                    at=now,
                    actor=Actor.BROKER,
                    grant_id=grant.id,
                    brand_id=grant.brand_id,
                    customer_id=grant.customer_id,
                    data={"deletion_due_at": grant.deletion_due_at.isoformat(), "status": "overdue"},
                ),
            )
        return len(grants)
