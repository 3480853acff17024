"""The authorization code flow's two ends, without I/O: the request that sends a customer to consent
(RFC 6749 §4.1.1 with PKCE S256, RFC 7636) and the checks on the redirect that brings them back
(state, and the issuer per RFC 9207 against mix-up attacks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from clients.brand.errors import InvalidCallback, OAuthError
from clients.brand.models import ServerMetadata

__all__ = ["AuthorizationRequest", "authorization_request", "callback_code", "pkce_pair"]

PROFILE_SCOPE_PREFIX = "profile:"


class AuthorizationRequest(NamedTuple):
    """Where to send the customer, and what to keep (server-side, e.g. in the brand's session) for the
    callback: the `state` to expect and the PKCE `code_verifier`."""

    url: str
    state: str
    code_verifier: str


def pkce_pair() -> tuple[str, str]:
    """A fresh PKCE code verifier (RFC 7636 §4.1: 64 characters) and its S256 challenge (§4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_request(
    metadata: ServerMetadata,
    *,
    client_id: str,
    offer_id: str,
    redirect_uri: str,
    scopes: Sequence[str] | None = None,
    state: str | None = None,
    prompt: str | None = None,
) -> AuthorizationRequest:
    """The authorization URL for an offer. `scopes` are fields (`email`) or scopes (`profile:email`);
    leave them out to ask for every field of the offer. With `prompt` (OpenID Connect's: `none` for a
    silent request) the request is an OpenID Connect one: `openid` joins the scope."""
    verifier, challenge = pkce_pair()
    state = state or secrets.token_urlsafe(24)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "offer": offer_id,
    }
    asked = [s if s.startswith(PROFILE_SCOPE_PREFIX) else PROFILE_SCOPE_PREFIX + s for s in scopes or ()]
    if prompt:  # an OpenID Connect parameter: the request is one (`openid` alone asks for the whole offer)
        params["prompt"] = prompt
        asked.insert(0, "openid")
    if asked:
        params["scope"] = " ".join(asked)
    endpoint = metadata.authorization_endpoint
    separator = "&" if urlsplit(endpoint).query else "?"
    return AuthorizationRequest(endpoint + separator + urlencode(params), state, verifier)


def callback_code(callback: str | Mapping[str, str], *, expected_state: str, metadata: ServerMetadata) -> str:
    """The authorization code from the redirect back to the brand, once it passed every check.

    `callback` is the full callback URL, its query string, or its parameters. Raises `InvalidCallback`
    when the state or issuer is not the expected one (an attack, or a stale tab), and `OAuthError` when
    the customer declined (`access_denied`) or the request failed.
    """
    params = _parameters(callback)
    state = params.get("state", "")
    if not hmac.compare_digest(state.encode(), expected_state.encode()):
        raise InvalidCallback(
            "the callback's state is not the one this authorization request was sent with: "
            "ignore it and start the authorization again"
        )
    issuer = params.get("iss")
    if issuer is None and metadata.authorization_response_iss_parameter_supported:
        raise InvalidCallback("the callback has no iss, though the server always sends it (RFC 9207)")
    if issuer is not None and issuer != metadata.issuer:
        raise InvalidCallback(
            f"the callback comes from issuer {issuer!r}, not {metadata.issuer!r} (RFC 9207 mix-up defence)"
        )
    if "error" in params:
        raise OAuthError(params["error"], params.get("error_description"))
    code = params.get("code")
    if not code:
        raise InvalidCallback("the callback carries neither a code nor an error")
    return code


def _parameters(callback: str | Mapping[str, str]) -> dict[str, str]:
    if not isinstance(callback, str):
        return dict(callback)
    query = urlsplit(callback).query if "?" in callback or "://" in callback else callback
    return dict(parse_qsl(query, keep_blank_values=True))
