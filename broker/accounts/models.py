"""Account tables. No column holds an email, a name or an address in clear."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Column, ForeignKey, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class Customer(SQLModel, table=True):
    """A customer account: an id, a blind index of the email, an argon2id hash."""

    __tablename__ = "customer"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    email_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class CustomerSession(SQLModel, table=True):
    """A login session. Only the SHA-256 of its token is stored."""

    __tablename__ = "customer_session"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(
        sa_column=Column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # When the customer last proved who they are in this session, and whether with a second factor
    # (or a passkey, which is one on its own): step-up checks these.
    authenticated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    second_factor: bool = False
    auth_method: str = Field(default="password", max_length=20)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per account or per client address, keyed by a blind token (never in clear)."""

    __tablename__ = "login_throttle"

    token: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    failures: int = 0
    window_started_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class AccountTombstone(SQLModel, table=True):
    """What remains of a deleted account: its id and when it went. No personal data."""

    __tablename__ = "account_tombstone"

    customer_id: UUID = Field(primary_key=True)
    deleted_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class Auditor(SQLModel, table=True):
    """Someone allowed to read the whole log. Only the SHA-256 of the token is stored."""

    __tablename__ = "auditor"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str = Field(max_length=200)
    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
