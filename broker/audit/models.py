"""Audit log tables: the entries, the hash of every complete subtree, and the single head row."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class AuditEntry(SQLModel, table=True):
    """One log entry at its 0-based, gapless index, with its RFC 9162 leaf hash.

    `kind`, `customer_id`, `brand_id` and `grant_id` are lookup columns beside the hashed bytes, so a
    customer or a brand finds the entries about them, or about one grant; they are not part of the
    entry. The entry itself names the customer only by the brand's pairwise subject, so the log cannot
    link a customer across brands, and deleting an account clears `customer_id`.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_customer", "customer_id", "index"),
        Index("ix_audit_entry_brand", "brand_id", "index"),
        Index("ix_audit_entry_grant", "grant_id", "index"),
    )

    index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # canonical bytes of the entry
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    kind: str = Field(default="", sa_column=Column(String(40), nullable=False, server_default=""))
    customer_id: UUID | None = Field(default=None, nullable=True)
    brand_id: UUID | None = Field(default=None, nullable=True)
    grant_id: UUID | None = Field(default=None, nullable=True)


class AuditNode(SQLModel, table=True):
    """The hash of a complete subtree: level L, position i covers leaves [i·2^L, (i+1)·2^L).

    Level 0 holds the leaf hashes. Any range of leaves splits into O(log n) of these, so roots and
    proofs never read the leaves.
    """

    __tablename__ = "audit_node"

    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    position: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class AuditHead(SQLModel, table=True):
    """The single row (id 1) holding the log size; appenders lock it, which keeps indices gapless."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note). Every one is kept."""

    __tablename__ = "audit_checkpoint"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))  # the signed note, exactly as served
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
