"""RFC 9457 problem+json rendering for every error the HTTP API can produce; HTML error pages instead
for the paths browsers read (the portal's), so a browser never gets problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
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
    ProfileHeld,
    ProfileNotHeld,
    ServiceUnavailable,
    ValidationFailed,
    VaultFailed,
    VaultGone,
)
from vault.errors import (
    CustodyConflict,
    DecryptionFailed,
    ProfileInvalid,
    UnknownField,
    VaultError,
    VaultNotFound,
)
from vault.errors import ProfileHeld as ProfileHeldError

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


class ErrorPage(Protocol):
    """Draws the HTML page that answers an error with `status`; `detail` says what was wrong."""

    def __call__(self, request: Request, status: int, detail: str) -> Response: ...


# Path prefix → the error page of the paths under it; every other path answers problem+json.
ErrorPages = Mapping[str, ErrorPage]


def page_for(pages: ErrorPages, path: str) -> ErrorPage | None:
    """The error page that answers for `path`, if a browser's page lives there."""
    return next((page for prefix, page in pages.items() if path.startswith(prefix)), None)


def unexpected_error() -> JSONResponse:
    """The 500 for an exception nothing handled: no detail of it (it is logged, not shown)."""
    return problem_response(Internal("something went wrong on our side; it has been logged"))


def render_broker_error(exc: BrokerError) -> JSONResponse:
    """Render a domain error; throttling adds Retry-After, 401s add WWW-Authenticate."""
    return problem_response(exc, headers=problem_headers(exc))


def problem_headers(exc: BrokerError) -> dict[str, str]:
    """The headers that go with a domain error, whatever form its answer takes."""
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="consentry"'
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = exc.allow
    return headers


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
    if isinstance(exc, ProfileHeldError) or (isinstance(exc, CustodyConflict) and exc.held):
        return ProfileHeld(
            "this profile is in self-custody: only its owner's browser can open or change it "
            "(the portal, or /v1/me/custody)"
            if isinstance(exc, ProfileHeldError)
            else str(exc)
        )
    if isinstance(exc, CustodyConflict):
        return ProfileNotHeld(f"{exc}: move it to self-custody first")
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


def validation_to_broker(exc: RequestValidationError) -> BrokerError:
    """The problem a request that failed validation is answered with."""
    errors = list(exc.errors())
    for error in errors:
        if error["type"] == "json_invalid":
            ctx = error.get("ctx", {}).get("error", "")
            return MalformedRequest(f"the request body is not valid JSON ({ctx}); send a JSON object")
    if any(e["loc"] == ("body",) for e in errors):
        return MalformedRequest("the request body must be a JSON object")
    items = [{"pointer": _pointer(tuple(e["loc"])), "detail": _message(e)} for e in errors]
    detail = "; ".join(item["detail"] for item in items)
    return ValidationFailed(detail, errors=items)


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


def http_to_broker(request: Request, exc: StarletteHTTPException, *, page: bool) -> BrokerError:
    """Starlette's own errors as problem types: a body it could not parse, no route (for a `page`, a
    broken link), a method the path does not serve. It raises no other (were one raised, it would be a
    fault of ours)."""
    if exc.status_code == 400:
        return MalformedRequest(f"the request body could not be parsed ({exc.detail})")
    if exc.status_code == 404:
        if page:
            return NotFound("there is no such page; the link may be broken")
        return NotFound("no such resource; the API is described at /openapi.json")
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        return MethodNotAllowed(f"{request.method} is not served here; use one of: {allowed}", allow=allowed)
    log.error("unexpected HTTP error %s: %s", exc.status_code, exc.detail)
    return Internal("something went wrong on our side; it has been logged")


def install(app: FastAPI, *, pages: ErrorPages | None = None) -> None:
    """Register the handlers that turn every exception into problem+json, or, under a prefix of
    `pages`, into that prefix's HTML error page with the same status."""
    pages = pages or {}

    def answer(request: Request, exc: BrokerError) -> Response:
        page = page_for(pages, request.url.path)
        if page is None:
            return render_broker_error(exc)
        response = page(request, exc.status, exc.detail)
        response.headers.update(problem_headers(exc))
        return response

    @app.exception_handler(BrokerError)
    async def _broker(request: Request, exc: BrokerError) -> Response:
        if exc.status >= 500:
            log.error("broker error %s: %s", exc.slug, exc.detail)
        return answer(request, exc)

    @app.exception_handler(VaultError)
    async def _vault(request: Request, exc: VaultError) -> Response:
        mapped = vault_to_broker(exc)
        if mapped.status >= 500:
            log.error("vault error %s", type(exc).__name__)  # never the message: it may name data
        return answer(request, mapped)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        page = page_for(pages, request.url.path)
        # A page whose address holds a malformed id (a grant's, a session's) does not exist.
        if page is not None and any(e["loc"][:1] == ("path",) for e in exc.errors()):
            return page(request, 404, "there is no such page; the link may be broken")
        return answer(request, validation_to_broker(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        error = http_to_broker(request, exc, page=page_for(pages, request.url.path) is not None)
        return answer(request, error)

    # The database is down, restarting, refusing connections, or locked for longer than the
    # configured timeout; or every pooled connection is busy: all are worth a retry, none a 500.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(DisconnectionError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> Response:
        log.error("database unavailable: %s", type(exc).__name__)
        return answer(request, ServiceUnavailable("the database is unavailable for a moment; retry shortly"))

    @app.exception_handler(IntegrityError)
    async def _race(request: Request, exc: IntegrityError) -> Response:
        # Our checks run first; reaching here means a concurrent request won a race.
        return answer(request, Conflict("the request conflicts with a change made at the same time; retry"))

    # Unexpected exceptions are answered by `broker.web.middleware.RequestContextMiddleware` (with
    # `unexpected_error`, or the error page), inside the headers it sets: a handler here would answer
    # outside them.
