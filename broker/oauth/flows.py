"""Authlib grants and extensions, bound to our tables.

- `CodeFlow` (RFC 6749 §4.1) with `S256Only` (RFC 7636, S256 required for every client),
  `OfferBinding` (the request names an offer; scopes must be its fields) and `IdTokens` (OpenID
  Connect: an ID token beside the tokens of a request with the `openid` scope; `broker.oauth.oidc`).
- `RefreshFlow` (RFC 6749 §6) rotating refresh tokens; a used one revokes its family (RFC 9700 §4.14).
- `BrandCredentialsFlow` (RFC 6749 §4.4) for brand-level scopes only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    InvalidRequestError,
    InvalidScopeError,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from sqlalchemy import bindparam
from sqlmodel import col, select

from broker.audit.entries import Actor
from broker.consent.grants import effective_status
from broker.consent.models import Grant, GrantStatus
from broker.consent.purposes import granted_purposes
from broker.consent.scopes import fields_scope, is_profile_scope, profile_fields, split_scope
from broker.digests import secret_digest
from broker.errors import BrokerError
from broker.oauth.clients import OAuthClient
from broker.oauth.context import (
    CODE_LIFETIME,
    ID_TOKEN_LIFETIME,
    REFRESH_TOKEN_LIFETIME,
    OAuthContext,
    OAuthHTTPRequest,
    new_secret,
)
from broker.oauth.families import revoke_families
from broker.oauth.models import AuthorizationCode, RefreshToken, TokenFamily
from broker.oauth.oidc import OIDC_SCOPES, OPENID, Authentication, asked_fields, half_hash, is_openid
from broker.oauth.signing import ID_TOKEN_TYPE


@dataclass(frozen=True, slots=True)
class Subject:
    """The resource owner as tokens see it: a live grant, and the token family it belongs to; at the
    authorization endpoint, also how the customer authenticated (for an ID token)."""

    grant: Grant
    family_id: UUID
    authentication: Authentication | None = None
    purpose: str | None = None  # the one purpose the client asked its access token for, if it did

    def get_user_id(self) -> str:
        """Authlib asks for an id; ours is the grant's customer."""
        return str(self.grant.customer_id)


def _ctx(grant: Any) -> OAuthContext:
    request: OAuthHTTPRequest = grant.request
    return request.ctx


class S256Only(CodeChallenge):
    """PKCE required of every client, S256 only: a missing or plain challenge is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """Require code_challenge and code_challenge_method=S256 (RFC 9700 §2.1.1)."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge is required: use PKCE with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; plain or missing is refused")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        """Every client sends the verifier, confidential or not."""
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("code_verifier is required")
        super().validate_code_verifier(grant, result)


def _requested_offer(data: dict[str, str]) -> str:
    if data.get("offer"):
        return data["offer"]
    details = data.get("authorization_details")
    if details:
        try:
            parsed = json.loads(details)
        except ValueError:
            raise InvalidRequestError("authorization_details is not valid JSON") from None
        if isinstance(parsed, list):
            for item in parsed:
                if (
                    isinstance(item, dict)
                    and item.get("type") == "consentry_offer"
                    and isinstance(item.get("offer"), str)
                ):
                    return str(item["offer"])
        raise InvalidRequestError(
            "authorization_details must hold an object of type consentry_offer with an offer id"
        )
    raise InvalidRequestError("name the offer: offer=<id> or authorization_details of type consentry_offer")


class OfferBinding:
    """Resolve the offer the request names; its fields bound the scopes that may be asked for."""

    def __call__(self, grant: Any) -> None:
        """Register on a code grant."""
        grant.register_hook("after_validate_authorization_request_payload", self.bind)

    def bind(self, grant: Any, redirect_uri: str) -> None:
        """Check the requested scopes against the offer and remember the offer for consent."""
        ctx, request = _ctx(grant), grant.request
        if request.payload.data.get("response_mode", "query") != "query":
            raise InvalidRequestError("response_mode must be query: the code comes back in the query")
        reference = _requested_offer(request.payload.data)
        try:
            offer_id = UUID(reference)
            offer = ctx.services.offers.current_for_authorization(
                ctx.session, request.client.brand.id, offer_id
            )
        except ValueError:
            raise InvalidRequestError(f"offer '{reference[:64]}' is not an offer id") from None
        except BrokerError as exc:
            raise InvalidRequestError(exc.detail) from None
        offered = [*offer.required_fields, *offer.optional_fields]
        scopes = split_scope(request.payload.scope)
        if any(not is_profile_scope(s) and s not in OIDC_SCOPES for s in scopes):
            raise InvalidScopeError(
                "an authorization request asks only for profile:<field> scopes, and openid with "
                "profile, email, phone or address"
            )
        explicit = profile_fields(request.payload.scope)
        outside = [f for f in explicit if f not in offered]
        if outside:
            raise InvalidScopeError(f"not part of offer '{offer.id}': {', '.join(outside)}")
        # OpenID Connect's scopes and claims name fields too, but only those of the offer count (they
        # never widen it), and the offer's required fields come with them: a standard client asking
        # for `openid email` is shown the offer, not refused.
        standard = [f for f in asked_fields(scopes, request.payload.data.get("claims")) if f in offered]
        if explicit:
            asked = explicit + standard
        elif standard:
            asked = [*offer.required_fields, *standard]
        else:
            asked = offered
        missing = [f for f in offer.required_fields if f not in asked]
        if missing:
            raise InvalidScopeError(
                f"the offer requires {', '.join(missing)}; ask for them or revise the offer"
            )
        granted = fields_scope(f for f in offered if f in asked)
        request.scope = f"{OPENID} {granted}" if OPENID in scopes else granted
        ctx.offer = offer


class CodeFlow(AuthorizationCodeGrant):
    """Authorization code grant; the code is one-time, and a replay revokes what it issued."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

    def generate_authorization_code(self) -> str:
        """256 random bits."""
        return new_secret("ac_")

    def save_authorization_code(self, code: str, request: OAuthHTTPRequest) -> None:
        """Store the code's digest, bound to client, redirect URI, PKCE challenge and the new grant."""
        ctx, subject = request.ctx, request.user
        assert isinstance(subject, Subject)
        now = ctx.services.clock()
        granted = fields_scope(subject.grant.fields)
        row = AuthorizationCode(
            code_hash=secret_digest(code),
            brand_id=subject.grant.brand_id,
            grant_id=subject.grant.id,
            family_id=subject.family_id,
            redirect_uri=request.payload.redirect_uri,
            scope=granted,
            code_challenge=request.payload.data["code_challenge"],
            code_challenge_method=request.payload.data["code_challenge_method"],
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
        if is_openid(request.scope):
            row.scope = f"{OPENID} {granted}"
            row.nonce = request.payload.data.get("nonce") or None
            if subject.authentication is not None:
                row.auth_time = subject.authentication.at
                row.acr = subject.authentication.acr
                row.amr = " ".join(subject.authentication.amr)
        ctx.session.add(row)

    def query_authorization_code(self, code: str, client: OAuthClient) -> _CodeView | None:
        """The unused, unexpired code issued to this client; a used one revokes its token family."""
        ctx = _ctx(self)
        row = ctx.session.get(AuthorizationCode, secret_digest(code))
        if row is None or row.brand_id != client.brand.id:
            return None
        if row.used_at is not None:
            revoke_family(ctx, row.family_id, reason="code-replay")
            return None
        if row.expires_at <= ctx.services.clock():
            return None
        return _CodeView(row)

    def delete_authorization_code(self, authorization_code: _CodeView) -> None:
        """Mark the code used rather than delete it, so a replay is recognised."""
        ctx = _ctx(self)
        authorization_code.row.used_at = ctx.services.clock()
        ctx.session.add(authorization_code.row)

    def authenticate_user(self, authorization_code: _CodeView) -> Subject | None:
        """The grant behind the code, if it is still active; its token family starts here."""
        ctx, row = _ctx(self), authorization_code.row
        grant = ctx.session.get(Grant, row.grant_id)
        if grant is None or effective_status(grant, ctx.services.clock()) is not GrantStatus.ACTIVE:
            return None
        ctx.session.add(
            TokenFamily(
                id=row.family_id, grant_id=grant.id, brand_id=grant.brand_id, created_at=ctx.services.clock()
            )
        )
        ctx.session.flush()
        return Subject(grant, row.family_id, purpose=_asked_purpose(self.request, grant))


def _asked_purpose(request: Any, grant: Grant) -> str | None:
    """The token request's `purpose` (a client that wants an access token for one purpose only: its
    reads are then for that purpose alone), if it is one the grant covers."""
    purpose = request.form.get("purpose")
    if purpose is None:
        return None
    granted = granted_purposes(grant.purpose, grant.fields, grant.purpose_fields)
    if purpose not in granted:
        raise InvalidRequestError(f"purpose must be one this grant covers: {', '.join(granted)}")
    return str(purpose)


@dataclass(frozen=True, slots=True)
class _CodeView:
    row: AuthorizationCode

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int | None:
        return int(self.row.auth_time.timestamp()) if self.row.auth_time else None

    def get_acr(self) -> str | None:
        return self.row.acr

    def get_amr(self) -> list[str] | None:
        return self.row.amr.split() if self.row.amr else None


NONCE_MAX = 512  # `AuthorizationCode.nonce`'s length
# A nonce seen before from this brand's requests (`IdTokens.exists_nonce`). Built once.
_NONCE_SEEN = (
    select(col(AuthorizationCode.code_hash))
    .where(col(AuthorizationCode.brand_id) == bindparam("brand_id"))
    .where(col(AuthorizationCode.nonce) == bindparam("nonce"))
    .limit(1)
)


class IdTokens(OpenIDCode):
    """OpenID Connect on the code flow (Core §3.1): Authlib's checks of the authorization request
    (`prompt`, a `nonce` used before by the same brand is refused as a replay), and an ID token in the
    token response of a code whose scope has `openid`, signed by our keys (RS256 unless the brand
    registered Ed25519), which says who authenticated and how, and nothing about them
    (`broker.oauth.oidc`)."""

    def __init__(self) -> None:
        super().__init__(require_nonce=False)

    def validate_openid_authorization_request(self, grant: Any, redirect_uri: str) -> None:
        """Authlib's checks, and a `nonce` the code can keep (at most `NONCE_MAX` characters)."""
        nonce = grant.request.payload.data.get("nonce") or ""
        if len(nonce) > NONCE_MAX:
            raise InvalidRequestError(f"nonce must be at most {NONCE_MAX} characters")
        super().validate_openid_authorization_request(grant, redirect_uri)

    def exists_nonce(self, nonce: str, request: OAuthHTTPRequest) -> bool:
        """Whether the brand's earlier requests already sent this nonce (the relying party reused it,
        or someone replays its request)."""
        ctx = request.ctx
        params = {"brand_id": request.client.brand.id, "nonce": nonce}
        return ctx.session.exec(_NONCE_SEEN, params=params).first() is not None

    def encode_id_token(self, token: dict[str, Any], request: OAuthHTTPRequest) -> str:
        """The ID token (Core §2): our issuer, the brand as audience, the pairwise subject, and what
        the code remembered of the authentication."""
        services, client, subject = request.ctx.services, request.client, request.user
        assert isinstance(subject, Subject) and isinstance(request.authorization_code, _CodeView)
        code = request.authorization_code
        now = services.clock()
        alg = client.id_token_signed_response_alg
        claims: dict[str, Any] = {
            "iss": services.issuer,
            "sub": services.pairwise_subject(subject.grant.brand_id, subject.grant.customer_id),
            "aud": client.get_client_id(),
            "azp": client.get_client_id(),
            "iat": int(now.timestamp()),
            "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        }
        optional = {"auth_time": code.get_auth_time(), "nonce": code.get_nonce(),
                    "acr": code.get_acr(), "amr": code.get_amr()}  # fmt: skip
        claims.update({name: value for name, value in optional.items() if value is not None})
        if token.get("access_token"):
            claims["at_hash"] = half_hash(token["access_token"], alg)
        return services.signing.sign(claims, typ=ID_TOKEN_TYPE, alg=alg)


def revoke_family(ctx: OAuthContext, family_id: UUID, *, reason: str, actor: Actor = Actor.BROKER) -> None:
    """Revoke every token of a family: refresh tokens stop working, access tokens fail their next read."""
    services = ctx.services
    revoke_families(
        ctx.session, services.audit, family_id=family_id, reason=reason, actor=actor, at=services.clock()
    )


@dataclass(frozen=True, slots=True)
class _RefreshView:
    row: RefreshToken
    family: TokenFamily

    def check_client(self, client: OAuthClient) -> bool:
        return self.family.brand_id == client.brand.id

    def get_scope(self) -> str:
        return self.row.scope


class RefreshFlow(RefreshTokenGrant):
    """Refresh tokens rotate on every use; presenting an old one revokes the whole family."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshView | None:
        """A live, unused refresh token; reuse of a used one revokes its family (RFC 9700 §4.14.2)."""
        ctx = _ctx(self)
        row = ctx.session.get(RefreshToken, secret_digest(refresh_token))
        if row is None:
            return None
        family = ctx.session.get(TokenFamily, row.family_id)
        if family is None or family.revoked_at is not None:
            return None
        if row.used_at is not None:
            revoke_family(ctx, family.id, reason="refresh-reuse")
            return None
        if row.expires_at <= ctx.services.clock():
            return None
        return _RefreshView(row, family)

    def authenticate_user(self, refresh_token: _RefreshView) -> Subject | None:
        """The grant, if it has not ended. A suspended grant (value overdue) still refreshes: its reads
        are refused until it resumes, and the brand keeps its tokens for when it does."""
        ctx = _ctx(self)
        grant = ctx.session.get(Grant, refresh_token.family.grant_id)
        live = (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
        if grant is None or effective_status(grant, ctx.services.clock()) not in live:
            return None
        return Subject(grant, refresh_token.family.id, purpose=_asked_purpose(self.request, grant))

    def revoke_old_credential(self, refresh_token: _RefreshView) -> None:
        """Mark the presented token used: it never works again."""
        ctx = _ctx(self)
        refresh_token.row.used_at = ctx.services.clock()
        ctx.session.add(refresh_token.row)


class BrandCredentialsFlow(ClientCredentialsGrant):
    """Client credentials for brand-level scopes (offers, grants); never profile data."""

    # Authlib's default is Basic alone; the README and the metadata promise client_secret_post too.
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def validate_token_request(self) -> None:
        """Refuse profile and OpenID Connect scopes, which only a customer can grant."""
        super().validate_token_request()
        scopes = split_scope(self.request.payload.scope)
        if any(is_profile_scope(s) or s in OIDC_SCOPES for s in scopes):
            raise InvalidScopeError(
                "client credentials carry brand scopes only; profile data needs the customer's consent"
            )


def store_refresh_token(ctx: OAuthContext, token: dict[str, Any], subject: Subject) -> None:
    """Persist the digest of a newly issued refresh token in its family."""
    now = ctx.services.clock()
    ctx.session.add(
        RefreshToken(
            token_hash=secret_digest(token["refresh_token"]),
            family_id=subject.family_id,
            scope=token.get("scope", ""),
            created_at=now,
            expires_at=min(now + REFRESH_TOKEN_LIFETIME, subject.grant.expires_at),
        )
    )
