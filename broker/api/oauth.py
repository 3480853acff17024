"""OAuth 2 endpoints of the JSON API: token, revoke, introspect, metadata, JWKS.

They answer in OAuth's own terms (RFC 6749 error JSON), not problem+json. The authorization endpoint
shows pages (log in, the consent screen), so it lives with the portal: `broker.portal.authorize`.
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from broker.oauth.metadata import authorization_server_metadata
from broker.oauth.server import BrokerAuthorizationServer
from broker.web.deps import DbSession, RuntimeDep
from broker.web.oauth_request import (
    FORM,
    FormBody,
    FormValues,
    not_printable_ascii,
    oauth_request,
    query_lists,
)

router = APIRouter(tags=["oauth"])

OAUTH_ERROR = {"description": "RFC 6749 error JSON: {error, error_description}"}


def _invalid_request(description: str) -> JSONResponse:
    """RFC 6749 §5.2 invalid_request, never cached."""
    body = {"error": "invalid_request", "error_description": description}
    return JSONResponse(body, status_code=400, headers={"cache-control": "no-store"})


def _unreadable_basic_credentials(request: Request) -> bool:
    """True when `Authorization: Basic` carries something that is not base64 of UTF-8 text
    (RFC 6749 §2.3.1), which Authlib would fail on rather than refuse."""
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        base64.b64decode(token.strip().encode("ascii")).decode("utf-8")
    except ValueError:  # not ASCII, not base64 (binascii.Error), not UTF-8 (UnicodeDecodeError)
        return True
    return False


def _token_endpoint(
    request: Request, form: FormBody, db: DbSession, runtime: RuntimeDep, endpoint: str | None
) -> Response:
    """Run the token endpoint (endpoint=None) or a named Authlib endpoint for this request."""
    if form.problem is not None:
        return _invalid_request(form.problem)
    if _unreadable_basic_credentials(request):
        description = "the Basic credentials are not base64 of client_id:client_secret (RFC 6749 §2.3.1)"
        body = {"error": "invalid_client", "error_description": description}
        headers = {"cache-control": "no-store", "www-authenticate": 'Basic realm="consentry"'}
        return JSONResponse(body, status_code=401, headers=headers)
    bad = not_printable_ascii(query_lists(request), form.values)
    if bad is not None:
        return _invalid_request(f"{bad} must be printable ASCII (RFC 6749)")
    authlib_request = oauth_request(request, form.values, db, runtime)
    server = BrokerAuthorizationServer(authlib_request.ctx)
    if endpoint is None:
        response: Response = server.create_token_response(authlib_request)
    else:
        response = server.create_endpoint_response(endpoint, authlib_request)
    return response


@router.post(
    "/oauth/token",
    operation_id="token",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
def token(request: Request, form: FormValues, db: DbSession, runtime: RuntimeDep) -> Response:
    """Token endpoint: authorization_code, refresh_token (rotating), client_credentials."""
    return _token_endpoint(request, form, db, runtime, None)


@router.post(
    "/oauth/revoke",
    operation_id="revoke",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
def revoke(request: Request, form: FormValues, db: DbSession, runtime: RuntimeDep) -> Response:
    """RFC 7009 revocation: a refresh or access token of a grant revokes its whole token family."""
    return _token_endpoint(request, form, db, runtime, "revocation")


@router.post(
    "/oauth/introspect",
    operation_id="introspect",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
def introspect(request: Request, form: FormValues, db: DbSession, runtime: RuntimeDep) -> Response:
    """RFC 7662 introspection: a brand learns about its own tokens only."""
    return _token_endpoint(request, form, db, runtime, "introspection")


@router.get(
    "/.well-known/oauth-authorization-server",
    operation_id="authorizationServerMetadata",
    responses={404: {"description": "Never: always served"}},
)
def metadata(runtime: RuntimeDep) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    return authorization_server_metadata(str(runtime.settings.base_url).rstrip("/"))


@router.get("/.well-known/jwks.json", operation_id="jwks")
def jwks(runtime: RuntimeDep) -> JSONResponse:
    """The public keys that verify access tokens, each with its `kid`."""
    return JSONResponse(runtime.oauth.signing.jwks(), headers={"cache-control": "public, max-age=300"})
