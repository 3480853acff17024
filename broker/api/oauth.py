"""OAuth 2 endpoints: authorize (with the consent screen), token, revoke, introspect, metadata, JWKS.

They answer in OAuth's own terms (RFC 6749 error JSON, or error redirects carrying `iss`), not
problem+json; an authorization request whose client or redirect URI cannot be trusted gets an error
page and never a redirect.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session
from starlette.exceptions import HTTPException

from broker.accounts.models import Customer
from broker.api.deps import DbSession, RuntimeDep
from broker.oauth.authorize import AuthorizationRefused, PendingAuthorization
from broker.oauth.context import OAuthContext, OAuthHTTPRequest
from broker.oauth.metadata import authorization_server_metadata
from broker.oauth.server import BrokerAuthorizationServer
from broker.portal.pages import CSRF_FIELD, csrf_valid, render
from broker.portal.routes import PortalSession, login_redirect
from broker.usecases.consent_decision import ConsentScreen, decide

router = APIRouter(tags=["oauth"])

FORM = {
    "application/x-www-form-urlencoded": {
        "schema": {"type": "object", "additionalProperties": {"type": "string"}}
    }
}
OAUTH_ERROR = {"description": "RFC 6749 error JSON: {error, error_description}"}


# Bounds on a form (python-multipart's defaults are 1000 fields of 1 MiB): an OAuth request has a
# dozen short parameters, a consent answer one per profile field.
MAX_FIELDS, MAX_FIELD_BYTES = 200, 8192


@dataclass(frozen=True)
class FormBody:
    """The urlencoded body as lists of values (OAuth cares about repeated parameters), or why it
    could not be read (too many fields, a field too long): each endpoint answers that in its own terms."""

    values: dict[str, list[str]]
    problem: str | None = None


async def form_values(request: Request) -> FormBody:
    """Read the form once, bounded; a body that breaks the bounds is a problem, not an exception."""
    if request.method != "POST":
        return FormBody({})
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except HTTPException as exc:  # Starlette's answer to a form over the bounds
        bounds = f"send at most {MAX_FIELDS} fields of at most {MAX_FIELD_BYTES} bytes each"
        return FormBody({}, f"the form could not be read ({exc.detail}); {bounds}")
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, []).append(value)
    return FormBody(values)


FormValues = Annotated[FormBody, Depends(form_values)]


def _invalid_request(description: str) -> JSONResponse:
    """RFC 6749 §5.2 invalid_request, never cached."""
    body = {"error": "invalid_request", "error_description": description}
    return JSONResponse(body, status_code=400, headers={"cache-control": "no-store"})


def _oauth_request(
    request: Request, form: Mapping[str, list[str]], db: DbSession, runtime: RuntimeDep
) -> OAuthHTTPRequest:
    query = _query_lists(request)
    issuer = str(runtime.settings.base_url).rstrip("/")
    uri = issuer + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ctx = OAuthContext(services=runtime.oauth, session=db, request_id=request.state.request_id)
    return OAuthHTTPRequest(
        method=request.method, uri=uri, headers=request.headers, query=query, form=form, ctx=ctx
    )


def _not_printable_ascii(*sources: Mapping[str, list[str]]) -> str | None:
    """The first parameter whose name or value is not printable ASCII (RFC 6749 Appendix A), if any."""
    for source in sources:
        for name, values in source.items():
            if any(not all(" " <= ch <= "~" for ch in text) for text in (name, *values)):
                return name if name.isascii() else "a parameter name"
    return None


# RFC 6749 Appendix A.3. Authlib quotes the value in its error description and raises (a 500) when
# it holds a character error descriptions may not (a quote or a backslash): it must never get one.
_RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*")


def _refused_authorization_parameters(params: Mapping[str, list[str]]) -> str | None:
    """Why an authorization request's parameters cannot even be read, if they cannot."""
    bad = _not_printable_ascii(params)
    if bad is not None:
        return f"{bad} must be printable ASCII"
    if any(not _RESPONSE_TYPE.fullmatch(value) for value in params.get("response_type", [])):
        return "response_type must be 'code' (RFC 6749 §4.1.1)"
    return None


def _query_lists(request: Request) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    return query


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
    bad = _not_printable_ascii(_query_lists(request), form.values)
    if bad is not None:
        return _invalid_request(f"{bad} must be printable ASCII (RFC 6749)")
    oauth_request = _oauth_request(request, form.values, db, runtime)
    server = BrokerAuthorizationServer(oauth_request.ctx)
    if endpoint is None:
        response: Response = server.create_token_response(oauth_request)
    else:
        response = server.create_endpoint_response(endpoint, oauth_request)
    return response


def _unusable(request: Request, runtime: RuntimeDep, message: str) -> Response:
    context = {"title": "This sharing request can't be shown", "message": message}
    return render(request, "error.html", context, status=400, secure=runtime.settings.secure_cookies)


@router.get(
    "/oauth/authorize",
    include_in_schema=True,
    operation_id="authorize",
    responses={
        302: {"description": "Redirect to the brand with a code or an error"},
        400: {"description": "Error page: the request cannot be trusted"},
    },
)
def authorize(request: Request, db: DbSession, runtime: RuntimeDep, session: PortalSession) -> Response:
    """Authorization endpoint (authorization code + PKCE S256): log in if needed, then the consent screen."""
    refused = _refused_authorization_parameters(_query_lists(request))
    if refused is not None:
        return _unusable(request, runtime, refused)
    try:
        pending = PendingAuthorization.start(_oauth_request(request, {}, db, runtime))
    except AuthorizationRefused as refusal:
        return refusal.redirect or _unusable(request, runtime, refusal.description)
    if session is None:
        return login_redirect(request.url.path + "?" + request.url.query)
    verified = _email_verified(db, session.customer_id)
    screen = ConsentScreen.build(
        pending.request, runtime.vault, db, customer_id=session.customer_id, email_verified=verified
    )
    return render(
        request,
        "consent.html",
        screen.context(),
        secure=runtime.settings.secure_cookies,
        form_targets=screen.form_targets,
    )


@router.post(
    "/oauth/authorize",
    operation_id="authorizeDecision",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={
        302: {"description": "Redirect to the brand with a code or access_denied"},
        400: {"description": "Error page"},
        403: {"description": "Missing or wrong CSRF token"},
    },
)
def authorize_decision(
    request: Request, form: FormValues, db: DbSession, runtime: RuntimeDep, session: PortalSession
) -> Response:
    """The consent form's answer: approve (with the fields kept) or deny."""
    secure = runtime.settings.secure_cookies
    if form.problem is not None:
        return _unusable(request, runtime, form.problem)
    submitted = (form.values.get(CSRF_FIELD) or [""])[0]
    if not csrf_valid(request, submitted, str(runtime.settings.base_url)):
        context = {
            "title": "This form expired",
            "message": "For your safety the consent form must be sent from this page. "
            "Go back to the brand and start again.",
        }
        return render(request, "error.html", context, status=403, secure=secure)
    params = {
        k: v for k, v in form.values.items() if k not in {CSRF_FIELD, "decision", "fields", "special_consent"}
    }
    refused = _refused_authorization_parameters(params)
    if refused is not None:
        return _unusable(request, runtime, refused)
    try:
        pending = PendingAuthorization.start(_oauth_request(request, params, db, runtime))
    except AuthorizationRefused as refusal:
        return refusal.redirect or _unusable(request, runtime, refusal.description)
    if session is None:
        return login_redirect(
            "/oauth/authorize?" + urlencode([(k, v) for k, vs in params.items() for v in vs])
        )
    verified = _email_verified(db, session.customer_id)
    outcome = decide(
        runtime.grants,
        db,
        pending.request,
        customer_id=session.customer_id,
        form=form.values,
        email_verified=verified,
    )
    if outcome.retry is not None:
        screen = ConsentScreen.build(
            pending.request, runtime.vault, db, customer_id=session.customer_id, email_verified=verified
        )
        return render(
            request,
            "consent.html",
            screen.context(message=outcome.retry),
            status=400,
            secure=secure,
            form_targets=screen.form_targets,
        )
    return pending.finish(outcome.grant)


def _email_verified(db: Session, customer_id: UUID) -> bool:
    customer = db.get(Customer, customer_id)
    return customer is not None and customer.email_verified_at is not None


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
