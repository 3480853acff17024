"""Value tables: what a brand owes a customer for a grant, and what it delivered.

Amounts are stored in hundredths (`amount_minor`), exact, so sums are done by the database without
floats. Redemption data (a voucher code, a link) and dispute texts are personal data: they live in
the customer's vault as secrets (`vault.models.VaultSecret`), never in these rows.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Uuid
from sqlmodel import Field, SQLModel

from broker.value.schedule import past_due
from vault.sqltypes import UTCDateTime, str_enum


class Schedule(StrEnum):
    """How the declared value falls due: once, or every month while the grant is live."""

    ONCE = "once"
    MONTHLY = "monthly"


class ObligationStatus(StrEnum):
    """Stored state; "overdue" is not a state but `owed` past its due date (see `Obligation.overdue`)."""

    OWED = "owed"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"


def overdue(status: ObligationStatus, due_at: datetime, now: datetime) -> bool:
    """Whether an obligation in `status`, due at `due_at`, is overdue at `now`: owed and past due."""
    return status is ObligationStatus.OWED and past_due(due_at, now)


class Obligation(SQLModel, table=True):
    """One value the brand owes for one grant (one-off, or one month of a recurring value)."""

    __tablename__ = "value_obligation"
    __table_args__ = (
        Index("ix_value_obligation_grant", "grant_id", "period", unique=True),  # one per month, even racing
        Index("ix_value_obligation_customer_page", "customer_id", "created_at", "id"),
        Index("ix_value_obligation_brand_status", "brand_id", "status"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    # No foreign key: what was owed stays owed after the customer deletes their account.
    customer_id: UUID = Field(sa_column=Column(Uuid, nullable=False))
    schedule: Schedule = Field(sa_column=Column(str_enum(Schedule), nullable=False))
    period: int = 0  # 0 for a one-off; the month number (0, 1, ...) of a recurring value
    declared: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the offer's value, as agreed
    kind: str = Field(max_length=16)  # the declared kind: voucher, discount, points, service, cash
    amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    due_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status: ObligationStatus = Field(
        default=ObligationStatus.OWED, sa_column=Column(str_enum(ObligationStatus), nullable=False)
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status_changed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    overdue_noticed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    disputed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The customer does not accept the brand's answer: from then on either party may escalate.
    answer_rejected_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    def overdue(self, now: datetime) -> bool:
        """Owed and past its due date."""
        return overdue(self.status, self.due_at, now)


class Delivery(SQLModel, table=True):
    """What the brand delivered for an obligation; how to redeem it is a vault secret `delivery:<id>`.

    Usually one per obligation; a second when an auditor upheld a dispute and the brand delivered
    again (`broker.value.disputes`). The latest is the one that counts."""

    __tablename__ = "value_delivery"
    __table_args__ = (Index("ix_value_delivery_obligation", "obligation_id", "delivered_at"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    obligation_id: UUID = Field(
        sa_column=Column(ForeignKey("value_obligation.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(max_length=16)
    amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    delivered_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class EscalationStatus(StrEnum):
    """Where an escalated dispute stands (`broker.value.disputes` draws the moves)."""

    AWAITING_CUSTOMER = "awaiting_customer"  # the brand escalated; the customer has not agreed to share
    OPEN = "open"  # the file is shared with the auditors, waiting for a decision
    DECIDED = "decided"
    DECLINED = "declined"  # the customer would not share the file
    WITHDRAWN = "withdrawn"  # the dispute ended first (confirmed or withdrawn by the customer)


class Outcome(StrEnum):
    """An auditor's decision on a dispute."""

    UPHELD = "upheld"  # the customer is right: the brand delivers again, by a deadline
    REJECTED = "rejected"  # the brand is right: the value counts as delivered


class Escalation(SQLModel, table=True):
    """One dispute put before the auditors. One per dispute, a dispute being known by its obligation
    and `disputed_at` (an obligation disputed again, after a new delivery, can be escalated again);
    its file and the auditor's reasons are sealed in a vault of
    their own, under the escalation's id, never in this row."""

    __tablename__ = "value_escalation"
    __table_args__ = (
        Index("ix_value_escalation_dispute", "obligation_id", "disputed_at", unique=True),
        Index("ix_value_escalation_status_page", "status", "escalated_at", "id"),
        Index("ix_value_escalation_brand_decided", "brand_id", "outcome", "decided_at"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    obligation_id: UUID = Field(
        sa_column=Column(ForeignKey("value_obligation.id", ondelete="CASCADE"), nullable=False)
    )
    grant_id: UUID = Field(sa_column=Column(Uuid, nullable=False))
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    customer_id: UUID = Field(sa_column=Column(Uuid, nullable=False))  # no FK: outlives the account
    disputed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))  # which dispute
    escalated_by: str = Field(max_length=16)  # customer or brand
    escalated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status: EscalationStatus = Field(sa_column=Column(str_enum(EscalationStatus), nullable=False))
    status_changed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    shared_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    outcome: Outcome | None = Field(default=None, sa_column=Column(str_enum(Outcome), nullable=True))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    decided_by: UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))  # the auditor
    reasons_sha256: str | None = Field(default=None, max_length=64)  # hex; the words are sealed
    redeliver_by: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    receipt_id: UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))  # the decision's
