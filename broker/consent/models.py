"""Consent tables: offers (immutable versions), grants (a state machine), access records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID, uuid4

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime, str_enum


class OfferStatus(StrEnum):
    """An offer version is active, replaced by a newer version, or withdrawn by its brand."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


class Offer(SQLModel, table=True):
    """One immutable version of a brand's offer. Grants point at the exact version consented to."""

    __tablename__ = "offer"
    __table_args__ = (
        Index("ix_offer_brand_page", "brand_id", "created_at", "id"),
        UniqueConstraint("lineage_id", "version", name="uq_offer_lineage_version"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    # The id of version 1; every version of one offer shares it (uq_offer_lineage_version indexes it).
    lineage_id: UUID
    version: int = 1
    status: OfferStatus = Field(
        default=OfferStatus.ACTIVE, sa_column=Column(str_enum(OfferStatus), nullable=False)
    )
    title: str = Field(max_length=120)
    description: str = Field(max_length=2000)
    required_fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    optional_fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    purpose: str = Field(max_length=64)
    purpose_explanation: str = Field(max_length=1000)
    # Several purposes, each with its explanation and its fields: [{purpose, explanation, fields}], the
    # first being `purpose`. None: one purpose, `purpose`, for all the offer's fields.
    purposes: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    grant_duration_days: int
    retention_days: int
    recipients: list[str] = Field(sa_column=Column(JSON, nullable=False))
    value: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Shown in the customers' offer directory while this version is the active one (`DirectoryListing`).
    listed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    # What it is about (`broker.consent.categories`): the intents its brand may see while it is listed.
    categories: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )


class GrantStatus(StrEnum):
    """The lifecycle of a grant. Expiry is also computed from `expires_at` on every read."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    REVOKED = "revoked"


class GrantFacts(Protocol):
    """A grant's values as its views read them: a `Grant`, or a row of a query of its columns (a page
    of grants is read on the driver's cursor, without building ORM objects: `Grants.listing`)."""

    @property
    def id(self) -> UUID: ...
    @property
    def customer_id(self) -> UUID: ...
    @property
    def brand_id(self) -> UUID: ...
    @property
    def offer_id(self) -> UUID: ...
    @property
    def fields(self) -> list[str]: ...
    @property
    def purpose(self) -> str: ...
    @property
    def purpose_fields(self) -> dict[str, list[str]] | None: ...
    @property
    def status(self) -> GrantStatus: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def status_changed_at(self) -> datetime: ...
    @property
    def ended_by(self) -> str | None: ...
    @property
    def last_confirmed_at(self) -> datetime: ...
    @property
    def deletion_due_at(self) -> datetime | None: ...
    @property
    def deletion_outcome(self) -> str | None: ...
    @property
    def deletion_completed_at(self) -> datetime | None: ...
    @property
    def deletion_attested_at(self) -> datetime | None: ...
    @property
    def end_ack_due_at(self) -> datetime | None: ...
    @property
    def end_acknowledged_at(self) -> datetime | None: ...
    @property
    def decline_by(self) -> datetime | None: ...
    @property
    def declined_at(self) -> datetime | None: ...


class Grant(SQLModel, table=True):
    """A customer's consent to one brand for exactly these fields, this purpose, until `expires_at`."""

    __tablename__ = "consent_grant"
    __table_args__ = (
        Index("ix_consent_grant_brand_page", "brand_id", "created_at", "id"),
        Index("ix_consent_grant_customer_page", "customer_id", "created_at", "id"),
        # The lifecycle sweep: deletions past due, not attested, not yet told (NULL, NULL, range).
        Index(
            "ix_consent_grant_deletion_sweep",
            "deletion_notified_at",
            "deletion_attested_at",
            "deletion_due_at",
        ),
        # The auditor's deletion report: unattested deletions by due date, keyset-paginated.
        Index("ix_consent_grant_deletion_overdue", "deletion_attested_at", "deletion_due_at", "id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    # No foreign key: the grant outlives a deleted account (its deletion duty and value stay; the
    # customer is then shown as deleted, see `broker.accounts.models.AccountTombstone`).
    customer_id: UUID = Field(sa_column=Column(Uuid, nullable=False))
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    offer_id: UUID = Field(sa_column=Column(ForeignKey("offer.id"), nullable=False))
    fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    purpose: str = Field(max_length=64)  # the first purpose agreed to
    # Which fields go with which purpose, for an offer of several purposes: {purpose: [fields]}.
    # None: one purpose, `purpose`, for all `fields` (see broker.consent.purposes.granted_purposes).
    purpose_fields: dict[str, list[str]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: GrantStatus = Field(
        default=GrantStatus.ACTIVE, sa_column=Column(str_enum(GrantStatus), nullable=False)
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status_changed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    ended_by: str | None = Field(default=None, max_length=16)
    # When the read path must look at the value owed next: the earliest due date of what is owed, or
    # the start of the next month of a recurring value; null when nothing is owed. Reads before it
    # skip the value check entirely.
    value_check_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    first_read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # When the customer last confirmed the grant (its creation, then each renewal): grants longer than
    # 90 days need a reconfirmation every 90 days (see broker.consent.renewal).
    last_confirmed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # Retention (see broker.consent.retention): set when the grant ends, to the end plus the offer's
    # retention; the brand attests the deletion; the sweep tells once when it is overdue.
    deletion_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    deletion_notified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    deletion_outcome: str | None = Field(default=None, max_length=16)  # "deleted" or "de-identified"
    deletion_completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    deletion_attested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Acknowledgement of the end (see broker.usecases.acknowledgements): set when the grant ends, to the
    # end plus the acknowledgement window; the brand states it stopped processing; the sweep reminds it
    # once, at half the window. Reads its tokens attempt after the end are counted, not served.
    end_ack_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    end_acknowledged_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    end_ack_reminded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    reads_after_end: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # A grant the customer started from the offer directory (`broker.usecases.directory`), not through
    # the brand's authorization request: the brand may decline it until `decline_by`, before any read.
    started_in_directory: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    decline_by: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    declined_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Self-custody (`broker.consent.sealed`): the version of the grant's newest sealed copy, 0 before
    # the first. Kept when a copy is deleted, so versions only grow and a brand can refuse an old one.
    sealed_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class SealedCopy(SQLModel, table=True):
    """A self-custody grant's fields for one of its purposes, sealed by the customer's browser to the
    brand (a compact JWE, `broker.consent.sealed`): what the brand's reads are answered with. Only the
    newest version is kept; it is deleted when the grant ends."""

    __tablename__ = "sealed_copy"

    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), primary_key=True)
    )
    purpose: str = Field(primary_key=True, max_length=64)
    version: int  # 1, 2, …: one more each time the browser seals the grant again
    kid: str = Field(max_length=200)  # the brand's encryption key it is sealed to
    jwe: str = Field(sa_column=Column(Text, nullable=False))
    stored_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class EndAcknowledgement(SQLModel, table=True):
    """The brand's statement that it stopped processing an ended grant's data and will delete it by
    `deletion_by`: the compact JWS it signed with a registered key (`method` "signed"), or the
    statement as sent under its client authentication (`method` "client-authentication", `token_id`
    naming the access token it came with). Nothing in it names the customer."""

    __tablename__ = "grant_end_acknowledgement"

    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), primary_key=True)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    acknowledged_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    stopped_processing_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    deletion_by: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    method: str = Field(max_length=32)
    statement: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the brand's JWS
    brand_key: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )  # public JWK
    token_id: str | None = Field(default=None, max_length=200)
    receipt_id: UUID = Field(sa_column=Column(Uuid, nullable=False))


class DirectoryListing(SQLModel, table=True):
    """A listed offer's active version in the customers' directory, with what its filters and sorts
    read, so a page of 10,000 listings is one indexed query. Kept by `broker.consent.offers` as
    versions are published, revised and withdrawn: a version leaves the moment it stops being active."""

    __tablename__ = "directory_listing"
    __table_args__ = (
        Index("ix_directory_newest", "listed_at", "offer_id"),
        Index("ix_directory_value", "value_group", "value_scale", "value_rank", "offer_id"),
        Index("ix_directory_fields", "field_count", "offer_id"),
        Index("ix_directory_retention", "retention_days", "offer_id"),
        Index("ix_directory_duration", "duration_days", "offer_id"),
    )

    offer_id: UUID = Field(sa_column=Column(ForeignKey("offer.id", ondelete="CASCADE"), primary_key=True))
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    listed_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    value_kind: str = Field(max_length=16)
    # The value sort's blocks: 0 money, 1 points, 2 neither (a service or a percentage). `value_scale` is
    # what the value per field per month is counted in: a currency code, "points", or "~". `value_rank`
    # is minus that value in ten-thousandths (up to about 3e11: a bigint), so that an ascending sort puts
    # the most generous first (0 when not comparable).
    value_group: int
    value_scale: str = Field(max_length=8)
    value_rank: int = Field(sa_column=Column(BigInteger, nullable=False))
    field_count: int
    duration_days: int
    retention_days: int
    recipient_count: int


class DirectoryField(SQLModel, table=True):
    """A field a listed offer asks for, and whether the customer must share it (the fields filter)."""

    __tablename__ = "directory_field"
    __table_args__ = (Index("ix_directory_field_name", "field", "offer_id"),)

    offer_id: UUID = Field(
        sa_column=Column(ForeignKey("directory_listing.offer_id", ondelete="CASCADE"), primary_key=True)
    )
    field: str = Field(primary_key=True, max_length=64)
    required: bool


class DirectoryCategory(SQLModel, table=True):
    """A category a listed offer declares: its brand sees the customers' intents of that category."""

    __tablename__ = "directory_category"
    __table_args__ = (Index("ix_directory_category_name", "category", "offer_id"),)

    offer_id: UUID = Field(
        sa_column=Column(ForeignKey("directory_listing.offer_id", ondelete="CASCADE"), primary_key=True)
    )
    category: str = Field(primary_key=True, max_length=16)


class DirectoryPurpose(SQLModel, table=True):
    """A purpose a listed offer declares (the purpose filter)."""

    __tablename__ = "directory_purpose"
    __table_args__ = (Index("ix_directory_purpose_name", "purpose", "offer_id"),)

    offer_id: UUID = Field(
        sa_column=Column(ForeignKey("directory_listing.offer_id", ondelete="CASCADE"), primary_key=True)
    )
    purpose: str = Field(primary_key=True, max_length=64)
