"""The customer's voice, in tables: the contacts brands report making (`broker.voice.contacts`)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Uuid
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class ContactReport(SQLModel, table=True):
    """A contact a brand reports having made with a customer under a grant: the channel, the purpose
    and when; which of the customer's preferences it broke (`breaches`: codes, never the preference
    itself), judged against the preferences in force at the contact (`preferences_version`). Which
    topics the contact was about is not kept: only whether one was ruled out."""

    __tablename__ = "contact_report"
    __table_args__ = (
        Index("ix_contact_report_customer_page", "customer_id", "contacted_at", "id"),
        Index("ix_contact_report_month", "brand_id", "customer_id", "contacted_at"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    customer_id: UUID = Field(sa_column=Column(Uuid, nullable=False))  # no FK: counted after the account
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    purpose: str = Field(sa_column=Column(String(64), nullable=False))
    contacted_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    reported_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    breaches: list[str] = Field(sa_column=Column(JSON, nullable=False))
    flagged: bool = Field(sa_column=Column(Boolean, nullable=False))  # any breach
    preferences_version: int = Field(sa_column=Column(Integer, nullable=False))
