"""The authorization endpoint around the consent step (RFC 6749 §4.1.1 and §4.1.2), typed for its callers.

Authlib validates the request into a grant object of its own; that object, and Authlib's errors, stay
here. The consent step (`broker.usecases.consent_decision`) sees a `ConsentRequest`, plain data, and
answers with the grant the customer made, or none; `PendingAuthorization.finish` turns that answer
into the redirect to the brand (a code, or `access_denied`; with `iss`, RFC 9207).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from starlette.responses import Response

from broker.consent.models import Grant, Offer
from broker.consent.scopes import profile_fields
from broker.oauth.context import OAuthHTTPRequest
from broker.oauth.endpoints import refused_authorization_parameters
from broker.oauth.flows import Subject
from broker.oauth.oidc import Authentication, is_openid
from broker.oauth.server import BrokerAuthorizationServer

__all__ = ["AuthorizationRefused", "ConsentRequest", "PendingAuthorization"]


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A validated authorization request, as the consent step sees it."""

    brand_name: str
    offer: Offer
    fields: tuple[str, ...]
    """The profile fields asked for, in the offer's order (the request's scope, bound to the offer)."""
    params: tuple[tuple[str, str], ...]
    """Every parameter of the request as sent, repeated ones too: what re-sends it unchanged."""
    redirect_uri: str


class AuthorizationRefused(Exception):
    """An authorization request that cannot reach the consent step. The brand is told by `redirect`
    when there is one; when the client or its redirect URI cannot be trusted there is none, and the
    customer is shown `description` instead."""

    def __init__(self, description: str, redirect: Response | None) -> None:
        super().__init__(description)
        self.description, self.redirect = description, redirect


_REFUSALS: dict[str, type[OAuth2Error]] = {
    "login_required": LoginRequiredError,
    "consent_required": ConsentRequiredError,
    "invalid_request": InvalidRequestError,
}


class PendingAuthorization:
    """One validated authorization request, until the customer answers it."""

    def __init__(self, server: BrokerAuthorizationServer, request: OAuthHTTPRequest, grant: Any) -> None:
        self._server, self._request, self._grant = server, request, grant
        offer = request.ctx.offer
        assert offer is not None, "a validated request is bound to its offer (flows.OfferBinding)"
        payload = grant.request.payload
        self.request = ConsentRequest(
            brand_name=grant.request.client.brand.name,
            offer=offer,
            fields=tuple(profile_fields(grant.request.scope)),
            params=tuple((k, v) for k, values in payload.datalist.items() for v in values),
            redirect_uri=payload.redirect_uri,
        )

    @classmethod
    def start(cls, request: OAuthHTTPRequest, *, signed_in: bool = False) -> PendingAuthorization:
        """Validate the request (client, redirect URI, PKCE, the offer and its scopes, and for OpenID
        Connect its `nonce` and `prompt`: `prompt=none` while no customer is `signed_in` is
        `login_required`); raises `AuthorizationRefused` when it cannot be shown to the customer."""
        refused = refused_authorization_parameters(request.payload.datalist)
        if refused is not None:  # before Authlib reads them: it would fail on them, not refuse
            raise AuthorizationRefused(refused, None)
        server = BrokerAuthorizationServer(request.ctx)
        try:
            grant = server.get_consent_grant(request, end_user=True if signed_in else None)
        except OAuth2Error as error:
            raise cls._refusal(server, request, error) from None
        return cls(server, request, grant)

    @staticmethod
    def _refusal(
        server: BrokerAuthorizationServer, request: OAuthHTTPRequest, error: OAuth2Error
    ) -> AuthorizationRefused:
        redirect = server.handle_error_response(request, error) if error.redirect_uri else None
        return AuthorizationRefused(error.description or error.error, redirect)

    @property
    def openid(self) -> bool:
        """Whether this is an OpenID Connect request (`openid` in its scope)."""
        return is_openid(self._grant.request.scope)

    @property
    def prompts(self) -> frozenset[str]:
        """The request's `prompt` values (OpenID Connect Core §3.1.2.1); none for plain OAuth, which
        has no such parameter."""
        if not self.openid:
            return frozenset()
        return frozenset((self._grant.request.payload.data.get("prompt") or "").split())

    def refuse(self, error: str, description: str | None = None) -> Response:
        """Redirect to the brand with an OpenID Connect `error` (`login_required`, `consent_required`)
        or `invalid_request`, with `description` if any (printable ASCII without quotes)."""
        refused = _REFUSALS[error](description)
        refused.redirect_uri, refused.state = self.request.redirect_uri, self._grant.request.payload.state
        return self._redirect(refused)

    def _redirect(self, error: OAuth2Error) -> Response:
        refusal = self._refusal(self._server, self._request, error)
        assert refusal.redirect is not None
        return refusal.redirect

    def finish(self, grant: Grant | None, authentication: Authentication | None = None) -> Response:
        """Redirect to the brand: with a code for `grant`, the first of a new token family, or with
        `access_denied` when the customer made none. `authentication`: how the customer proved who
        they are, for the ID token of an OpenID Connect request."""
        subject = Subject(grant, uuid4(), authentication) if grant is not None else None
        response: Response = self._server.create_authorization_response(
            self._request, grant_user=subject, grant=self._grant
        )
        return response
