"""The token, revocation and introspection endpoints, and the checks every OAuth request passes before
Authlib reads it.

Authlib fails (a 500) rather than refuses on a few inputs: parameters that are not printable ASCII
(RFC 6749 Appendix A), Basic credentials that are not base64 of UTF-8 text (RFC 6749 §2.3.1), a
`response_type` holding a character its error descriptions may not quote. Those are refused here, in
OAuth's own terms, before it sees them; the web layer only reads the HTTP request
(`broker.web.oauth_request`) and sends the response back.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from starlette.responses import JSONResponse, Response

from broker.oauth.context import OAuthHTTPRequest
from broker.oauth.server import BrokerAuthorizationServer

__all__ = ["invalid_request", "refused_authorization_parameters", "token_endpoint_response"]

# RFC 6749 Appendix A.3. Authlib quotes the value in its error description and raises (a 500) when
# it holds a character error descriptions may not (a quote or a backslash): it must never get one.
_RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*")


def not_printable_ascii(params: Mapping[str, list[str]]) -> str | None:
    """The first parameter whose name or value is not printable ASCII (RFC 6749 Appendix A), if any."""
    for name, values in params.items():
        # ASCII and printable: " " to "~" (str's own tests, not a Python loop over every character)
        if not all(text.isascii() and text.isprintable() for text in (name, *values)):
            return name if name.isascii() else "a parameter name"
    return None


def refused_authorization_parameters(params: Mapping[str, list[str]]) -> str | None:
    """Why an authorization request's parameters cannot even be read, if they cannot."""
    bad = not_printable_ascii(params)
    if bad is not None:
        return f"{bad} must be printable ASCII"
    if any(not _RESPONSE_TYPE.fullmatch(value) for value in params.get("response_type", [])):
        return "response_type must be 'code' (RFC 6749 §4.1.1)"
    return None


def invalid_request(description: str) -> JSONResponse:
    """RFC 6749 §5.2 invalid_request, never cached."""
    body = {"error": "invalid_request", "error_description": description}
    return JSONResponse(body, status_code=400, headers={"cache-control": "no-store"})


def _unreadable_basic_credentials(authorization: str) -> bool:
    """True when `Authorization: Basic` carries something that is not base64 of UTF-8 text
    (RFC 6749 §2.3.1), which Authlib would fail on rather than refuse."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        base64.b64decode(token.strip().encode("ascii")).decode("utf-8")
    except ValueError:  # not ASCII, not base64 (binascii.Error), not UTF-8 (UnicodeDecodeError)
        return True
    return False


def token_endpoint_response(request: OAuthHTTPRequest, endpoint: str | None) -> Response:
    """The token endpoint's answer (`endpoint` None), or that of a named endpoint (`revocation`,
    `introspection`): tokens, or RFC 6749 error JSON."""
    if _unreadable_basic_credentials(request.headers.get("authorization", "")):
        description = "the Basic credentials are not base64 of client_id:client_secret (RFC 6749 §2.3.1)"
        body = {"error": "invalid_client", "error_description": description}
        headers = {"cache-control": "no-store", "www-authenticate": 'Basic realm="consentry"'}
        return JSONResponse(body, status_code=401, headers=headers)
    bad = not_printable_ascii(request.payload.datalist)
    if bad is not None:
        return invalid_request(f"{bad} must be printable ASCII (RFC 6749)")
    server = BrokerAuthorizationServer(request.ctx, endpoints=endpoint is not None)
    if endpoint is None:
        response: Response = server.create_token_response(request)
    else:
        response = server.create_endpoint_response(endpoint, request)
    return response
