"""Rendering portal pages with strict headers, and CSRF tokens for every form.

CSRF: a random token lives in an HttpOnly, SameSite=Strict cookie and is repeated in each form; a
POST must carry both, equal (compared in constant time), and come from our own origin.
"""

from __future__ import annotations

import hmac
import secrets
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from broker.oauth.clients import origin_of

CSRF_COOKIE = "consentry_csrf"
CSRF_FIELD = "csrf_token"

_env = Environment(
    loader=FileSystemLoader(str(files("broker.portal") / "templates")),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


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


def csrf_token(request: Request) -> str:
    """The browser's CSRF token: the cookie's, or a new one (set on the response by `render`)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    token: str | None = getattr(request.state, "new_csrf", None)
    if token is None:
        token = request.state.new_csrf = secrets.token_urlsafe(32)
    return token


def csrf_valid(request: Request, submitted: str | None, base_url: str) -> bool:
    """True when the form's token equals the cookie's and the request comes from our origin."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie.encode(), submitted.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != origin_of(base_url):
        return False
    return request.headers.get("sec-fetch-site", "same-origin") in {"same-origin", "none"}


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    secure: bool = False,
    form_targets: tuple[str, ...] = (),
) -> HTMLResponse:
    """Render a template with the CSRF token in its context and strict security headers."""
    token = csrf_token(request)
    html = _env.get_template(template).render(csrf_token=token, **context)
    response = HTMLResponse(html, status_code=status)
    response.headers["content-security-policy"] = page_csp(form_targets)
    response.headers["cache-control"] = "no-store"
    if getattr(request.state, "new_csrf", None) == token:
        _set_csrf_cookie(response, token, secure=secure)
    return response


def rotate_csrf(response: Response, *, secure: bool) -> None:
    """A fresh CSRF token at login: one planted or seen before the login is worthless after it."""
    _set_csrf_cookie(response, secrets.token_urlsafe(32), secure=secure)


def _set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")
