"""API shapes of the value ledger: deliveries, obligations, the customer's ledger, the auditor's report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from broker.consent.offer_schemas import Amount, Currency, ValueKind
from broker.value.amounts import from_minor
from broker.value.models import (
    Delivery,
    Escalation,
    EscalationStatus,
    Obligation,
    ObligationStatus,
    Outcome,
    Schedule,
)

State = Literal["owed", "overdue", "delivered", "confirmed", "disputed", "cancelled"]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class DeliveryIn(BaseModel):
    """A brand records what it delivered, and what the customer needs to redeem it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    obligation_id: UUID | None = None
    """Which obligation this settles; by default the oldest one still owed."""
    kind: ValueKind
    """Must be the declared kind."""
    amount: Amount | None = None
    """Exact decimal string; at least the declared amount. Leave out for a service."""
    currency: Currency | None = None
    """ISO 4217; the declared currency."""
    redemption: _Text
    """What the customer needs: a voucher code, a link, a reference. Encrypted; only the customer sees it."""


class DisputeIn(BaseModel):
    """Why the customer disputes a delivery."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    reason: _Text
    """In the customer's words (encrypted; the brand sees it to answer)."""


class AnswerIn(BaseModel):
    """The brand's answer to a dispute."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    answer: _Text


class EscalationIn(BaseModel):
    """The customer asks the auditors to decide, and agrees to show them the dispute file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    share_file_with_auditors: Literal[True]
    """Must be true: an auditor can decide only with the file (what was declared and delivered, how to
    redeem it, your reason, the brand's answer); nothing else of your data."""


class DecisionIn(BaseModel):
    """An auditor's decision on an open escalation."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    outcome: Outcome
    """upheld: the customer is right and the brand delivers again by a deadline; rejected: the brand
    delivered what it declared, the value counts as delivered."""
    reasons: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=4000)]
    """Why, for both parties (10 to 4,000 characters). Sealed; the receipt carries its SHA-256."""


class DecisionPublic(BaseModel):
    """What an auditor decided."""

    outcome: Outcome
    decided_at: datetime
    decided_by: UUID = Field(description="the auditor's id")
    reasons: str | None = Field(description="the auditor's words; null if they can no longer be read")
    reasons_sha256: str = Field(description="SHA-256 (hex) of the reasons in UTF-8, as the receipt states it")
    redeliver_by: datetime | None = Field(description="upheld: when the brand must have delivered again")
    receipt_id: UUID | None = Field(description="the signed receipt of the decision")


class EscalationPublic(BaseModel):
    """A dispute put before the auditors, and where it stands."""

    id: UUID
    obligation_id: UUID
    grant_id: UUID
    brand_id: UUID
    brand: str = Field(description="the brand's name")
    escalated_by: Literal["customer", "brand"]
    escalated_at: datetime
    status: EscalationStatus = Field(
        description="awaiting_customer (the brand escalated; the customer has not agreed to share the "
        "file), open, decided, declined (the customer would not share) or withdrawn (the dispute ended)"
    )
    status_since: datetime
    shared_at: datetime | None = Field(description="when the customer agreed to show the file")
    decision: DecisionPublic | None

    @classmethod
    def of(cls, escalation: Escalation, *, brand: str, reasons: str | None) -> EscalationPublic:
        """The public shape, with the reasons unsealed by the caller."""
        decision = None
        if escalation.outcome is not None:
            assert escalation.decided_at is not None and escalation.decided_by is not None
            assert escalation.reasons_sha256 is not None
            decision = DecisionPublic(
                outcome=escalation.outcome,
                decided_at=escalation.decided_at,
                decided_by=escalation.decided_by,
                reasons=reasons,
                reasons_sha256=escalation.reasons_sha256,
                redeliver_by=escalation.redeliver_by,
                receipt_id=escalation.receipt_id,
            )
        return cls(
            id=escalation.id,
            obligation_id=escalation.obligation_id,
            grant_id=escalation.grant_id,
            brand_id=escalation.brand_id,
            brand=brand,
            escalated_by="brand" if escalation.escalated_by == "brand" else "customer",
            escalated_at=escalation.escalated_at,
            status=escalation.status,
            status_since=escalation.status_changed_at,
            shared_at=escalation.shared_at,
            decision=decision,
        )


class EscalationPage(BaseModel):
    """Escalations, newest first."""

    items: list[EscalationPublic]
    next_cursor: str | None


class DeliveryPublic(BaseModel):
    """What was delivered."""

    id: UUID
    kind: str
    amount: str | None
    currency: str | None
    delivered_at: datetime
    redemption: str | None = Field(description="how to redeem it; shown to the customer only")


class DisputePublic(BaseModel):
    """A dispute and the brand's answer."""

    disputed_at: datetime
    reason: str | None
    answered_at: datetime | None
    answer: str | None
    answer_rejected_at: datetime | None = Field(
        default=None, description="when the customer rejected the answer; either party may then escalate"
    )


class ObligationPublic(BaseModel):
    """One value owed for one grant, and where it stands."""

    id: UUID
    grant_id: UUID
    brand: str = Field(description="the brand's name")
    schedule: Schedule
    period: int = Field(description="0 for a one-off value; the month (from 0) of a monthly one")
    description: str
    kind: str
    amount: str | None
    currency: str | None
    unit: str | None
    due_at: datetime
    state: State = Field(
        description="owed, overdue (owed past due), delivered, confirmed, disputed or cancelled"
    )
    state_since: datetime
    delivery: DeliveryPublic | None = Field(
        description="the latest delivery (a second one follows an upheld dispute)"
    )
    dispute: DisputePublic | None
    escalation: EscalationPublic | None = Field(
        default=None, description="the latest escalation of a dispute of this obligation to the auditors"
    )
    account_deleted: bool = Field(
        default=False,
        description="the customer deleted their account: what is owed stays owed and can be delivered "
        "(its redemption data is not kept: nobody could read it)",
    )

    @classmethod
    def of(
        cls,
        obligation: Obligation,
        *,
        brand: str,
        now: datetime,
        delivery: Delivery | None,
        secrets: dict[str, str],
        for_customer: bool,
        account_deleted: bool = False,
        escalation: EscalationPublic | None = None,
    ) -> ObligationPublic:
        """The public shape; redemption data only `for_customer`."""
        state: State = "overdue" if obligation.overdue(now) else obligation.status.value
        declared = obligation.declared
        dispute = None
        if obligation.disputed_at is not None and (
            obligation.status in (ObligationStatus.DISPUTED, ObligationStatus.CONFIRMED) or escalation
        ):
            dispute = DisputePublic(
                disputed_at=obligation.disputed_at,
                reason=secrets.get(f"dispute:{obligation.id}"),
                answered_at=obligation.answered_at,
                answer=secrets.get(f"answer:{obligation.id}"),
                answer_rejected_at=obligation.answer_rejected_at,
            )
        return cls(
            id=obligation.id,
            grant_id=obligation.grant_id,
            brand=brand,
            schedule=obligation.schedule,
            period=obligation.period,
            description=declared.get("description", ""),
            kind=declared["kind"],
            amount=from_minor(obligation.amount_minor),
            currency=obligation.currency,
            unit=declared.get("unit"),
            due_at=obligation.due_at,
            state=state,
            state_since=obligation.status_changed_at,
            delivery=None
            if delivery is None
            else DeliveryPublic(
                id=delivery.id,
                kind=delivery.kind,
                amount=from_minor(delivery.amount_minor),
                currency=delivery.currency,
                delivered_at=delivery.delivered_at,
                redemption=secrets.get(f"delivery:{delivery.id}") if for_customer else None,
            ),
            dispute=dispute,
            escalation=escalation,
            account_deleted=account_deleted,
        )


class ObligationList(BaseModel):
    """A grant's obligations, oldest first."""

    items: list[ObligationPublic]


class Totals(BaseModel):
    """Sums in one currency (or in points), as exact decimal strings."""

    currency: str = Field(description="ISO 4217 code, or POINTS")
    declared: str = Field(description="everything owed, delivered or settled (not cancelled)")
    owed: str = Field(description="owed and not yet due")
    overdue: str
    delivered: str = Field(description="delivered, awaiting your confirmation")
    confirmed: str
    disputed: str


class LedgerPage(BaseModel):
    """The customer's value ledger across brands, newest first, with totals over all of it."""

    items: list[ObligationPublic]
    next_cursor: str | None
    totals: list[Totals]


class TrackRecordPublic(BaseModel):
    """A brand's record over the last 12 months, as customers see it before they agree."""

    fell_due: int = Field(description="obligations that fell due (not cancelled)")
    on_time: int = Field(description="of those, delivered by their due date with no dispute upheld")
    on_time_percent: int | None = Field(description="on_time as a whole percentage; null if none fell due")
    disputes_upheld: int = Field(description="disputes an auditor upheld against the brand")


class BrandValueReport(BaseModel):
    """One brand's record of delivering what it declared."""

    brand_id: UUID
    brand: str
    obligations: int
    owed: int
    overdue: int
    delivered: int
    confirmed: int
    disputed: int
    cancelled: int
    owed_to_deleted_accounts: int = Field(
        description="of the owed and overdue ones, those whose customer deleted their account: still owed"
    )
    oldest_overdue_days: float | None = Field(
        description="how long the oldest overdue obligation has been due"
    )
    totals: list[Totals]
    record: TrackRecordPublic = Field(description="the last 12 months: delivered on time, disputes upheld")


class ValueReport(BaseModel):
    """Declared vs delivered vs confirmed vs disputed, per brand, as of `as_of`."""

    as_of: datetime
    brands: list[BrandValueReport]
