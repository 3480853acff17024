"""Our Starlette integration of Authlib's AuthorizationServer (compare Authlib's Flask one).

One server object is built per request around that request's `OAuthContext`, so grants and
endpoints reach the request's database session without globals. Responses are Starlette responses;
every authorization redirect carries `iss` (RFC 9207).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import AuthorizationServer
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from starlette.responses import Response

from broker.audit.entries import Actor
from broker.consent.scopes import granted_scope, supported_scopes
from broker.digests import secret_digest
from broker.errors import NotAuthenticated
from broker.ids import unique_id
from broker.oauth.assertions import PRIVATE_KEY_JWT, PrivateKeyJwt
from broker.oauth.bearer import verify_claims
from broker.oauth.clients import OAuthClient, find_brand, find_client
from broker.oauth.context import (
    ACCESS_TOKEN_LIFETIME,
    OAuthContext,
    OAuthHTTPRequest,
    OAuthServices,
    new_secret,
)
from broker.oauth.flows import (
    BrandCredentialsFlow,
    CodeFlow,
    IdTokens,
    OfferBinding,
    RefreshFlow,
    S256Only,
    Subject,
    revoke_family,
    store_refresh_token,
)
from broker.oauth.models import RefreshToken, RevokedAccessToken, TokenFamily
from broker.oauth.oidc import OIDC_SCOPES, OPENID, is_openid
from broker.oauth.signing import InvalidJWT
from broker.oauth.tickets import TicketExchange

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class AccessTokens:
    """RFC 9068 access tokens: Ed25519 JWTs, 10 minutes, pairwise `sub`, the grant id and family."""

    def __init__(self, services: OAuthServices) -> None:
        self.services = services

    def __call__(self, client: OAuthClient, grant_type: str, user: Any, scope: str | None) -> str:
        """Sign an access token for `client`, on behalf of `user` (a Subject) or of the brand itself."""
        now = self.services.clock()
        claims: dict[str, Any] = {
            "iss": self.services.issuer,
            "aud": self.services.issuer,
            "iat": int(now.timestamp()),
            "exp": int((now + ACCESS_TOKEN_LIFETIME).timestamp()),
            "jti": unique_id(),  # no system call per token (`broker.ids`)
            "client_id": client.get_client_id(),
            "scope": scope or "",
        }
        if isinstance(user, Subject):
            granted = granted_scope(scope, user.grant.fields)
            # `openid` stays: UserInfo asks for it (its claims are still only the grant's fields).
            claims["scope"] = f"{OPENID} {granted}" if is_openid(scope) else granted
            claims["sub"] = self.services.pairwise_subject(user.grant.brand_id, user.grant.customer_id)
            claims["grant_id"] = str(user.grant.id)
            claims["fam"] = str(user.family_id)
            if user.purpose is not None:  # reads with it are for this purpose only
                claims["purpose"] = user.purpose
        else:
            claims["sub"] = client.get_client_id()
        return self.services.signing.sign(claims)


@dataclass(frozen=True, slots=True)
class TokenView:
    """A presented token, refresh or access, as revocation and introspection see it."""

    kind: str
    brand_id: UUID
    claims: dict[str, Any]
    now: datetime
    refresh: RefreshToken | None = None
    family: TokenFamily | None = None
    denied: bool = False  # a brand-level access token on the deny-list

    def check_client(self, client: OAuthClient) -> bool:
        """Brands act on their own tokens only."""
        return bool(self.brand_id == client.brand.id)

    def is_expired(self) -> bool:
        """Past `exp` (the introspection endpoint asks)."""
        return bool(self.claims["exp"] <= self.now.timestamp())

    def is_revoked(self) -> bool:
        """Revoked through its family or the deny-list, or used (a refresh token already rotated)."""
        if self.denied or (self.family is not None and self.family.revoked_at is not None):
            return True
        return self.refresh is not None and self.refresh.used_at is not None


def find_token(ctx: OAuthContext, token: str, *, live: bool = False) -> TokenView | None:
    """Look a presented token up: a refresh token by digest, an access token by its signature (and,
    when `live`, by every claim check the resource server makes: introspection asks that)."""
    session, now = ctx.session, ctx.services.clock()
    refresh = session.get(RefreshToken, secret_digest(token)) if token.startswith("rt_") else None
    if refresh is not None:
        family = session.get(TokenFamily, refresh.family_id)
        assert family is not None
        claims = {"exp": int(refresh.expires_at.timestamp()), "scope": refresh.scope}
        return TokenView("refresh_token", family.brand_id, claims, now, refresh, family)
    try:
        # The resource server's own checks (signature, alg, type, iss, aud, exp, iat): a token the
        # brand API would refuse is never introspected as active, and a malformed one is not a 500.
        claims = verify_claims(ctx.services, token) if live else ctx.services.signing.verify(token)
        if not isinstance(claims.get("exp"), int):
            return None  # not one of ours: every token we sign has an integer `exp`
        family_id = UUID(str(claims["fam"])) if "fam" in claims else None
    except (InvalidJWT, NotAuthenticated, ValueError):
        return None
    brand = find_brand(session, str(claims.get("client_id", "")))
    if brand is None:
        return None
    family = session.get(TokenFamily, family_id) if family_id else None
    denied = family_id is None and session.get(RevokedAccessToken, str(claims.get("jti"))) is not None
    return TokenView("access_token", brand.id, claims, now, None, family, denied)


class Revocation(RevocationEndpoint):
    """RFC 7009: revoking any token of a family revokes the family; brand tokens by `jti`."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        """Find the token whatever the hint says (hints are only hints)."""
        return find_token(self.server.ctx, token_string)

    def revoke_token(self, token: TokenView, request: OAuthHTTPRequest) -> None:
        """Revoke the token's family, or deny-list a brand-level access token until it expires."""
        ctx = self.server.ctx
        if token.family is not None:
            revoke_family(ctx, token.family.id, reason="revoked-by-brand", actor=Actor.BRAND)
        elif token.kind == "access_token":
            expires = datetime.fromtimestamp(token.claims["exp"], UTC)
            if ctx.session.get(RevokedAccessToken, token.claims["jti"]) is None:
                ctx.session.add(RevokedAccessToken(jti=token.claims["jti"], expires_at=expires))


class Introspection(IntrospectionEndpoint):
    """RFC 7662: a brand learns about its own tokens only; anything else is simply inactive."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenView | None:
        """Find the token whatever the hint says; an access token the brand API would refuse (wrong
        issuer or audience, expired, no `exp`) is not found, so it is inactive."""
        return find_token(self.server.ctx, token_string, live=True)

    def check_permission(self, token: TokenView, client: OAuthClient, request: OAuthHTTPRequest) -> bool:
        """Only the brand the token was issued to may introspect it."""
        return token.check_client(client)

    def introspect_token(self, token: TokenView) -> dict[str, Any]:
        """The standard claims of an active token."""
        claims = token.claims
        payload = {
            "active": True,
            "token_type": token.kind,
            "scope": claims.get("scope", ""),
            "exp": claims["exp"],
        }
        for name in ("iss", "aud", "sub", "iat", "jti", "client_id", "grant_id"):
            if name in claims:
                payload[name] = claims[name]
        if token.family is not None:
            payload["grant_id"] = str(token.family.grant_id)
        return payload


# Every scope the broker knows, for Authlib to refuse any other: the catalogue does not change at run time.
_SCOPES_SUPPORTED = [*supported_scopes(), *OIDC_SCOPES]


def _private_key_jwt(query_client: Any, request: OAuthHTTPRequest) -> OAuthClient | None:
    """Authlib's client authentication method `private_key_jwt`, checked for this request."""
    client: OAuthClient | None = PrivateKeyJwt(request)(query_client, request)
    return client


class BrokerAuthorizationServer(AuthorizationServer):
    """Authlib's AuthorizationServer for one request: the grants, and the revocation and introspection
    endpoints when `endpoints` (a token or authorization request never reaches them, and building
    them costs a few µs of each token)."""

    def __init__(self, ctx: OAuthContext, *, endpoints: bool = False) -> None:
        super().__init__(scopes_supported=_SCOPES_SUPPORTED)
        self.ctx = ctx
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                AccessTokens(ctx.services),
                lambda **_: new_secret("rt_"),
                lambda client, grant_type: int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            ),
        )
        self.register_grant(CodeFlow, [S256Only(required=True), OfferBinding(), IdTokens()])
        self.register_client_auth_method(PRIVATE_KEY_JWT, _private_key_jwt)
        self.register_grant(RefreshFlow)
        self.register_grant(BrandCredentialsFlow)
        self.register_grant(TicketExchange)
        if endpoints:
            self.register_endpoint(Revocation)
            self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> OAuthClient | None:
        """The brand with this client id, wrapped for Authlib: for a request that only reads, from the
        process's cache while no brand changed (`broker.oauth.client_cache`); else read in the
        request's transaction, which sees what it has flushed."""
        ctx = self.ctx
        if ctx.unit is None:
            brand = ctx.services.clients.find(client_id, lambda: find_client(ctx.lookups(), client_id))
        else:
            brand = find_client(ctx.lookups(), client_id)
        return OAuthClient(brand) if brand else None

    def save_token(self, token: dict[str, Any], request: OAuthHTTPRequest) -> None:
        """Persist what a token response issued: the refresh token's digest (access tokens are JWTs)."""
        if "refresh_token" in token and isinstance(request.user, Subject):
            store_refresh_token(self.ctx, token, request.user)

    def create_oauth2_request(self, request: OAuthHTTPRequest) -> OAuthHTTPRequest:
        """Our routes build the OAuth request themselves."""
        return request

    def handle_response(self, status: int, body: Any, headers: Sequence[tuple[str, str]]) -> Response:
        """A Starlette response; authorization redirects gain `iss` (RFC 9207 §2)."""
        # Lower-cased names, as Starlette keeps them: ours replace Authlib's, set once (a header set on
        # a Response rescans its headers).
        header_map = {name.lower(): value for name, value in headers}
        if status == 302 and "location" in header_map:
            header_map["location"] = add_params_to_uri(
                header_map["location"], [("iss", self.ctx.services.issuer)]
            )
        content = body
        if isinstance(body, dict):
            content = json.dumps(body)
            header_map["content-type"] = "application/json"
        header_map["cache-control"] = "no-store"
        return Response(content=content, status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals: what matters is written in the same transaction."""
