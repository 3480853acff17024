"""The receipts tables: one signed receipt per consent event of a grant (given, amended, ended), and one
per deleted account (`DeletionReceipt`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String, Text, Uuid
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class Receipt(SQLModel, table=True):
    """A consent receipt as issued: the compact JWS (its payload is the receipt), the public key that
    signed it (kept so the receipt stays checkable after that key leaves the JWKS) and the index of
    the audit entry it matches. Receipts outlive a deleted account (the brand keeps its proof); deleting
    the grant deletes them."""

    __tablename__ = "consent_receipt"
    __table_args__ = (
        Index("ix_consent_receipt_customer_page", "customer_id", "audit_index"),
        Index("ix_consent_receipt_grant_page", "grant_id", "audit_index"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(sa_column=Column(Uuid, nullable=False))  # no FK: outlives the account
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    event: str = Field(sa_column=Column(String(16), nullable=False))  # given, amended, withdrawn, …
    audit_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    issued_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    jws: str = Field(sa_column=Column(Text, nullable=False))
    signing_key: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # public JWK only


class DeletionReceipt(SQLModel, table=True):
    """The receipt of an account's deletion, as issued: the compact JWS, the public key that signed it
    and the index of its `account.deleted` entry. Nothing links it to the account: no customer id, no
    email; its id is a random capability the former customer was handed (`broker.receipts.deletion`)."""

    __tablename__ = "deletion_receipt"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    audit_index: int = Field(sa_column=Column(BigInteger, nullable=False, unique=True))
    issued_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    jws: str = Field(sa_column=Column(Text, nullable=False))
    signing_key: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # public JWK only
