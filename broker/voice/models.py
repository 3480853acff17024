"""The customer's voice, in tables: the contacts brands report making (`broker.voice.contacts`) and
the ratings customers give brands (`broker.voice.feedback`)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid4

from sqlalchemy import JSON, Boolean, Column, Date, ForeignKey, Index, Integer, String, Uuid
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


class BrandRating(SQLModel, table=True):
    """A customer's rating of a brand, after a delivery they confirmed or after their grant ended: one
    per occasion (`occasion_key`: `delivery:<obligation id>` or `end`). The words, if any, are sealed in
    the customer's vault (`feedback:<id>`); `share_text` says whether the brand may read them. The row
    names no customer: ratings count for the brand after the account is gone, and its words with it."""

    __tablename__ = "brand_rating"
    __table_args__ = (
        Index("ix_brand_rating_once", "grant_id", "occasion_key", unique=True),
        Index("ix_brand_rating_brand_page", "brand_id", "created_at", "id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    occasion_key: str = Field(sa_column=Column(String(64), nullable=False))
    rating: int = Field(sa_column=Column(Integer, nullable=False))
    has_text: bool = Field(sa_column=Column(Boolean, nullable=False))
    share_text: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    created_on: date = Field(sa_column=Column(Date, nullable=False))  # what the brand sees of when
