"""The portal's error pages: every error under /portal (and at /oauth/authorize) is an HTML page
with the error's status, never problem+json (`error_page`, which `broker.web.problems` and the
middleware draw it with); a logged-out browser is sent to log in, and a form without its CSRF token
gets the "form expired" page (`install`, for the exceptions of `broker.portal.guards`).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from broker.portal.guards import HOME, FormExpired, LoginRequired, login_redirect
from broker.portal.html import render

PREFIX = "/portal/"
# The paths browsers read: the portal's, and the consent screen it draws at the authorization endpoint
# (whose errors that cannot be redirected to the brand, such as 405 or 413, are pages as well).
PAGE_PREFIXES = (PREFIX, "/oauth/authorize")

_TITLES = {
    400: "That could not be read",
    401: "Log in first",
    403: "That is not allowed",
    404: "Nothing here",
    405: "That cannot be done here",
    409: "That cannot be done now",
    413: "That was too much to send",
    422: "That could not be done",
    429: "Too many attempts",
    503: "Try again in a moment",
}


def _secure(request: Request) -> bool:
    secure: bool = request.app.state.runtime.settings.secure_cookies
    return secure


def error_page(request: Request, status: int, detail: str) -> Response:
    """The page for an error no portal page answered itself: what went wrong, and the way back."""
    title = _TITLES.get(status, "Something went wrong")
    message = detail[:1].upper() + detail[1:]
    context = {"title": title, "message": message if message.endswith(".") else message + ".", "back": HOME}
    return render(request, "error.html", context, status=status, secure=_secure(request))


def install(app: FastAPI) -> None:
    """Answer the guards' refusals: to the login page, or the "form expired" page."""

    @app.exception_handler(LoginRequired)
    async def _login_required(_: Request, exc: LoginRequired) -> RedirectResponse:
        return login_redirect(exc.next_path)

    @app.exception_handler(FormExpired)
    async def _form_expired(request: Request, _: FormExpired) -> Response:
        context = {"title": "This form expired", "message": "Reload the page and try again."}
        return render(request, "error.html", context, status=403, secure=_secure(request))
