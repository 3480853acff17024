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

    def overdue(self, now: datetime) -> bool:
        """Owed and past its due date."""
        return overdue(self.status, self.due_at, now)


class Delivery(SQLModel, table=True):
    """What the brand delivered for an obligation; how to redeem it is a vault secret `delivery:<id>`."""

    __tablename__ = "value_delivery"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    obligation_id: UUID = Field(
        sa_column=Column(ForeignKey("value_obligation.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    kind: str = Field(max_length=16)
    amount_minor: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    currency: str | None = Field(default=None, max_length=3)
    delivered_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
