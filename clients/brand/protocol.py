"""The sans-I/O core both clients share: it builds every `httpx.Request`, reads every `httpx.Response`
and keeps the state between them (server metadata, the brand token). `ConsentryClient` and
`AsyncConsentryClient` only send what it builds, sync or async, and hand back what comes back; so the
rules (which token, when to refresh, how an answer is checked and which error it raises) exist once.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import pydantic

from clients.brand.authorization import AuthorizationRequest, authorization_request, callback_code
from clients.brand.errors import (
    IncompatibleServer,
    MalformedResponse,
    RefreshRejected,
    oauth_error_from,
    problem_from,
)
from clients.brand.models import Profile, ServerMetadata
from clients.brand.sealed import DecryptionKeys, open_profile
from clients.brand.tokens import GrantSession, TokenSet
from clients.brand.versions import API_VERSIONS, DISTRIBUTION, RELEASE

__all__ = ["BRAND_SCOPES", "Call", "Protocol"]

T = TypeVar("T")
Clock = Callable[[], datetime]

BRAND_SCOPES = ("offers:read", "offers:write", "grants:read", "grants:write")
USER_AGENT = "consentry-brand-sdk"
_FORM = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
}


TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a URN)
GRANT_TICKET_TYPE = "urn:consentry:params:oauth:token-type:grant-ticket"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (a URN)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_api_versions(issuer: str, served: list[str]) -> None:
    """Refuse a broker that serves none of the API versions this SDK speaks, saying which side to upgrade."""
    if set(served) & set(API_VERSIONS):
        return
    ours = f"{DISTRIBUTION} {RELEASE} speaks Consentry API {', '.join(API_VERSIONS)}"
    if not served:
        advice = (
            f"the broker at {issuer} does not name the API versions it serves (no consentry_api_versions in"
            f" its metadata): it is older than API versioning, or not a Consentry broker; {ours}"
        )
    elif max(map(_numeric, served)) > max(map(_numeric, API_VERSIONS)):
        advice = (
            f"the broker at {issuer} serves Consentry API {', '.join(served)} only; {ours}:"
            f" upgrade the SDK (pip install --upgrade {DISTRIBUTION})"
        )
    else:
        advice = (
            f"the broker at {issuer} serves Consentry API {', '.join(served)} only; {ours}: the broker is"
            f" older than this SDK: ask its operator to upgrade it, or install an earlier {DISTRIBUTION}"
        )
    raise IncompatibleServer(advice, server_versions=served, sdk_versions=list(API_VERSIONS))


def _numeric(api_version: str) -> tuple[int, str]:
    """Order API versions by number ("10" after "9"); a version that is not a number sorts first."""
    number = api_version.isascii() and api_version.isdecimal()  # not "²", which isdigit() takes
    return (int(api_version), "") if number else (-1, api_version)


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One brand API call: its request, the token it needs (a customer's grant, or the brand's own),
    the status that means success, and how to read the answer's JSON."""

    method: str
    path: str
    parse: Callable[[Any], T]
    auth: Literal["grant", "brand"] = "brand"
    params: Mapping[str, str | int] = field(default_factory=dict)
    body: Any = None
    success: int = 200
    also: int | None = None  # another status that means success (201 made, 200 found made before)


class Protocol:
    """Requests and answers of one brand's conversation with one broker; no I/O."""

    def __init__(
        self,
        issuer: str,
        *,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str | None,
        brand_scopes: Sequence[str],
        clock: Clock | None,
        refresh_leeway: timedelta,
        decryption_keys: DecryptionKeys | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.brand_scopes = " ".join(brand_scopes)
        self.clock: Clock = clock or _utc_now
        self.refresh_leeway = refresh_leeway
        self.metadata: ServerMetadata | None = None
        self.brand_tokens: TokenSet | None = None
        self.decryption_keys = decryption_keys

    def end_acknowledgement_claims(
        self, grant_id: str, *, stopped_processing_at: datetime, deletion_by: datetime
    ) -> dict[str, Any]:
        """The claims of a signed acknowledgement of a grant's end: sign them as a compact JWS with
        header `typ` `grant-end-ack+jwt` and the `kid` of a key you registered (jwks)."""
        for name, moment in (("stopped_processing_at", stopped_processing_at), ("deletion_by", deletion_by)):
            if moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware, e.g. datetime.now(UTC)")
        return {
            "iss": self.client_id,
            "aud": self.issuer,
            "iat": int(self.clock().timestamp()),
            "grant_id": grant_id,
            "stopped_processing_at": stopped_processing_at.isoformat(),
            "deletion_by": deletion_by.isoformat(),
        }

    def unseal(self, profile: Profile, session: GrantSession) -> Profile:
        """A self-custody grant's profile opened with the brand's keys and checked (`sealed`); the
        session remembers the newest grant version it opened, so an older copy is refused later."""
        opened = open_profile(
            profile,
            self.decryption_keys,
            issuer=self.issuer,
            client_id=self.client_id,
            seen_version=session.sealed_version,
        )
        if opened.sealed is not None and opened.grant_version is not None:
            session.sealed_version = max(session.sealed_version, opened.grant_version)
        return opened

    # Discovery (RFC 8414)

    def discovery_request(self) -> httpx.Request:
        """`GET /.well-known/oauth-authorization-server`, inserted before the issuer's path (§3.1)."""
        parts = urlsplit(self.issuer)
        path = "/.well-known/oauth-authorization-server" + parts.path.rstrip("/")
        return httpx.Request("GET", urlunsplit((parts.scheme, parts.netloc, path, "", "")), headers=_accept())

    def accept_metadata(self, response: httpx.Response) -> ServerMetadata:
        """The metadata, after checking that it names this issuer (RFC 8414 §3.3)."""
        metadata = self._parse(response, 200, ServerMetadata.model_validate, "the server metadata")
        if metadata.issuer.rstrip("/") != self.issuer:
            raise MalformedResponse(
                f"the metadata names issuer {metadata.issuer!r}, not {self.issuer!r}: refusing to use it"
            )
        if "S256" not in metadata.code_challenge_methods_supported:
            raise MalformedResponse("the server does not support PKCE S256, which this SDK always uses")
        _check_api_versions(self.issuer, metadata.consentry_api_versions)
        self.metadata = metadata
        return metadata

    # The authorization code flow

    def authorization(
        self,
        metadata: ServerMetadata,
        *,
        offer_id: str,
        redirect_uri: str | None,
        scopes: Sequence[str] | None,
        state: str | None,
        prompt: str | None = None,
    ) -> AuthorizationRequest:
        """The authorization request for an offer (PKCE S256, a random state unless given)."""
        return authorization_request(
            metadata,
            client_id=self.client_id,
            offer_id=str(offer_id),
            redirect_uri=self._redirect_uri(redirect_uri),
            scopes=scopes,
            state=state,
            prompt=prompt,
        )

    def code_request(
        self,
        metadata: ServerMetadata,
        callback: str | Mapping[str, str],
        *,
        expected_state: str,
        code_verifier: str,
        redirect_uri: str | None,
    ) -> httpx.Request:
        """Check the callback, then the token request trading its code (RFC 6749 §4.1.3)."""
        code = callback_code(callback, expected_state=expected_state, metadata=metadata)
        return self._token_request(
            metadata,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._redirect_uri(redirect_uri),
                "code_verifier": code_verifier,
            },
        )

    def refresh_request(self, metadata: ServerMetadata, tokens: TokenSet) -> httpx.Request:
        """Trade the refresh token for new tokens (RFC 6749 §6); the old refresh token dies."""
        if tokens.refresh_token is None:
            raise RefreshRejected(
                "invalid_grant",
                "these tokens came without a refresh token; send the customer through consent again",
            )
        return self._token_request(
            metadata, {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        )

    def ticket_request(self, metadata: ServerMetadata, ticket: str) -> httpx.Request:
        """Trade a grant ticket (a `grant.created` webhook's, for a grant the customer started in the
        directory) for that grant's tokens: OAuth 2.0 Token Exchange (RFC 8693 §2.1)."""
        if self.client_secret is None:
            raise ValueError("a public client cannot exchange grant tickets: it has no credentials")
        return self._token_request(
            metadata,
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": ticket,
                "subject_token_type": GRANT_TICKET_TYPE,
                "requested_token_type": ACCESS_TOKEN_TYPE,
            },
        )

    def brand_token_request(self, metadata: ServerMetadata) -> httpx.Request:
        """A brand-level token (client credentials, RFC 6749 §4.4) for offers and grants."""
        return self._token_request(metadata, {"grant_type": "client_credentials", "scope": self.brand_scopes})

    def accept_tokens(
        self, response: httpx.Response, *, refreshing: bool = False, for_grant: bool = False
    ) -> TokenSet:
        """The token response (RFC 6749 §5.1), or its OAuth error (§5.2) raised; `for_grant` tokens must
        name their grant."""
        if response.status_code != 200:
            raise oauth_error_from(response, refreshing=refreshing)
        body = _json(response, "the token response")
        if not isinstance(body, dict):
            raise MalformedResponse("the token response is not a JSON object")
        access, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(access, str) or type(expires_in) is not int:
            raise MalformedResponse("the token response lacks access_token or an integer expires_in")
        refresh, scope = body.get("refresh_token"), body.get("scope", "")
        tokens = TokenSet(
            access_token=access,
            expires_at=self.clock() + timedelta(seconds=expires_in),
            scope=scope if isinstance(scope, str) else "",
            refresh_token=refresh if isinstance(refresh, str) else None,
            token_type=str(body.get("token_type", "Bearer")),
        )
        if for_grant and tokens.grant_id is None:
            raise MalformedResponse("the access token names no grant_id; it is not a customer's grant token")
        return tokens

    def needs_new_token(self, tokens: TokenSet, refused: str | None) -> bool:
        """Whether to replace `tokens`: the server refused `refused` and nobody replaced it since; or,
        with no refusal, the access token expires within the leeway."""
        if refused is not None:
            return tokens.access_token == refused
        return tokens.expires_within(self.clock(), self.refresh_leeway)

    # The brand API

    def api_request(self, call: Call[Any], access_token: str) -> httpx.Request:
        """The request of `call`, carrying `access_token` (RFC 6750 §2.1)."""
        headers = {**_accept(), "Authorization": f"Bearer {access_token}"}
        return httpx.Request(
            call.method,
            self.issuer + call.path,
            params=dict(call.params) or None,
            json=call.body,
            headers=headers,
        )

    @staticmethod
    def token_refused(response: httpx.Response) -> bool:
        """A 401: the token, not the request, was refused; new tokens and one retry may help."""
        return response.status_code == 401

    def accept(self, call: Call[T], response: httpx.Response) -> T:
        """The answer of `call`, parsed; an error status raises its `ProblemError`."""
        what = f"the answer to {call.method} {call.path}"
        success = response.status_code if response.status_code == call.also else call.success
        return self._parse(response, success, call.parse, what)

    # Helpers

    def _parse(self, response: httpx.Response, success: int, parse: Callable[[Any], T], what: str) -> T:
        if response.status_code != success:
            if response.is_success:
                raise MalformedResponse(f"{what} has status {response.status_code}, not {success}")
            raise problem_from(response)
        try:
            return parse(None if success == 204 else _json(response, what))
        except pydantic.ValidationError as exc:
            raise MalformedResponse(f"{what} does not match the API: {exc.errors()[0]['msg']}") from None

    def _token_request(self, metadata: ServerMetadata, form: dict[str, str]) -> httpx.Request:
        headers = dict(_FORM)
        if self.client_secret is None:
            form = {**form, "client_id": self.client_id}  # a public client: PKCE only (RFC 6749 §2.3)
        else:  # client_secret_basic: each part form-urlencoded first (RFC 6749 §2.3.1)
            pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return httpx.Request("POST", metadata.token_endpoint, data=form, headers=headers)

    def _redirect_uri(self, redirect_uri: str | None) -> str:
        chosen = redirect_uri or self.redirect_uri
        if chosen is None:
            raise ValueError("pass redirect_uri, here or to the client, as registered for this brand")
        return chosen


def _accept() -> dict[str, str]:
    return {"Accept": "application/json, application/problem+json", "User-Agent": USER_AGENT}


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        raise MalformedResponse(f"{what} is not JSON") from None
