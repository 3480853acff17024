"""Audit log tables: the entries, the hash of every complete subtree, and the single head row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class AuditEntry(SQLModel, table=True):
    """One log entry at its 0-based, gapless index, with its RFC 9162 leaf hash."""

    __tablename__ = "audit_entry"

    index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # canonical bytes of the entry
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


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
