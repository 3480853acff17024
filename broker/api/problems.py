"""RFC 9457 problem+json rendering for every error the HTTP API can produce."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from broker.errors import (
    BrokerError,
    Conflict,
    IntegrityFailed,
    Internal,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    VaultFailed,
    VaultGone,
)
from vault.errors import DecryptionFailed, ProfileInvalid, UnknownField, VaultError, VaultNotFound

log = logging.getLogger("consentry.errors")

PROBLEM_JSON = "application/problem+json"


def problem_response(error: BrokerError, *, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The problem+json response of `error`: its type URI, title and status, its detail and extensions."""
    body = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **error.extensions,
    }
    return JSONResponse(body, status_code=error.status, media_type=PROBLEM_JSON, headers=headers)


def unexpected_error() -> JSONResponse:
    """The 500 for an exception nothing handled: no detail of it (it is logged, not shown)."""
    return problem_response(Internal("something went wrong on our side; it has been logged"))


def render_broker_error(exc: BrokerError) -> JSONResponse:
    """Render a domain error; throttling adds Retry-After, 401s add WWW-Authenticate."""
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="consentry"'
    if exc.status == 503:
        headers["Retry-After"] = "1"
    return problem_response(exc, headers=headers)


def vault_to_broker(exc: VaultError) -> BrokerError:
    """Map vault errors onto problem types."""
    if isinstance(exc, ProfileInvalid):
        errors = [
            {
                "pointer": f"/{e.field}",
                "detail": e.message if e.message.startswith(e.field) else f"{e.field}: {e.message}",
            }
            for e in exc.errors
        ]
        return ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)
    if isinstance(exc, UnknownField):
        return ValidationFailed(str(exc), errors=[{"pointer": f"/{exc.name}", "detail": str(exc)}])
    if isinstance(exc, VaultNotFound):
        return VaultGone("this account's data no longer exists")
    if isinstance(exc, DecryptionFailed):
        return IntegrityFailed("stored data could not be decrypted; the operator has been alerted")
    return VaultFailed("the vault could not complete the request")


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in {"body", "query", "path", "header", "cookie"}
        else list(map(str, loc))
    )
    return "/" + "/".join(parts)


def _name(loc: tuple[Any, ...]) -> str:
    """The name a person knows an input by: `value.due.days`, `required_fields[1]`."""
    parts = [p for p in loc if p not in {"body", "query", "path", "header", "cookie"}]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "input"


def _message(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    name = _name(loc)
    if error["type"] == "extra_forbidden":
        return f"unknown field {str(loc[-1])!r}"
    if error["type"] == "missing":
        return f"{name} is required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message if message.startswith(str(loc[-1]) if loc else name) else f"{name}: {message}"


def render_validation_error(exc: RequestValidationError) -> JSONResponse:
    """400 for bodies that are not JSON, 422 (with one entry per problem) for invalid values."""
    errors = list(exc.errors())
    for error in errors:
        if error["type"] == "json_invalid":
            ctx = error.get("ctx", {}).get("error", "")
            return render_broker_error(
                MalformedRequest(f"the request body is not valid JSON ({ctx}); send a JSON object")
            )
    if any(e["loc"] == ("body",) for e in errors):
        return render_broker_error(MalformedRequest("the request body must be a JSON object"))
    items = [{"pointer": _pointer(tuple(e["loc"])), "detail": _message(e)} for e in errors]
    detail = "; ".join(item["detail"] for item in items)
    return render_broker_error(ValidationFailed(detail, errors=items))


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path, for a 405's `Allow` (RFC 9110 §15.5.6).

    Starlette names only the methods of the first route whose path matched, which is wrong when
    GET and PUT of one path are separate routes (as FastAPI makes them): ask the router instead.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def render_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors as problems: a body it could not parse, no route, a method the path
    does not serve. It raises no other (were one raised, it would be a fault of ours)."""
    headers = dict(exc.headers or {})
    error: BrokerError
    if exc.status_code == 400:
        error = MalformedRequest(f"the request body could not be parsed ({exc.detail})")
    elif exc.status_code == 404:
        error = NotFound("no such resource; the API is described at /openapi.json")
    elif exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
        error = MethodNotAllowed(f"{request.method} is not served here; use one of: {headers['Allow']}")
    else:
        log.error("unexpected HTTP error %s: %s", exc.status_code, exc.detail)
        error = Internal("something went wrong on our side; it has been logged")
    return problem_response(error, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into problem+json."""

    @app.exception_handler(BrokerError)
    async def _broker(_: Request, exc: BrokerError) -> JSONResponse:
        if exc.status >= 500:
            log.error("broker error %s: %s", exc.slug, exc.detail)
        return render_broker_error(exc)

    @app.exception_handler(VaultError)
    async def _vault(_: Request, exc: VaultError) -> JSONResponse:
        log.error("vault error %s", type(exc).__name__)  # never the message: it may name data
        return render_broker_error(vault_to_broker(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return render_validation_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return render_http_error(request, exc)

    # The database is down, restarting, refusing connections, or locked for longer than the
    # configured timeout; or every pooled connection is busy: all are worth a retry, none a 500.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(DisconnectionError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(exc).__name__)
        return render_broker_error(
            ServiceUnavailable("the database is unavailable for a moment; retry shortly")
        )

    @app.exception_handler(IntegrityError)
    async def _race(_: Request, exc: IntegrityError) -> JSONResponse:
        # Our checks run first; reaching here means a concurrent request won a race.
        return render_broker_error(
            Conflict("the request conflicts with a change made at the same time; retry")
        )

    # Unexpected exceptions are answered by `broker.api.middleware.RequestContextMiddleware` (with
    # `unexpected_error`), inside the headers it sets: a handler here would answer outside them.
