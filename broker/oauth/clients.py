"""Brands as OAuth clients: registration, secrets, and the adapter Authlib's grants talk to."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from sqlalchemy import Connection, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from broker.accounts.models import Brand
from broker.consent.scopes import BRAND_SCOPES, is_profile_scope, split_scope
from broker.digests import secret_digest
from broker.errors import ValidationFailed
from broker.oauth.signing import ID_TOKEN_ALGORITHMS
from vault.driver import DriverQuery


def origin_of(uri: str) -> str:
    """scheme://host[:port] of a URI."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def check_redirect_uri(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None. HTTPS, or http on loopback (RFC 8252)."""
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        return "a redirect URI must not contain a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1", "localhost"}:
        return None
    return "a redirect URI must be https:// (or http:// on 127.0.0.1 or localhost for development)"


@dataclass(frozen=True, slots=True)
class RegisteredBrand:
    """A new brand and its client secret, which exists in clear only here."""

    brand: Brand
    client_secret: str | None


def register_brand(
    session: Session,
    *,
    name: str,
    redirect_uris: Sequence[str],
    public: bool,
    clock: Callable[[], datetime],
    post_logout_redirect_uris: Sequence[str] = (),
    id_token_signed_response_alg: str = ID_TOKEN_ALGORITHMS[0],
) -> RegisteredBrand:
    """Create a brand. Confidential brands get a secret (stored as a digest); public ones get none.
    `post_logout_redirect_uris`: where OpenID Connect's RP-initiated logout may send the customer
    back to (the same rules as redirect URIs); `id_token_signed_response_alg`: how its ID tokens are
    signed (RS256, the default, or Ed25519)."""
    problems = [(i, p) for i, uri in enumerate(redirect_uris) if (p := check_redirect_uri(uri))]
    after_logout = [
        (i, p) for i, uri in enumerate(post_logout_redirect_uris) if (p := check_redirect_uri(uri))
    ]
    unsigned = id_token_signed_response_alg not in ID_TOKEN_ALGORITHMS
    if not name.strip() or not redirect_uris or problems or after_logout or unsigned:
        errors = [{"pointer": f"/redirect_uris/{i}", "detail": p} for i, p in problems]
        errors += [{"pointer": f"/post_logout_redirect_uris/{i}", "detail": p} for i, p in after_logout]
        if unsigned:
            detail = f"ID tokens are signed with one of: {', '.join(ID_TOKEN_ALGORITHMS)}"
            errors.append({"pointer": "/id_token_signed_response_alg", "detail": detail})
        if not name.strip():
            errors.append({"pointer": "/name", "detail": "a brand needs a name"})
        if not redirect_uris:
            errors.append({"pointer": "/redirect_uris", "detail": "register at least one redirect URI"})
        raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)
    secret = None if public else _secret()
    brand = Brand(
        client_id="brd_" + secrets.token_urlsafe(16),
        name=name.strip(),
        redirect_uris=list(redirect_uris),
        public=public,
        secret_hash=secret_digest(secret) if secret else None,
        scopes=list(BRAND_SCOPES),
        created_at=clock(),
        post_logout_redirect_uris=list(post_logout_redirect_uris),
        id_token_signed_response_alg=id_token_signed_response_alg,
    )
    session.add(brand)
    session.flush()
    return RegisteredBrand(brand, secret)


def _secret() -> str:
    return "cs_" + secrets.token_urlsafe(32)


def new_client_secret(session: Session, brand: Brand) -> str:
    """Replace a confidential brand's secret; the old one stops working at once."""
    secret = _secret()
    brand.secret_hash = secret_digest(secret)
    session.add(brand)
    session.flush()
    return secret


# Built once: every token request and every brand-token request finds its brand, and building the
# statement (and its cache key) cost more than running it.
_BRAND_BY_CLIENT_ID = select(Brand).where(
    col(Brand.client_id) == bindparam("client_id"), col(Brand.deleted_at).is_(None)
)


def find_brand(session: Session, client_id: str) -> Brand | None:
    """The brand with this client id, if any (and not deleted: its tokens and credentials are dead)."""
    if not client_id or len(client_id) > 64:
        return None
    return session.exec(_BRAND_BY_CLIENT_ID, params={"client_id": client_id}).first()


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A brand as the OAuth server sees it: its columns, read on the driver's cursor, not an ORM
    object. Every token request looks its brand up, and building the ORM `Brand` (with the session's
    identity map and attribute instrumentation) cost about 150 µs of the 660 µs a client-credentials
    token took; this costs about 15 µs on SQLite. A request that only reads finds it in the process's
    cache while no brand changed (`broker.oauth.client_cache`, which says how soon a change is seen)."""

    id: UUID
    client_id: str
    name: str
    public: bool
    secret_hash: bytes | None
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    id_token_alg: str = "RS256"  # noqa: S105 - a JWS algorithm, not a secret
    private_key_jwt: bool = False  # authenticates with a JWT signed by a key of `jwks` (RFC 7523)
    jwks: Mapping[str, Any] | None = None


_CLIENT_BY_CLIENT_ID = DriverQuery(
    sa_select(
        col(Brand.id),
        col(Brand.client_id),
        col(Brand.name),
        col(Brand.public),
        col(Brand.secret_hash),
        col(Brand.redirect_uris),
        col(Brand.scopes),
        col(Brand.id_token_signed_response_alg),
        col(Brand.private_key_jwt),
        col(Brand.jwks),
    ).where(col(Brand.client_id) == bindparam("client_id"), col(Brand.deleted_at).is_(None))
)


def find_client(connection: Connection, client_id: str) -> ClientRecord | None:
    """The brand with this client id as the OAuth server needs it, if any, read on `connection` (in
    its transaction, if it has one: a session's connection sees what it has flushed)."""
    if not client_id or len(client_id) > 64:
        return None
    row = _CLIENT_BY_CLIENT_ID.first(connection, {"client_id": client_id})
    if row is None:
        return None
    return ClientRecord(
        row.id,
        row.client_id,
        row.name,
        bool(row.public),
        row.secret_hash,
        tuple(row.redirect_uris),
        tuple(row.scopes),
        row.id_token_signed_response_alg,
        bool(row.private_key_jwt),
        row.jwks,
    )


class OAuthClient:
    """Authlib's view of a brand (its ClientMixin protocol), kept apart from the table."""

    def __init__(self, brand: ClientRecord) -> None:
        self.brand = brand

    def get_client_id(self) -> str:
        """The public client identifier."""
        return self.brand.client_id

    @property
    def id_token_signed_response_alg(self) -> str:
        """How this brand's ID tokens are signed (OpenID Connect Registration §2): RS256 unless it
        registered Ed25519."""
        return self.brand.id_token_alg

    def get_default_redirect_uri(self) -> str | None:
        """No default: every authorization request must name its redirect URI exactly."""
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        """Profile scopes and `openid` pass through (the offer decides them; client credentials refuse
        both); brand scopes only if registered."""
        allowed = [
            s for s in split_scope(scope) if is_profile_scope(s) or s == "openid" or s in self.brand.scopes
        ]
        return " ".join(dict.fromkeys(allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match against a registered URI."""
        # Bytes, not str: compare_digest refuses non-ASCII str (a TypeError, so a 500) — encode first.
        given = redirect_uri.encode()
        return any(hmac.compare_digest(given, uri.encode()) for uri in self.brand.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time comparison of the secret's digest."""
        if self.brand.secret_hash is None:
            return False
        return hmac.compare_digest(secret_digest(client_secret), self.brand.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Public brands authenticate with nothing (PKCE protects them); confidential ones with their
        secret, or, if they registered keys for it, only with a JWT signed by one (`private_key_jwt`)."""
        if self.brand.public:
            return method == "none"
        if self.brand.private_key_jwt:
            return method == "private_key_jwt"
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        """Only the authorization code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Public brands cannot use client credentials or exchange grant tickets: they have no
        credentials (and no back end for the webhook that carries a ticket)."""
        if grant_type in ("client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"):
            return not self.brand.public
        return grant_type in {"authorization_code", "refresh_token"}
