"""Checking a bearer access token on the brand API (RFC 6750 transport, RFC 9068 validation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from broker.accounts.models import Brand
from broker.consent.scopes import split_scope
from broker.errors import InsufficientScope, NotAuthenticated
from broker.oauth.clients import find_brand
from broker.oauth.context import OAuthServices
from broker.oauth.models import RevokedAccessToken
from broker.oauth.signing import InvalidJWT

CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class BrandAccess:
    """A verified access token and the brand it was issued to."""

    brand: Brand
    claims: dict[str, Any]

    @property
    def scopes(self) -> set[str]:
        """The scopes the token carries."""
        return set(split_scope(str(self.claims.get("scope", ""))))

    def require(self, scope: str) -> None:
        """Raise 403 unless the token carries `scope`."""
        if scope not in self.scopes:
            raise InsufficientScope(f"this token lacks the scope '{scope}'")


def verify_claims(services: OAuthServices, token: str) -> dict[str, Any]:
    """The claims of an access token whose signature, alg, type, issuer, audience and lifetime check
    out (no database: whether its brand still exists and it is not revoked is for the caller)."""
    try:
        claims = services.signing.verify(token)
    except InvalidJWT:
        raise NotAuthenticated("the access token is not valid; get a new one from /oauth/token") from None
    now = services.clock().timestamp()
    if claims.get("iss") != services.issuer or claims.get("aud") != services.issuer:
        raise NotAuthenticated("the access token was not issued for this broker")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise NotAuthenticated("the access token has expired; refresh it")
    if not isinstance(claims.get("iat"), int) or claims["iat"] > now + CLOCK_SKEW_SECONDS:
        raise NotAuthenticated("the access token is not valid yet")
    return claims


def verify_access_token(session: Session, services: OAuthServices, token: str) -> BrandAccess:
    """Verify signature, alg, type, issuer, audience and lifetime; then that it is not revoked."""
    return access_for(session, verify_claims(services, token))


def access_for(session: Session, claims: dict[str, Any]) -> BrandAccess:
    """The access of verified `claims` (`verify_claims`): 401 if their brand is gone or, for a brand
    token, if it was revoked."""
    brand = find_brand(session, str(claims.get("client_id", "")))
    if brand is None:
        raise NotAuthenticated("the access token's client no longer exists")
    # Tokens of a grant are checked against their grant and family by the read itself, which can then
    # say "grant revoked since …" (403) rather than a bare 401.
    if "fam" not in claims and session.get(RevokedAccessToken, str(claims.get("jti", ""))) is not None:
        raise NotAuthenticated("the access token has been revoked")
    return BrandAccess(brand, claims)
