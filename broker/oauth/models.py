"""OAuth tables: authorization codes, token families, refresh tokens (brands, the clients, are
`broker.accounts.models.Brand`).

Codes and tokens are stored as SHA-256 digests only (each has 256 random bits, so no salt is
needed); comparisons happen on the digest in constant time.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Column, ForeignKey, Index, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class TokenFamily(SQLModel, table=True):
    """Every token descended from one authorization code. Revoking it kills them all at once."""

    __tablename__ = "token_family"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revoked_reason: str | None = Field(default=None, max_length=64)


class AuthorizationCode(SQLModel, table=True):
    """A one-time authorization code, bound to its client, redirect URI, PKCE challenge and grant; for
    an OpenID Connect request (`openid` in its scope), also what its ID token will say: the request's
    `nonce`, and when and how the customer had authenticated."""

    __tablename__ = "authorization_code"
    __table_args__ = (Index("ix_authorization_code_nonce", "brand_id", "nonce"),)

    code_hash: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False)
    )
    family_id: UUID = Field(default_factory=uuid4)
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=2000)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=8)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    nonce: str | None = Field(default=None, max_length=512)
    auth_time: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    acr: str | None = Field(default=None, max_length=64)
    amr: str | None = Field(default=None, max_length=100)  # RFC 8176 methods, space-separated


class RefreshToken(SQLModel, table=True):
    """A refresh token; rotated on every use. Presenting a used one revokes its family."""

    __tablename__ = "refresh_token"

    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), primary_key=True))
    family_id: UUID = Field(
        sa_column=Column(ForeignKey("token_family.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    scope: str = Field(max_length=2000)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class RevokedAccessToken(SQLModel, table=True):
    """A brand-level (client-credentials) access token revoked before it expired, by its `jti`."""

    __tablename__ = "revoked_access_token"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class ClientAssertion(SQLModel, table=True):
    """A `private_key_jwt` client assertion seen (RFC 7523 §3: its `jti` once), kept until it expires:
    presenting it again is a replay, refused."""

    __tablename__ = "client_assertion"

    brand_id: UUID = Field(
        sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    jti: str = Field(primary_key=True, max_length=200)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class GrantTicketUse(SQLModel, table=True):
    """A grant ticket spent at the token endpoint (`broker.oauth.tickets`): its `jti`, so that it is
    spent once. Kept until the ticket would have expired anyway."""

    __tablename__ = "grant_ticket_use"

    jti: str = Field(primary_key=True, max_length=64)
    grant_id: UUID = Field(
        sa_column=Column(ForeignKey("consent_grant.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    used_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
