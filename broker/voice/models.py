"""The customer's voice, in tables: the contacts brands report making (`broker.voice.contacts`) and
the ratings customers give brands (`broker.voice.feedback`)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID, uuid4

from sqlalchemy import JSON, Boolean, Column, Date, ForeignKey, Index, Integer, LargeBinary, String, Uuid
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
    the customer's vault (`feedback:<id>`); `share_text` says whether the brand may read them. `rater`
    (a keyed blind index of the customer and the brand) counts distinct customers, and only the day is
    kept: a time would let the brand match a rating to its grant."""

    __tablename__ = "brand_rating"
    __table_args__ = (
        Index("ix_brand_rating_once", "grant_id", "occasion_key", unique=True),
        Index("ix_brand_rating_brand_page", "brand_id", "created_on", "id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    rater: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))  # keyed: customer and brand
    occasion_key: str = Field(sa_column=Column(String(64), nullable=False))
    rating: int = Field(sa_column=Column(Integer, nullable=False))
    has_text: bool = Field(sa_column=Column(Boolean, nullable=False))
    share_text: bool = Field(sa_column=Column(Boolean, nullable=False))
    created_on: date = Field(sa_column=Column(Date, nullable=False))  # the day only: no time is kept


class Intent(SQLModel, table=True):
    """What a customer is looking for now, for brands of its category to answer without knowing who.

    No customer id: `owner` is a blind index of the customer (keyed, so that only the broker can find a
    customer's intents), and `handle` is random, the only name brands see. `region` and `age_band` are
    there only when the customer chose to share them."""

    __tablename__ = "intent"
    __table_args__ = (
        Index("ix_intent_owner", "owner", "created_at"),
        Index("ix_intent_category_page", "category", "created_at", "id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    handle: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    owner: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    category: str = Field(sa_column=Column(String(16), nullable=False))
    horizon: str = Field(sa_column=Column(String(16), nullable=False))
    budget_band: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    region: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    age_band: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    only_brands: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))  # brand ids
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class IntentAnswer(SQLModel, table=True):
    """A brand's answer to an intent: one of its listed offers. One answer per brand and intent."""

    __tablename__ = "intent_answer"
    __table_args__ = (
        Index("ix_intent_answer_once", "intent_id", "brand_id", unique=True),
        Index("ix_intent_answer_brand_day", "brand_id", "created_at"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    intent_id: UUID = Field(sa_column=Column(ForeignKey("intent.id", ondelete="CASCADE"), nullable=False))
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    offer_id: UUID = Field(sa_column=Column(ForeignKey("offer.id", ondelete="CASCADE"), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
