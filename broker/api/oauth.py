"""OAuth 2 endpoints of the JSON API: token, revoke, introspect, metadata, JWKS.

They answer in OAuth's own terms (RFC 6749 error JSON), not problem+json. The authorization endpoint
shows pages (log in, the consent screen), so it lives with the portal: `broker.portal.authorize`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from broker.api.userinfo import userinfo_response
from broker.db import ConnectionFactory, LazyConnection
from broker.oauth.endpoints import invalid_request, token_endpoint_response
from broker.oauth.metadata import authorization_server_metadata
from broker.oauth.registration import (
    RegistrationRefused,
    delete_client,
    read_client,
    register_client,
    rotate_secret,
    update_client,
)
from broker.runtime import Runtime
from broker.web.deps import DbSession, RuntimeDep, writing
from broker.web.oauth_request import FORM, FormBody, FormValues, form_values, oauth_request
from broker.web.plain import answer_plainly
from broker.web.purposes import PURPOSE_PARAMETER
from broker.web.threads import run_sync

router = APIRouter(tags=["oauth"])
T = TypeVar("T")


class OAuthError(BaseModel):
    """RFC 6749 §5.2: what went wrong, as OAuth libraries read it."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="invalid_request, invalid_client, invalid_grant, unauthorized_client, …")
    error_description: str | None = Field(default=None, description="What was wrong, for a person")


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 (and RFC 8693 §2.2.1 for a grant ticket's exchange): the tokens issued."""

    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: str = Field(description="Bearer")
    expires_in: int = Field(description="Seconds the access token is valid for")
    scope: str | None = Field(default=None, description="The scopes granted, space-separated")
    refresh_token: str | None = Field(default=None, description="For a customer's grant: rotates on use")
    id_token: str | None = Field(default=None, description="With the openid scope")
    issued_token_type: str | None = Field(default=None, description="For a token exchange (RFC 8693)")


OAUTH_ERROR: dict[str, Any] = {
    "description": "RFC 6749 error JSON: {error, error_description}",
    "model": OAuthError,
}


def _token_endpoint(
    request: Request,
    form: FormBody,
    db: Session | None,
    runtime: Runtime,
    endpoint: str | None,
    connection: LazyConnection | None = None,
) -> Response:
    """Run the token endpoint (endpoint=None) or a named one for this request: in the unit of work
    `db`, or, if it only reads, with no session and `connection` for its lookups (`OAuthContext`)."""
    if form.problem is not None:
        return invalid_request(form.problem)
    return token_endpoint_response(oauth_request(request, form.values, db, runtime, connection), endpoint)


def _writes_nothing(form: FormBody) -> bool:
    """Whether this token request only reads: client credentials issue a JWT and store nothing (no
    refresh token, no code to spend), so they need no writer's transaction or lock; unless the brand
    authenticates with a client assertion, whose `jti` is stored (`broker.oauth.assertions`)."""
    return (
        form.problem is None
        and form.values.get("grant_type") == ["client_credentials"]
        and "client_assertion" not in form.values
    )


@router.post(
    "/oauth/token",
    operation_id="token",
    openapi_extra={"requestBody": {"content": FORM}},
    responses={
        200: {"description": "The tokens issued", "model": TokenResponse},
        400: OAUTH_ERROR,
        401: OAUTH_ERROR,
    },
)
async def token(request: Request) -> Response:
    """Token endpoint: authorization_code, refresh_token (rotating), client_credentials."""
    # Called by every brand, often: answered through `answer_plainly`, it reads its form as the
    # dependency would (`form_values`), then runs whole, in one call: a read (client credentials) in a
    # request thread (`broker.web.threads`), a write on FastAPI's pool, as it may wait for SQLite's
    # write lock and would hold up every read of the process in a request thread meanwhile.
    runtime: Runtime = request.app.state.runtime
    form = await form_values(request)
    if _writes_nothing(form):
        # Its brand cached, such a token needs no database: it is answered on the loop at once (on
        # PostgreSQL a request thread would only trade the interpreter lock with the loop). Otherwise
        # it stops at the lookup, before anything is done, and runs again where lookups run.
        try:
            return _token_reading(request, form, runtime, _no_database)
        except _NotCached:
            return await run_sync(request, _token_reading, request, form, runtime, runtime.read_connections)
    return await run_in_threadpool(_token_writing, request, form, runtime)


answer_plainly(router, "/oauth/token", token)


class _NotCached(Exception):
    """The token's brand is not in the cache: its lookup needs the database."""


def _no_database() -> AbstractContextManager[Connection]:
    raise _NotCached


def _token_reading(
    request: Request, form: FormBody, runtime: Runtime, connect: ConnectionFactory
) -> Response:
    # The brand's lookup is the request's one statement: on a connection of `connect` without a
    # transaction, opened only if the brand is not cached, and no session at all.
    with LazyConnection(connect) as connection:
        return _token_endpoint(request, form, None, runtime, None, connection)


def _token_writing(request: Request, form: FormBody, runtime: Runtime) -> Response:
    with writing(runtime, request.state.request_id) as db:
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
    """RFC 8414 authorization server metadata (the same document as OpenID Connect Discovery's)."""
    return authorization_server_metadata(runtime.oauth.issuer)


@router.get(
    "/.well-known/openid-configuration",
    operation_id="openidConfiguration",
    responses={404: {"description": "Never: always served"}},
)
def openid_configuration(runtime: RuntimeDep) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 provider metadata (the same document as RFC 8414's)."""
    return authorization_server_metadata(runtime.oauth.issuer)


_USERINFO_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The standard claims the grant covers, and the other granted fields"},
    401: {"description": "RFC 6750 invalid_token (WWW-Authenticate: Bearer): missing, invalid, "
                         "expired or revoked token, or a grant that ended"},
    400: {"description": "RFC 6750 invalid_request: an unknown purpose, or none for a grant of several"},
    403: {"description": "RFC 6750 insufficient_scope (no openid scope), or access_denied: the "
                         "grant is suspended, its reconfirmation is due, value is overdue, or the "
                         "purpose is not granted"},
    503: {"description": "The read could not be recorded in the audit log in time"},
}  # fmt: skip


_REGISTRATION_ERRORS: dict[int | str, dict[str, Any]] = {
    201: {"description": "Registered: the client's id, secret and registration access token (shown "
                         "only now), and its metadata as kept"},
    400: {"description": "RFC 7591 error JSON: invalid_redirect_uri or invalid_client_metadata"},
    401: {"description": "RFC 7591 error JSON: invalid_token (no initial access token, or one that is "
                         "unknown, expired or used up)"},
    413: {"description": "The body is larger than CONSENTRY_MAX_BODY_BYTES (problem+json)"},
}  # fmt: skip


@router.post(
    "/oauth/register",
    operation_id="registerClient",
    status_code=201,
    responses=_REGISTRATION_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "RFC 7591 client metadata",
        "required": ["client_name", "redirect_uris"]}}}}},
)  # fmt: skip
async def register(request: Request) -> Response:
    """Dynamic client registration (RFC 7591): a brand registers itself, with an initial access token
    (`Authorization: Bearer rit_…`, from `consentry registration-tokens create`) unless the operator
    opened registration (`CONSENTRY_OPEN_REGISTRATION`)."""
    runtime: Runtime = request.app.state.runtime
    token = _bearer_token(request)
    try:
        body = await _json_body(request)
        registered = await _in_transaction(
            request,
            lambda db: register_client(
                db,
                runtime.audit,
                body=body,
                initial_token=token,
                open_registration=runtime.settings.open_registration,
                now=runtime.clock(),
            ),
        )
    except RegistrationRefused as refused:
        return _registration_error(refused)
    return JSONResponse(registered.response(runtime.oauth.issuer), status_code=201, headers=_NO_STORE)


_MANAGEMENT_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The client's registration as kept (RFC 7592)"},
    400: {"description": "RFC 7591 error JSON: invalid_redirect_uri or invalid_client_metadata"},
    401: {"description": "RFC 7591 error JSON: invalid_token (not this client's registration access token)"},
    413: {"description": "The body is larger than CONSENTRY_MAX_BODY_BYTES (problem+json)"},
}  # fmt: skip


@router.get(
    "/oauth/register/{client_id}", operation_id="readClientRegistration", responses=_MANAGEMENT_ERRORS
)
async def read_registration(client_id: str, request: Request) -> Response:
    """RFC 7592 §2.1: read a client's registration with its registration access token."""
    runtime: Runtime = request.app.state.runtime
    token = _bearer_token(request)
    try:
        kept = await _in_transaction(
            request, lambda db: read_client(db, client_id=client_id, token=token, issuer=runtime.oauth.issuer)
        )
    except RegistrationRefused as refused:
        return _registration_error(refused)
    return JSONResponse(kept, headers=_NO_STORE)


@router.put(
    "/oauth/register/{client_id}",
    operation_id="updateClientRegistration",
    responses=_MANAGEMENT_ERRORS,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "description": "RFC 7591 client metadata, with this client's client_id",
        "required": ["client_id", "client_name", "redirect_uris"]}}}}},
)  # fmt: skip
async def update_registration(client_id: str, request: Request) -> Response:
    """RFC 7592 §2.2: replace a client's metadata (checked as at registration) with its registration
    access token."""
    runtime: Runtime = request.app.state.runtime
    token = _bearer_token(request)
    try:
        body = await _json_body(request)
        kept = await _in_transaction(
            request,
            lambda db: update_client(
                db, runtime.audit, client_id=client_id, token=token, body=body, issuer=runtime.oauth.issuer
            ),
        )
    except RegistrationRefused as refused:
        return _registration_error(refused)
    return JSONResponse(kept, headers=_NO_STORE)


@router.delete(
    "/oauth/register/{client_id}",
    operation_id="deleteClientRegistration",
    status_code=204,
    responses={**_MANAGEMENT_ERRORS, 204: {"description": "Deleted: its grants ended, its offers withdrawn"}},
)
async def delete_registration(client_id: str, request: Request) -> Response:
    """RFC 7592 §2.3: the brand deletes its registration. Its live grants end as if it had ended them,
    its offers are withdrawn and it can no longer authenticate; what it owes stays owed."""
    runtime: Runtime = request.app.state.runtime
    token = _bearer_token(request)
    try:
        await _in_transaction(
            request,
            lambda db: delete_client(
                db, runtime.grants, runtime.offers, runtime.audit, client_id=client_id, token=token
            ),
        )
    except RegistrationRefused as refused:
        return _registration_error(refused)
    return Response(status_code=204)


@router.post(
    "/oauth/register/{client_id}/secret",
    operation_id="rotateClientSecret",
    responses={**_MANAGEMENT_ERRORS, 200: {"description": "The new client_secret (shown only now)"}},
)
async def rotate_registration_secret(client_id: str, request: Request) -> Response:
    """A new client secret, with the registration access token (the old one stops working at once).
    Not part of RFC 7592, which leaves rotation to the server: a brand that suspects its secret leaked
    should not have to re-register."""
    runtime: Runtime = request.app.state.runtime
    token = _bearer_token(request)
    try:
        secret = await _in_transaction(
            request, lambda db: rotate_secret(db, runtime.audit, client_id=client_id, token=token)
        )
    except RegistrationRefused as refused:
        return _registration_error(refused)
    body = {"client_id": client_id, "client_secret": secret, "client_secret_expires_at": 0}
    return JSONResponse(body, headers=_NO_STORE)


_NO_STORE = {"cache-control": "no-store"}


def _bearer_token(request: Request) -> str | None:
    """The Bearer credential, or None (`broker.web.deps` refuses a malformed header with a problem;
    registration answers every missing or wrong token with RFC 7591's `invalid_token`)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


async def _json_body(request: Request) -> Any:
    """The request's JSON body (client metadata), or `invalid_client_metadata`."""
    try:
        return json.loads(await request.body())
    except ValueError:
        raise RegistrationRefused("invalid_client_metadata", "the body is not JSON") from None


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """`work(session)` in one writing transaction, on FastAPI's thread pool (it may wait for SQLite's
    write lock); a `RegistrationRefused` it raises rolls it back and reaches the caller."""
    runtime: Runtime = request.app.state.runtime

    def run() -> T:
        with writing(runtime, request.state.request_id) as db:
            return work(db)

    return await run_in_threadpool(run)


def _registration_error(refused: RegistrationRefused) -> JSONResponse:
    headers = {"cache-control": "no-store"}
    if refused.status == 401:
        headers["www-authenticate"] = f'Bearer realm="consentry", error="{refused.error}"'
    body = {"error": refused.error, "error_description": refused.description}
    return JSONResponse(body, status_code=refused.status, headers=headers)


@router.get(
    "/oauth/userinfo",
    operation_id="userinfo",
    responses=_USERINFO_ERRORS,
    openapi_extra={"parameters": [PURPOSE_PARAMETER]},
)
async def userinfo(request: Request) -> Response:
    """OpenID Connect UserInfo (Core §5.3): an audited read, exactly as `GET /v1/profile` (the grant
    live right now, value and reconfirmation checked, the entry committed before the answer), its
    fields given as standard claims. Send the access token as `Authorization: Bearer`; `purpose` as
    for the profile read."""
    runtime: Runtime = request.app.state.runtime
    purpose = request.query_params.get("purpose")
    return await userinfo_response(
        runtime, request.headers.get("authorization"), request.state.request_id, purpose
    )


@router.post("/oauth/userinfo", operation_id="userinfoByPost", responses=_USERINFO_ERRORS)
async def userinfo_by_post(request: Request) -> Response:
    """UserInfo by POST (Core §5.3.1): the same read and answer as GET (`purpose` a form field)."""
    runtime: Runtime = request.app.state.runtime
    purpose = request.query_params.get("purpose")
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        form = await request.form()
        found = form.get("purpose")
        purpose = found if isinstance(found, str) else purpose
    return await userinfo_response(
        runtime, request.headers.get("authorization"), request.state.request_id, purpose
    )


@router.get("/.well-known/jwks.json", operation_id="jwks")
def jwks(runtime: RuntimeDep) -> JSONResponse:
    """The public keys that verify access tokens, each with its `kid`."""
    return JSONResponse(runtime.oauth.signing.jwks(), headers={"cache-control": "public, max-age=300"})
