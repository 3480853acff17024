"""OpenID Connect RP-initiated logout 1.0: what a brand's logout request asks, checked.

A brand sends the customer to the `end_session_endpoint` (`/oauth/logout`) with, ideally, the ID
token it holds (`id_token_hint`), and may ask for the customer to come back to one of its registered
`post_logout_redirect_uris` (with its `state`). Whatever is sent, nobody is ever redirected to an
address the brand did not register: a request that names one without saying which brand it is, or
one the brand did not register, or a hint this broker did not sign, is shown an error page instead.
The portal (`broker.portal.logout`) then ends the customer's session: at once when the hint names the
customer who is logged in, else after the customer confirms (so that a link cannot log anyone out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from authlib.common.urls import add_params_to_uri
from sqlmodel import Session

from broker.oauth.clients import find_brand
from broker.oauth.context import OAuthServices
from broker.oauth.signing import InvalidJWT

__all__ = ["LogoutRefused", "LogoutRequest", "logout_request"]


class LogoutRefused(Exception):
    """A logout request that cannot be followed as sent; `description` is shown to the customer."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A checked logout request: the brand it came from (if it said), the subject its ID token hint
    names, and where to send the customer afterwards (a registered URI with the brand's `state`)."""

    brand_id: UUID | None
    brand_name: str | None
    hinted_subject: str | None
    redirect_to: str | None

    def names(self, services: OAuthServices, customer_id: UUID) -> bool:
        """Whether the ID token hint was issued to this brand about this customer."""
        if self.brand_id is None or self.hinted_subject is None:
            return False
        return services.pairwise_subject(self.brand_id, customer_id) == self.hinted_subject


def logout_request(session: Session, services: OAuthServices, params: Mapping[str, str]) -> LogoutRequest:
    """Check a logout request's `id_token_hint`, `client_id`, `post_logout_redirect_uri` and `state`;
    raises `LogoutRefused` (see the module's doc)."""
    client_id, subject = params.get("client_id") or None, None
    hint = params.get("id_token_hint")
    if hint:
        claims = _hint_claims(services, hint)
        audience = _audience(claims.get("aud"))
        if client_id is not None and client_id != audience:
            raise LogoutRefused("the client_id is not the audience of the id_token_hint")
        client_id, subject = audience, str(claims.get("sub") or "") or None
    brand = find_brand(session, client_id) if client_id else None
    if client_id and brand is None:
        raise LogoutRefused("no brand has this client_id")
    redirect = None
    uri = params.get("post_logout_redirect_uri")
    if uri:
        if brand is None:
            raise LogoutRefused(
                "post_logout_redirect_uri needs an id_token_hint or a client_id to be checked"
            )
        if uri not in brand.post_logout_redirect_uris:
            raise LogoutRefused(f"{brand.name} did not register this address to come back to after logout")
        state = params.get("state")
        redirect = add_params_to_uri(uri, [("state", state)]) if state else uri
    return LogoutRequest(
        brand.id if brand else None, brand.name if brand else None, subject if brand else None, redirect
    )


def _hint_claims(services: OAuthServices, hint: str) -> dict[str, Any]:
    try:
        claims = services.signing.verify_id_token(hint)
    except InvalidJWT:
        raise LogoutRefused("the id_token_hint is not an ID token this broker issued") from None
    if claims.get("iss") != services.issuer:
        raise LogoutRefused("the id_token_hint was issued by another server")
    return claims


def _audience(aud: Any) -> str | None:
    if isinstance(aud, str):
        return aud
    if isinstance(aud, list) and len(aud) == 1 and isinstance(aud[0], str):
        return aud[0]
    return None
