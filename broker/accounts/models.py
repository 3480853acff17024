"""Account tables: customers, brands (the OAuth clients), auditors. No column holds a customer's
email, name or address in clear."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import JSON, Column, ForeignKey, Index, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime, str_enum


class Customer(SQLModel, table=True):
    """A customer account: an id, blind indexes of the email and of its look-alike skeleton, an
    argon2id hash, and when the email was confirmed (None: not yet; it is then never given to a brand).

    `email_skeleton` is None for accounts made before skeletons existed until their owner next logs in
    (`broker.accounts.addresses`); it is not unique, since such older accounts may already collide.
    """

    __tablename__ = "customer"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    email_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    email_skeleton: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary(32), nullable=True, index=True)
    )
    email_verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class CodePurpose(StrEnum):
    """What an emailed code confirms: the address an account signed up with, or a new one; or that
    the owner of the address asked to reset the password, or to sign in by an emailed link."""

    SIGN_UP = "sign-up"
    CHANGE = "change"
    PASSWORD_RESET = "password-reset"  # noqa: S105 - a purpose, not a secret
    SIGN_IN = "sign-in"


class EmailCode(SQLModel, table=True):
    """An emailed one-time code (only its SHA-256 is stored) confirming one address for one account.

    `email_index` is the blind index of the address it confirms; for a change, the new address itself
    waits sealed in the vault as the secret `email-change:<id>` until the code is used.
    """

    __tablename__ = "email_code"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(
        sa_column=Column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    purpose: CodePurpose = Field(sa_column=Column(str_enum(CodePurpose), nullable=False))
    code_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    email_index: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class CustomerSession(SQLModel, table=True):
    """A login session. Only the SHA-256 of its token is stored; the device is a coarse label
    ("Firefox on Linux"), never the User-Agent header or an IP address."""

    __tablename__ = "customer_session"
    __table_args__ = (Index("ix_customer_session_listing", "customer_id", "created_at", "id"),)

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
    # Updated at most once a minute (see Accounts.authenticate): the idle timeout counts from here.
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    device: str = Field(default="Unknown device", max_length=100)


class SecurityEvent(SQLModel, table=True):
    """One entry of a customer's own security activity (sign-ins, password changes ...). The customer's
    data, not the public audit log: it goes with the account, and is pruned after the retention period."""

    __tablename__ = "security_event"
    __table_args__ = (Index("ix_security_event_listing", "customer_id", "created_at", "id"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    customer_id: UUID = Field(sa_column=Column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=False))
    kind: str = Field(max_length=40)
    device: str | None = Field(default=None, max_length=100)
    detail: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


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


class RegistrationToken(SQLModel, table=True):
    """An initial access token (RFC 7591 §3): lets a brand register itself, `uses_left` more times,
    until it expires. Only its digest is stored; an operator issues it with `consentry
    registration-tokens create`."""

    __tablename__ = "registration_token"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    token_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    uses_left: int
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class Brand(SQLModel, table=True):
    """A brand: an OAuth client. Confidential brands have a secret; public ones must use PKCE alone."""

    __tablename__ = "brand"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    redirect_uris: list[str] = Field(sa_column=Column(JSON, nullable=False))
    public: bool = False
    secret_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32), nullable=True))
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # OpenID Connect: how its ID tokens are signed (RS256, or Ed25519 when the brand registered it), and
    # where a customer may be sent after logging out at its request (RP-initiated logout).
    id_token_signed_response_alg: str = Field(default="RS256", max_length=16)
    post_logout_redirect_uris: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Dynamic registration (RFC 7591/7592): whom to contact, its policies (shown on the consent screen),
    # and the digest of the registration access token it manages its registration with (None for a
    # brand an operator registered).
    contacts: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    policy_uri: str | None = Field(default=None, max_length=2000)
    tos_uri: str | None = Field(default=None, max_length=2000)
    registration_token_hash: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary(32), nullable=True, unique=True)
    )
    # How it authenticates at the token endpoint: with its secret (Basic or in the form), with nothing
    # (public), or with a JWT signed by one of its registered public keys (`private_key_jwt`, RFC 7523).
    private_key_jwt: bool = False
    # Its public keys (RFC 7591 `jwks`): `use: sig` to sign with (assertions, statements; a brand with
    # private_key_jwt only), `use: enc` to receive self-custody grants encrypted to it (JWE ECDH-ES).
    # A key is only ever used for its own use: an encryption key never verifies a signature.
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # When it deleted its registration (RFC 7592): it no longer authenticates, and its row stays for
    # what it still owes (value, deletion of data) and for the log and receipts that name it.
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    def signing_jwks(self) -> dict[str, Any] | None:
        """The keys it signs with (`use` sig, or no `use`), as a JWK set; None when it has none."""
        return keys_of_use(self.jwks, "sig")

    def encryption_jwks(self) -> dict[str, Any] | None:
        """The keys grants may be sealed to (`use` enc, each with the `kid` a sealed copy names), as a JWK
        set; None when it has none."""
        found = keys_of_use(self.jwks, "enc")
        keys = [
            key for key in (found or {"keys": []})["keys"] if isinstance(key.get("kid"), str) and key["kid"]
        ]
        return {"keys": keys} if keys else None

    def encryption_kids(self) -> set[str]:
        """The `kid`s of its encryption keys: a sealed copy names one of them."""
        return {key["kid"] for key in (self.encryption_jwks() or {"keys": []})["keys"]}


def keys_of_use(jwks: Mapping[str, Any] | None, use: str) -> dict[str, Any] | None:
    """The keys of a JWK set whose `use` is `use` (a key without one signs), or None if there are none."""
    keys = [key for key in (jwks or {}).get("keys", []) if key.get("use", "sig") == use]
    return {"keys": keys} if keys else None
