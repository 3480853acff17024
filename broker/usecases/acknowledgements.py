"""Withdrawal acknowledged by the brand: when a grant ends, its brand says it stopped.

    grant ends ──(end_ack_due_at = end + window)──▶ awaiting ──acknowledge──▶ acknowledged (on time, or late)
                                                       │
                                                       └── half the window passed: one reminder (webhook)

Whoever ended the grant (the customer, the brand, expiry, the account's deletion), the brand must
state within `CONSENTRY_END_ACKNOWLEDGEMENT_HOURS` (72) that it has stopped processing the grant's
data (`stopped_processing_at`, between the end and now) and when deletion will follow
(`deletion_by`, no later than the offer's retention allows: the grant's `deletion_due_at`).

A brand that registered keys (`jwks`) must sign the statement: a compact JWS, `typ`
`grant-end-ack+jwt`, claims `iss` (its client id), `aud` (the broker's issuer), `iat`, `grant_id`,
`stopped_processing_at` and `deletion_by` (RFC 3339), checked by `broker.oauth.statements`. A brand
without keys sends the two times; the statement is then bound to its client authentication: the
access token it came with (its `jti`), issued to it after authenticating as the client.

The acknowledgement is logged (`grant.end_acknowledged`), told (webhook `grant.end_acknowledged`) and
attached to the customer's termination receipts as a receipt of its own (`end-acknowledged`, with the
brand's JWS and the key that signed it), which verifies offline like any other. The lifecycle sweep
reminds the brand once, at half the window (webhook `grant.acknowledgement_due`). Unacknowledged ends
are on the auditor's deletion report and on the customer's grant page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import Session, col, select

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog, QueuedEntry
from broker.consent.grants import Grants
from broker.consent.models import EndAcknowledgement, Grant
from broker.consent.notices import Notice, NoticeType
from broker.errors import EndAlreadyAcknowledged, GrantNotEnded, ValidationFailed
from broker.oauth.bearer import BrandAccess
from broker.oauth.statements import verify_statement

__all__ = ["ACK_TYPE", "AcknowledgementIn", "AcknowledgementPublic", "EndAcknowledgements"]

ACK_TYPE = "grant-end-ack+jwt"


class AcknowledgementIn(BaseModel):
    """The brand's statement: signed (`statement`) when it registered keys, else the two times."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    statement: str | None = Field(default=None, max_length=16_000)
    """A compact JWS (typ grant-end-ack+jwt) signed with a key of your registered jwks; required when
    you registered keys, and then the only member."""
    stopped_processing_at: AwareDatetime | None = None
    """When you stopped processing the grant's data: between its end and now (unsigned statements)."""
    deletion_by: AwareDatetime | None = None
    """When deletion will follow: no later than the grant's deletion_due_at (unsigned statements)."""


class AcknowledgementPublic(BaseModel):
    """An acknowledgement as recorded."""

    grant_id: UUID
    acknowledged_at: datetime
    acknowledge_by: datetime = Field(description="the deadline: the grant's end plus the window")
    on_time: bool
    stopped_processing_at: datetime
    deletion_by: datetime
    method: str = Field(description="signed (a JWS by a registered key) or client-authentication")
    statement: str | None = Field(description="the brand's JWS, as sent, when signed")
    receipt_id: UUID = Field(description="the customer's receipt of it")

    @classmethod
    def of(cls, row: EndAcknowledgement, grant: Grant) -> AcknowledgementPublic:
        """The public shape of `row`, the acknowledgement of `grant`."""
        assert grant.end_ack_due_at is not None
        return cls(
            grant_id=row.grant_id,
            acknowledged_at=row.acknowledged_at,
            acknowledge_by=grant.end_ack_due_at,
            on_time=row.acknowledged_at <= grant.end_ack_due_at,
            stopped_processing_at=row.stopped_processing_at,
            deletion_by=row.deletion_by,
            method=row.method,
            statement=row.statement,
            receipt_id=row.receipt_id,
        )


class _Times(BaseModel):
    """The two times of a signed statement's claims, parsed as the unsigned body's are."""

    stopped_processing_at: AwareDatetime
    deletion_by: AwareDatetime


@dataclass(frozen=True, slots=True)
class EndAcknowledgements:
    """Record the brand's acknowledgements; remind those that are late. The clock is injected."""

    clock: Callable[[], datetime]
    audit: AuditLog
    grants: Grants
    issuer: str

    def acknowledge(
        self, session: Session, access: BrandAccess, grant_id: UUID, draft: AcknowledgementIn
    ) -> AcknowledgementPublic:
        """Record the brand's acknowledgement that `grant_id` ended. 404 for another brand's grant; 409
        `grant-not-ended` for a live one and `end-already-acknowledged` for a second; 422 for a
        statement that is unsigned when it must be, badly signed, or states impossible times."""
        grant = self.grants.for_brand(session, access.brand.id, grant_id)
        if grant.end_ack_due_at is None or grant.deletion_due_at is None:
            raise GrantNotEnded(
                f"grant '{grant.id}' is {grant.status.value} until {grant.expires_at.isoformat()}: its end "
                f"is acknowledged once it has ended (end it now with DELETE /v1/grants/{grant.id})",
                expires_at=grant.expires_at.isoformat(),
            )
        earlier = session.get(EndAcknowledgement, grant.id)
        if earlier is not None:
            raise EndAlreadyAcknowledged(
                f"the end of grant '{grant.id}' was acknowledged at {earlier.acknowledged_at.isoformat()}; "
                "an acknowledgement is made once (read it at GET /v1/grants/{id}/acknowledgement)"
            )
        now = self.clock()
        row = self._statement(access, grant, draft, now)
        self._check_times(grant, row, now, signed=row.statement is not None)
        grant.end_acknowledged_at = now
        session.add_all([row, grant])
        entry = self.audit.record(
            session,
            Kind.GRANT_END_ACKNOWLEDGED,
            actor=Actor.BRAND,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            stopped_at=row.stopped_processing_at,
            deletion_by=row.deletion_by,
            method=row.method,
            due_at=grant.end_ack_due_at,
        )
        data = {"acknowledged_at": now.isoformat(), "on_time": now <= grant.end_ack_due_at}
        self._publish(session, grant, NoticeType.GRANT_END_ACKNOWLEDGED, Actor.BRAND, data, entry)
        return AcknowledgementPublic.of(row, grant)

    def get(self, session: Session, brand_id: UUID, grant_id: UUID) -> AcknowledgementPublic | None:
        """The brand's acknowledgement of its grant's end, if it made one (another brand's grant: 404)."""
        grant = self.grants.for_brand(session, brand_id, grant_id)
        row = session.get(EndAcknowledgement, grant.id)
        return None if row is None else AcknowledgementPublic.of(row, grant)

    def remind(self, session: Session, *, limit: int = 500) -> int:
        """Remind (webhook `grant.acknowledgement_due`) each brand whose acknowledgement is half its
        window from due or later, once. Returns how many; the caller commits."""
        now = self.clock()
        due = (
            select(Grant)
            .where(col(Grant.end_acknowledged_at).is_(None), col(Grant.end_ack_reminded_at).is_(None))
            .where(col(Grant.end_ack_due_at) <= now + self.grants.end_ack_window / 2)
            .order_by(col(Grant.end_ack_due_at), col(Grant.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        grants = list(session.exec(due))
        for grant in grants:
            assert grant.end_ack_due_at is not None
            grant.end_ack_reminded_at = now
            session.add(grant)
            data = {
                "acknowledge_by": grant.end_ack_due_at.isoformat(),
                "status": "overdue" if now > grant.end_ack_due_at else "due",
            }
            self._publish(session, grant, NoticeType.GRANT_ACKNOWLEDGEMENT_DUE, Actor.BROKER, data, None)
        return len(grants)

    # Internals

    def _statement(
        self, access: BrandAccess, grant: Grant, draft: AcknowledgementIn, now: datetime
    ) -> EndAcknowledgement:
        """The acknowledgement the body states: verified from the JWS, or bound to the token."""
        common: dict[str, Any] = {
            "grant_id": grant.id,
            "brand_id": grant.brand_id,
            "acknowledged_at": now,
            "receipt_id": uuid4(),
        }
        if access.brand.signing_jwks():
            if draft.statement is None or draft.stopped_processing_at or draft.deletion_by:
                raise ValidationFailed.at(
                    "/statement",
                    f"you registered keys (jwks): send only statement, a JWS (typ {ACK_TYPE}) signed with "
                    "one of them, whose claims hold grant_id, stopped_processing_at and deletion_by",
                )
            signed = verify_statement(
                access.brand, draft.statement, typ=ACK_TYPE, audience=self.issuer, now=now
            )
            if signed.claims.get("grant_id") != str(grant.id):
                raise ValidationFailed.at(
                    "/statement",
                    f"the statement is about grant {signed.claims.get('grant_id')!r}, not '{grant.id}'",
                )
            try:
                times = _Times.model_validate(signed.claims)
            except ValidationError as exc:
                where = ".".join(str(p) for p in exc.errors()[0]["loc"])
                raise ValidationFailed.at(
                    "/statement", f"the statement's {where} must be an RFC 3339 time with its offset"
                ) from None
            return EndAcknowledgement(
                **common,
                stopped_processing_at=times.stopped_processing_at,
                deletion_by=times.deletion_by,
                method="signed",
                statement=draft.statement,
                brand_key=signed.key,
            )
        if draft.statement is not None:
            raise ValidationFailed.at(
                "/statement", "you registered no keys (jwks) to sign with: send the two times instead"
            )
        for name in ("stopped_processing_at", "deletion_by"):
            if getattr(draft, name) is None:
                raise ValidationFailed.at(f"/{name}", f"{name} is required: an RFC 3339 time with its offset")
        assert draft.stopped_processing_at is not None and draft.deletion_by is not None
        return EndAcknowledgement(
            **common,
            stopped_processing_at=draft.stopped_processing_at,
            deletion_by=draft.deletion_by,
            method="client-authentication",
            token_id=str(access.claims.get("jti")) if access.claims.get("jti") else None,
        )

    @staticmethod
    def _check_times(grant: Grant, row: EndAcknowledgement, now: datetime, *, signed: bool) -> None:
        ended, latest = grant.status_changed_at, grant.deletion_due_at
        assert latest is not None
        if not ended <= row.stopped_processing_at <= now:
            raise ValidationFailed.at(
                "/statement" if signed else "/stopped_processing_at",
                f"stopped_processing_at must be between the grant's end ({ended.isoformat()}) and now "
                f"({now.isoformat()})",
            )
        if not row.stopped_processing_at <= row.deletion_by <= latest:
            raise ValidationFailed.at(
                "/statement" if signed else "/deletion_by",
                f"deletion_by must be after stopped_processing_at and no later than the offer's retention "
                f"allows ({latest.isoformat()})",
            )

    def _publish(
        self,
        session: Session,
        grant: Grant,
        type: NoticeType,
        actor: Actor,
        data: Mapping[str, object],
        entry: QueuedEntry | None,
    ) -> None:
        self.grants.notices.publish(
            session,
            Notice(
                type=type,
                at=self.clock(),
                actor=actor,
                grant_id=grant.id,
                brand_id=grant.brand_id,
                customer_id=grant.customer_id,
                data=data,
                entry=entry,
            ),
        )
