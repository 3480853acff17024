"""ASGI middleware: request ids, body size limit, security headers, an access log without personal data.

Every response carries the security headers, `X-Request-ID` and `Consentry-API-Version`, a 500 from an
unexpected exception included: `RequestContextMiddleware` renders that 500 itself (Starlette's outermost
error middleware would otherwise answer it past our headers). Under the prefixes of `pages` (the
portal's), the 500 and the 413 are HTML error pages, as every other error there is
(`broker.web.problems.install`).
Access-log lines escape control characters, so a path holding `%0a` cannot forge a line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broker import logs
from broker.errors import RequestTooLarge
from broker.ids import unique_id
from broker.versions import API_VERSION_HEADER, API_VERSIONS
from broker.web.problems import ErrorPages, page_for, problem_response, unexpected_error

access_log = logging.getLogger("consentry.access")
log = logging.getLogger("consentry.api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` even on our own
    # form posts, which the CSRF origin check must refuse; other sites still get no referrer.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


# C0 and C1 controls, DEL, Unicode line and paragraph separators, and the backslash (so an escape in
# the log is never ambiguous with a literal one in the path).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def log_safe(text: str) -> str:
    """`text` with every character that could break or forge a log line escaped (\\n, \\x1b, \\u2028)."""
    if text.isprintable() and "\\" not in text:  # the usual path: none of them (each is unprintable)
        return text
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


# Paths whose one segment is a capability (the only key to what they serve): the log names the route.
_CAPABILITIES = re.compile(r"^(/portal/deleted/)[^/]+(/receipt/?)$")


def logged_path(path: str) -> str:
    """The path as the access log shows it: capabilities masked, unsafe characters escaped."""
    return log_safe(_CAPABILITIES.sub(r"\1{receipt_id}\2", path))


def new_request_id() -> str:
    """A fresh request id: 32 hex digits, unique and unguessable (`broker.ids`)."""
    return unique_id()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Assigns a request id (honouring a well-formed incoming X-Request-ID), sets security headers,
    and logs method, path, status and duration: never query strings, bodies or client addresses."""

    def __init__(self, app: ASGIApp, *, hsts: bool, pages: ErrorPages | None = None) -> None:
        self.app = app
        self.hsts = hsts
        self.pages = pages or {}
        defaults = {
            **SECURITY_HEADERS,
            "content-security-policy": API_CSP,
            "cache-control": "no-store",
            API_VERSION_HEADER.lower(): ", ".join(API_VERSIONS),  # broker.versions: clients check it
        }
        if hsts:
            defaults["strict-transport-security"] = "max-age=63072000; includeSubDomains"
        # Raw (name, value) pairs, added to a response that does not set the header itself.
        self._defaults = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in defaults.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started, status, responded = time.perf_counter(), 500, False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = self._headers(message.get("headers", ()), request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if not responded:
                log.exception("unexpected error rid=%s", request_id, exc_info=exc)
                await self._unexpected(scope)(scope, receive, send_wrapper)
            raise  # the server still sees (and reports) it; the answer is already sent
        finally:
            method, path = log_safe(scope["method"]), logged_path(scope["path"])
            elapsed = (time.perf_counter() - started) * 1000
            logs.info(access_log, f"{method} {path} {status} {elapsed:.1f}ms rid={request_id}")

    def _headers(self, given: Iterable[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
        """The response's headers, its X-Request-ID set and each default it lacks added (one pass, on
        the raw pairs: Starlette's MutableHeaders rescans them for every header set)."""
        headers = [(name, value) for name, value in given if name.lower() != b"x-request-id"]
        present = {name.lower() for name, _ in headers}
        headers.append((b"x-request-id", request_id.encode("latin-1")))
        headers.extend(pair for pair in self._defaults if pair[0] not in present)
        return headers

    def _unexpected(self, scope: Scope) -> Response:
        """The 500: the error page of a browser's page (problem+json should drawing it fail too)."""
        page = page_for(self.pages, scope["path"])
        if page is not None:
            try:
                return page(Request(scope), 500, "something went wrong on our side; it has been logged")
            except Exception:
                log.exception("the error page failed too")
        return unexpected_error()


# The body limit of the self-custody API (`/v1/me/custody/...`): a move seals every live grant, one
# JWE of a few KiB per grant and purpose, in one request.
SEALING_BODY_BYTES = 4 * 1024 * 1024


class BodyLimitMiddleware:
    """Answers 413 for bodies over the limit, declared or streamed, before the app reads them: problem+json,
    or the error page of a path browsers read (`pages`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        pages: ErrorPages | None = None,
        wider: Mapping[str, int] | None = None,
    ) -> None:
        """`wider`: a larger limit for the paths under each prefix (self-custody sends every live
        grant sealed to its brand at once)."""
        self.app = app
        self.max_bytes = max_bytes
        self.pages = pages or {}
        self.wider = dict(wider or {})

    def _limit(self, path: str) -> int:
        return next((size for prefix, size in self.wider.items() if path.startswith(prefix)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            await self._refuse(scope, receive, send, limit)  # not a length (uvicorn refuses it before us)
            return
        if declared is not None and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        if declared is not None and _header(scope, b"transfer-encoding") is None:
            # The server's HTTP parser delimits the body by its declared length (RFC 9112 §6.3): the
            # app can never receive more, so there is nothing to count.
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the whole (small) body now, refusing it once over.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, delivered = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        too_large = RequestTooLarge(f"the request body is over {limit} bytes; send less")
        page = page_for(self.pages, scope["path"])
        response = (
            problem_response(too_large) if page is None else page(Request(scope), 413, too_large.detail)
        )
        await response(scope, receive, send)
