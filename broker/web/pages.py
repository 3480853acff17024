"""Rendering HTML pages with strict headers, and CSRF tokens for every form.

`Pages` renders the templates of the package that owns them (the portal's live in
`broker/portal/templates`); this module holds no template of its own.

CSRF: a random value lives in an HttpOnly, SameSite=Strict cookie; each form carries a token derived
from it and bound to the browser's session: HMAC-SHA-256 keyed by the cookie over the digest of the
session token (or over "pre-session" on logged-out forms such as login and sign-up). A POST must carry
the token that this cookie and this session give (compared in constant time) and come from our own
origin. So a cookie and token pair minted for another session (an attacker's own, planted into the
victim's browser by cookie tossing) or before the login does not validate; the login also replaces
the cookie (`rotate_csrf`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from broker.digests import secret_digest
from broker.oauth.clients import origin_of
from broker.web.deps import SESSION_COOKIE

CSRF_COOKIE = "consentry_csrf"
CSRF_FIELD = "csrf_token"


def page_csp(form_targets: tuple[str, ...] = ()) -> str:
    """CSP for portal pages: nothing inline, nothing from elsewhere, no framing. Scripts may fetch
    from our own origin only (passkeys.js asks the API for WebAuthn options).

    `form_targets` are origins a form may end up at: browsers apply form-action to the redirect that
    follows a POST, so the consent form must allow the brand's redirect URI.
    """
    form_action = " ".join(("'self'", *form_targets))
    return (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


def _csrf_cookie(request: Request) -> str:
    """The browser's CSRF cookie, or a new one (set on the response by `Pages.render`)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    cookie: str | None = getattr(request.state, "new_csrf", None)
    if cookie is None:
        cookie = request.state.new_csrf = secrets.token_urlsafe(32)
    return cookie


def _bound(cookie: str, session_token: str | None) -> str:
    """The form token for this cookie and this session (or none yet)."""
    binding = b"pre-session" if not session_token else b"session:" + secret_digest(session_token)
    mac = hmac.new(cookie.encode(), b"consentry-csrf\0" + binding, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_valid(request: Request, submitted: str | None, base_url: str) -> bool:
    """True when the form's token is the one this browser's cookie and session give, and the request
    comes from our origin."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        return False
    expected = _bound(cookie, request.cookies.get(SESSION_COOKIE))
    if not hmac.compare_digest(expected.encode(), submitted.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != origin_of(base_url):
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}


class Pages:
    """The templates in one package's `templates` directory, rendered as pages."""

    def __init__(self, package: str) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(files(package) / "templates")),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._static = files(package) / "static"
        self._env.globals["script"] = self.script

    @functools.cache  # noqa: B019 (one Pages per package, for the life of the process)
    def script(self, name: str) -> Markup:
        """The `<script>` tag of a static script, with its Subresource Integrity (SHA-384 of the file
        as served): a script changed on the way, or on the server's disk, does not run."""
        digest = hashlib.sha384((self._static / name).read_bytes()).digest()
        integrity = "sha384-" + base64.b64encode(digest).decode()
        return Markup('<script src="/portal/static/{}" integrity="{}" defer></script>').format(
            name, integrity
        )

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        secure: bool = False,
        form_targets: tuple[str, ...] = (),
    ) -> HTMLResponse:
        """Render a template with the CSRF token (bound to the cookie and session) in its context and
        strict security headers."""
        token = _bound(_csrf_cookie(request), request.cookies.get(SESSION_COOKIE))
        html = self.text(template, {"csrf_token": token, **context})
        return self.respond(request, html, status=status, secure=secure, form_targets=form_targets)

    def text(self, template: str, context: dict[str, Any]) -> str:
        """A template rendered as it is, with no CSRF token: for a page whose HTML is shared."""
        return self._env.get_template(template).render(**context)

    def respond(
        self,
        request: Request,
        html: str,
        *,
        status: int = 200,
        secure: bool = False,
        form_targets: tuple[str, ...] = (),
    ) -> HTMLResponse:
        """A page's HTML with strict security headers (and the browser's first CSRF cookie)."""
        cookie = _csrf_cookie(request)
        response = HTMLResponse(html, status_code=status)
        response.headers["content-security-policy"] = page_csp(form_targets)
        response.headers["cache-control"] = "no-store"
        if getattr(request.state, "new_csrf", None) == cookie:
            _set_csrf_cookie(response, cookie, secure=secure)
        return response


def rotate_csrf(response: Response, *, secure: bool) -> None:
    """A fresh CSRF token at login: one planted or seen before the login is worthless after it."""
    _set_csrf_cookie(response, secrets.token_urlsafe(32), secure=secure)


def _set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
