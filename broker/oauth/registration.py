"""Dynamic client registration (RFC 7591): a brand registers itself, with an initial access token an
operator issued (`consentry registration-tokens create`), or with none when the operator opened
registration (`CONSENTRY_OPEN_REGISTRATION`).

The metadata a brand sends is checked as strictly as an operator's `consentry brands create`
(`register_brand`): redirect URIs https (or http on loopback) without a fragment, or
`invalid_redirect_uri`; anything else unusable is `invalid_client_metadata`, saying which member and
why. Metadata this broker does not know is ignored (§2). What is kept: the name, redirect and
post-logout redirect URIs, the token endpoint authentication method (`client_secret_basic`,
`client_secret_post`, `private_key_jwt` with the public keys of `jwks`, or `none` for a public client,
which then uses PKCE alone and cannot use client credentials), `contacts`, `policy_uri`, `tos_uri` and
`id_token_signed_response_alg`. The answer holds the client's secret (none for a client with keys) and
its registration access token, each shown only there and stored as a digest.

The registration access token manages the registration (RFC 7592): read it, replace its metadata,
rotate the secret, or delete it (`delete_client`: the brand leaves; what it owes stays owed). Each
change is an audit entry (`client.registered`, `client.updated`, `client.deleted`) naming the brand
and nothing else.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from joserfc.errors import JoseError
from joserfc.jwk import import_key
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from broker.accounts.models import Brand, RegistrationToken, keys_of_use
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants
from broker.consent.models import Offer
from broker.consent.offers import Offers
from broker.digests import secret_digest
from broker.errors import ValidationFailed
from broker.oauth.clients import check_redirect_uri, new_client_secret, register_brand

__all__ = [
    "ClientMetadata",
    "Registered",
    "RegistrationRefused",
    "delete_client",
    "issue_registration_token",
    "read_client",
    "register_client",
    "rotate_secret",
    "update_client",
]  # fmt: skip

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
MAX_URIS = 10
_Uri = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class RegistrationRefused(Exception):
    """A registration request answered with RFC 7591's error JSON: `error` and a description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
MAX_KEYS = 5
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]


def _authorization_code() -> list[GrantType]:
    return ["authorization_code"]


def _code() -> list[Literal["code"]]:
    return ["code"]


def check_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A brand's JWK set as registered: 1 to MAX_KEYS public keys, each RSA, EC or OKP, signing (`use`
    sig or none) or encryption (`use` enc: ECDH-ES on P-256 or X25519, with a `kid` of its own);
    ValueError saying what is wrong otherwise."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise ValueError(f"must be a JWK set of 1 to {MAX_KEYS} keys")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ValueError("holds a key that is not an RSA, EC or OKP public key")
        if _PRIVATE_MEMBERS & set(key):
            raise ValueError("holds a private key: register public keys only")
        use = key.get("use", "sig")
        if use not in ("sig", "enc"):
            raise ValueError("holds a key whose use is neither sig nor enc")
        if use == "enc" and (
            (key.get("kty"), key.get("crv")) not in (("EC", "P-256"), ("OKP", "X25519"))
            or key.get("alg", "ECDH-ES") != "ECDH-ES"
        ):
            raise ValueError("holds an encryption key that is not ECDH-ES on P-256 or X25519")
        if use == "enc" and not (isinstance(key.get("kid"), str) and 1 <= len(key["kid"]) <= 200):
            raise ValueError(
                "holds an encryption key without a kid (1 to 200 characters): what customers seal "
                "to the brand names the key it is sealed to"
            )
        try:
            import_key(key)
        except (JoseError, ValueError, TypeError):
            raise ValueError("holds a key that cannot be read") from None
    kids = [key["kid"] for key in keys if key.get("use") == "enc"]
    if len(set(kids)) != len(kids):
        raise ValueError("holds two encryption keys of the same kid")
    return {"keys": keys}


class ClientMetadata(BaseModel):
    """The client metadata this broker keeps (RFC 7591 §2, OpenID Connect Registration §2)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    client_name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    redirect_uris: list[_Uri] = Field(min_length=1, max_length=MAX_URIS)
    post_logout_redirect_uris: list[_Uri] = Field(default_factory=list, max_length=MAX_URIS)
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"  # noqa: S105 - a method's name
    grant_types: list[GrantType] = Field(default_factory=_authorization_code, min_length=1, max_length=3)
    response_types: list[Literal["code"]] = Field(default_factory=_code, max_length=1)
    contacts: list[Annotated[str, StringConstraints(min_length=3, max_length=320)]] = Field(
        default_factory=list, max_length=5
    )
    policy_uri: _Uri | None = None
    tos_uri: _Uri | None = None
    id_token_signed_response_alg: Literal["RS256", "Ed25519"] = "RS256"  # noqa: S105 - an algorithm
    jwks: dict[str, Any] | None = None

    @field_validator("jwks")
    @classmethod
    def _public_keys(cls, jwks: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if jwks is None else check_jwks(jwks)

    def signing_keys(self) -> bool:
        """Whether `jwks` holds a key to sign with."""
        return keys_of_use(self.jwks, "sig") is not None

    @field_validator("contacts")
    @classmethod
    def _addresses(cls, contacts: list[str]) -> list[str]:
        for contact in contacts:
            local, at, domain = contact.partition("@")
            if not (at and local and "." in domain) or any(c.isspace() for c in contact):
                raise ValueError(f"{contact!r} is not an email address")
        return contacts

    @field_validator("policy_uri", "tos_uri")
    @classmethod
    def _https(cls, uri: str | None) -> str | None:
        if uri is not None and not uri.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return uri

    def public(self) -> bool:
        """A client without a secret (PKCE alone)."""
        return self.token_endpoint_auth_method == "none"  # noqa: S105 - a method's name

    def signs(self) -> bool:
        """A client that authenticates with JWTs signed by its `jwks` (RFC 7523)."""
        return self.token_endpoint_auth_method == "private_key_jwt"  # noqa: S105 - a method's name


@dataclass(frozen=True, slots=True)
class Registered:
    """A registered client: the answer's members, secrets included (shown only now)."""

    brand: Brand
    client_secret: str | None
    registration_access_token: str
    metadata: ClientMetadata

    def response(self, issuer: str) -> dict[str, Any]:
        """RFC 7591 §3.2.1's answer (with RFC 7592's registration_client_uri)."""
        body: dict[str, Any] = {
            "client_id": self.brand.client_id,
            "client_id_issued_at": int(self.brand.created_at.timestamp()),
            **self.metadata.model_dump(),
            "registration_access_token": self.registration_access_token,
            "registration_client_uri": f"{issuer}/oauth/register/{self.brand.client_id}",
        }
        if self.client_secret is not None:
            body["client_secret"], body["client_secret_expires_at"] = self.client_secret, 0
        return body


def issue_registration_token(
    session: Session, *, uses: int, lifetime: timedelta, now: datetime
) -> tuple[str, RegistrationToken]:
    """A new initial access token (`rit_…`, shown only now) for `uses` registrations within `lifetime`."""
    if uses < 1 or lifetime <= timedelta(0):
        raise ValidationFailed("an initial access token needs at least one use and a lifetime")
    token = "rit_" + secrets.token_urlsafe(32)
    row = RegistrationToken(
        token_hash=secret_digest(token), uses_left=uses, created_at=now, expires_at=now + lifetime
    )
    session.add(row)
    session.flush()
    return token, row


_TOKEN_BY_DIGEST = (
    select(RegistrationToken)
    .where(col(RegistrationToken.token_hash) == bindparam("token_hash"))
    .with_for_update()
)


def register_client(
    session: Session,
    audit: AuditLog,
    *,
    body: Any,
    initial_token: str | None,
    open_registration: bool,
    now: datetime,
) -> Registered:
    """Register the client `body` (parsed JSON) describes; raises `RegistrationRefused`."""
    if initial_token is not None or not open_registration:
        _spend(session, initial_token, now)
    metadata = _metadata(body)
    try:
        registered = register_brand(
            session,
            name=metadata.client_name,
            redirect_uris=metadata.redirect_uris,
            public=metadata.public(),
            clock=lambda: now,
            post_logout_redirect_uris=metadata.post_logout_redirect_uris,
            id_token_signed_response_alg=metadata.id_token_signed_response_alg,
        )
    except ValidationFailed as failed:  # the checks `_metadata` made first leave nothing here
        raise RegistrationRefused("invalid_client_metadata", failed.detail) from None
    brand, secret = registered.brand, registered.client_secret
    brand.jwks = metadata.jwks
    if metadata.signs():  # its keys are its credentials: no secret to keep, or to leak
        brand.secret_hash, brand.private_key_jwt, secret = None, True, None
    management = "rat_" + secrets.token_urlsafe(32)
    brand.contacts, brand.policy_uri, brand.tos_uri = metadata.contacts, metadata.policy_uri, metadata.tos_uri
    brand.registration_token_hash = secret_digest(management)
    session.add(brand)
    audit.record(session, Kind.CLIENT_REGISTERED, actor=Actor.BRAND, brand_id=brand.id)
    return Registered(brand, secret, management, metadata)


_BRAND_BY_REGISTRATION = select(Brand).where(col(Brand.registration_token_hash) == bindparam("token_hash"))


def _managed(session: Session, client_id: str, token: str | None) -> Brand:
    """The brand whose registration `token` manages, if it is `client_id`'s (RFC 7592 §2: anything
    else, an unknown client included, is 401 `invalid_token`)."""
    brand = None
    if token:
        brand = session.exec(_BRAND_BY_REGISTRATION, params={"token_hash": secret_digest(token)}).first()
    if brand is None or brand.client_id != client_id:
        raise RegistrationRefused(
            "invalid_token",
            "send this client's registration access token: 'Authorization: Bearer rat_…'",
            401,
        )
    return brand


def _as_registered(brand: Brand) -> ClientMetadata:
    method: AuthMethod = "none" if brand.public else "client_secret_basic"
    if brand.private_key_jwt:
        method = "private_key_jwt"
    kept = ClientMetadata(
        client_name=brand.name,
        redirect_uris=list(brand.redirect_uris),
        post_logout_redirect_uris=list(brand.post_logout_redirect_uris),
        token_endpoint_auth_method=method,
        contacts=list(brand.contacts),
        policy_uri=brand.policy_uri,
        tos_uri=brand.tos_uri,
        id_token_signed_response_alg=brand.id_token_signed_response_alg,
        jwks=brand.jwks,
    )
    usable = [t for t in GRANT_TYPES if not (kept.public() and t == "client_credentials")]
    return kept.model_copy(update={"grant_types": usable})


def read_client(session: Session, *, client_id: str, token: str | None, issuer: str) -> dict[str, Any]:
    """RFC 7592 §2.1: the client's registration as kept (its secret is not shown again)."""
    brand = _managed(session, client_id, token)
    return _configuration(brand, _as_registered(brand), issuer)


def update_client(
    session: Session, audit: AuditLog, *, client_id: str, token: str | None, body: Any, issuer: str
) -> dict[str, Any]:
    """RFC 7592 §2.2: replace the client's metadata with `body` (checked as at registration; it must
    name the same `client_id`, and cannot turn a confidential client public or back)."""
    brand = _managed(session, client_id, token)
    if not isinstance(body, dict) or body.get("client_id") != client_id:
        raise RegistrationRefused("invalid_client_metadata", "the body must name this client's client_id")
    metadata = _metadata(body)
    if metadata.public() != brand.public or metadata.signs() != brand.private_key_jwt:
        raise RegistrationRefused(
            "invalid_client_metadata",
            "token_endpoint_auth_method cannot change between none, a secret and keys",
        )
    brand.name, brand.redirect_uris = metadata.client_name, list(metadata.redirect_uris)
    brand.post_logout_redirect_uris = list(metadata.post_logout_redirect_uris)
    brand.contacts, brand.policy_uri, brand.tos_uri = metadata.contacts, metadata.policy_uri, metadata.tos_uri
    brand.id_token_signed_response_alg = metadata.id_token_signed_response_alg
    brand.jwks = metadata.jwks  # a brand rotates its keys (signing and encryption) this way
    session.add(brand)
    audit.record(session, Kind.CLIENT_UPDATED, actor=Actor.BRAND, brand_id=brand.id)
    return _configuration(brand, metadata, issuer)


def rotate_secret(session: Session, audit: AuditLog, *, client_id: str, token: str | None) -> str:
    """A new client secret for a brand that uses one (shown only now; the old one stops working at once,
    in every process: `broker.oauth.client_cache`)."""
    brand = _managed(session, client_id, token)
    if brand.public or brand.private_key_jwt:
        raise RegistrationRefused("invalid_client_metadata", "this client authenticates without a secret")
    secret = new_client_secret(session, brand)
    audit.record(session, Kind.CLIENT_UPDATED, actor=Actor.BRAND, brand_id=brand.id)
    return secret


def delete_client(
    session: Session, grants: Grants, offers: Offers, audit: AuditLog, *, client_id: str, token: str | None
) -> None:
    """RFC 7592 §2.3: the brand leaves. Its offers are withdrawn and its live grants end as if it had
    ended each (their entries, receipts and notices); it no longer authenticates (no secret, keys or
    registration token, and `find_client` no longer finds it), so its tokens die at their next use. Its
    row stays, deleted: what it owes (value, the deletion of data it received) stays owed, and the log
    and receipts still name it."""
    brand = _managed(session, client_id, token)
    lineages = select(Offer.lineage_id).where(col(Offer.brand_id) == brand.id).distinct()
    for lineage in session.exec(lineages):
        offers.withdraw(session, brand, lineage)
    grants.revoke_all_for_brand(session, brand.id)
    brand.deleted_at = grants.clock()
    brand.secret_hash = brand.registration_token_hash = brand.jwks = None
    session.add(brand)
    audit.record(session, Kind.CLIENT_DELETED, actor=Actor.BRAND, brand_id=brand.id)


def _configuration(brand: Brand, metadata: ClientMetadata, issuer: str) -> dict[str, Any]:
    return {
        "client_id": brand.client_id,
        "client_id_issued_at": int(brand.created_at.timestamp()),
        **metadata.model_dump(),
        "registration_client_uri": f"{issuer}/oauth/register/{brand.client_id}",
    }


def _spend(session: Session, token: str | None, now: datetime) -> None:
    """Use one of the initial access token's registrations, or refuse (401 `invalid_token`)."""
    if not token:
        raise RegistrationRefused(
            "invalid_token", "registration needs an initial access token: 'Authorization: Bearer rit_…'", 401
        )
    row = session.exec(_TOKEN_BY_DIGEST, params={"token_hash": secret_digest(token)}).first()
    if row is None:
        raise RegistrationRefused("invalid_token", "this initial access token is not one we issued", 401)
    if row.expires_at <= now:
        raise RegistrationRefused("invalid_token", "this initial access token has expired", 401)
    if row.uses_left <= 0:
        raise RegistrationRefused("invalid_token", "this initial access token is used up", 401)
    row.uses_left -= 1
    session.add(row)


def _metadata(body: Any) -> ClientMetadata:
    if not isinstance(body, dict):
        raise RegistrationRefused("invalid_client_metadata", "send the client metadata as a JSON object")
    try:
        metadata = ClientMetadata.model_validate(body)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the body"
        member = str(error["loc"][0]) if error["loc"] else ""
        code = "invalid_redirect_uri" if member.endswith("redirect_uris") else "invalid_client_metadata"
        raise RegistrationRefused(code, f"{where}: {error['msg']}") from None
    for member in ("redirect_uris", "post_logout_redirect_uris"):
        for index, uri in enumerate(getattr(metadata, member)):
            problem = check_redirect_uri(uri)
            if problem is not None:
                raise RegistrationRefused("invalid_redirect_uri", f"{member}.{index}: {problem}")
    if metadata.signs() and not metadata.signing_keys():
        raise RegistrationRefused(
            "invalid_client_metadata", "private_key_jwt needs jwks: the public keys it signs with (use sig)"
        )
    if not metadata.signs() and metadata.signing_keys():
        raise RegistrationRefused(
            "invalid_client_metadata",
            "keys to sign with (use sig) are only for token_endpoint_auth_method private_key_jwt; "
            "a key to receive self-custody grants says use enc",
        )
    if metadata.public() and "client_credentials" in metadata.grant_types:
        raise RegistrationRefused(
            "invalid_client_metadata", "a public client (token_endpoint_auth_method none) has no credentials"
        )
    # What the client may do, as the token endpoint allows it (RFC 7591 §3.2.1: the server's values
    # replace the client's): a public client has no credentials to use on its own.
    usable = [t for t in GRANT_TYPES if not (metadata.public() and t == "client_credentials")]
    return metadata.model_copy(update={"grant_types": usable})
