"""Second-factor tables: passkeys, TOTP, recovery codes, and the short-lived login challenges.

Nothing here is usable if the database leaks: the TOTP secret and passkey names are sealed in the
vault under the customer's data key (they die with it), recovery codes and login tokens are kept as
SHA-256 digests, and a passkey row holds only its public key. Every row belongs to one customer and
goes with the account (ON DELETE CASCADE).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Column, ForeignKey, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


def _owner() -> Column[UUID]:
    return Column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True)


class Passkey(SQLModel, table=True):
    """A WebAuthn credential: its id, COSE public key and signature counter. Its name is in the vault."""

    __tablename__ = "passkey"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(sa_column=_owner())
    credential_id: bytes = Field(sa_column=Column(LargeBinary(1023), nullable=False, unique=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sign_count: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class TotpFactor(SQLModel, table=True):
    """A TOTP authenticator (RFC 6238). The secret is the vault secret `totp`; `last_step` is the
    newest time step accepted, so a code is good once."""

    __tablename__ = "totp_factor"

    customer_id: UUID = Field(
        sa_column=Column(ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_step: int = 0


class RecoveryCode(SQLModel, table=True):
    """A one-time recovery code, stored as its SHA-256 (80 random bits each)."""

    __tablename__ = "recovery_code"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(sa_column=_owner())
    code_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class LoginChallenge(SQLModel, table=True):
    """A single-use, short-lived step of a login: a WebAuthn challenge, a pending second factor
    (`mfa_token`), or both. Only digests are stored; a row is deleted when it is used."""

    __tablename__ = "login_challenge"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    purpose: str = Field(max_length=20)
    token_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32), unique=True))
    challenge_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32), unique=True))
    customer_id: UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=True, index=True),
    )
    session_id: UUID | None = Field(
        default=None,
        sa_column=Column(ForeignKey("customer_session.id", ondelete="CASCADE"), nullable=True),
    )
    failures: int = 0
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
