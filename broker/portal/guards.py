"""Who is on a portal page, and whether a form may be acted on: the dependencies every page declares.

- `PortalSession`: the session behind the cookie, or None, for pages that logged-out visitors use
  too (logging in, signing up, the consent screen).
- `LoggedIn` (the session) and `PortalCustomer` (its customer): a page that needs a login. A
  logged-out browser is sent to the login page (303), to come back to the page it asked for.
- `CheckedForm`: a form post must carry this browser's CSRF token (`broker.web.pages`); else the
  "form expired" page (403) and nothing happens.
- `PostedForm`: both at once, for a logged-in customer's form; the login is checked first.

`start_session` is how every way of logging in ends. The pages for `LoginRequired` and `FormExpired`
are drawn by `broker.portal.errors`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts.models import Customer, CustomerSession
from broker.errors import BrokerError
from broker.web.deps import SESSION_COOKIE, DbSession, RuntimeDep, set_session_cookie
from broker.web.pages import CSRF_FIELD, csrf_valid, rotate_csrf

HOME = "/portal/"

Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=200)]
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=1024)]
NextPath = Annotated[str, Form(alias="next", max_length=4000)]


class LoginRequired(Exception):
    """The page needs a login: answered with a redirect to the login page, then back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class FormExpired(Exception):
    """A form post without this browser's CSRF token (forged, or from a page of another session)."""


def safe_next(target: str | None) -> str:
    """Only our own pages may be returned to after login (no open redirect)."""
    if target and target.startswith(("/oauth/authorize?", "/portal/")) and not target.startswith("//"):
        return target
    return HOME


def login_redirect(next_path: str, *, login_hint: str | None = None) -> RedirectResponse:
    """Send the browser to the login page, to come back to `next_path` (its email filled in with
    `login_hint`, an OpenID Connect request's, if any)."""
    hint = f"&login_hint={quote(login_hint[:320], safe='')}" if login_hint else ""
    return RedirectResponse(f"/portal/login?next={quote(next_path, safe='')}{hint}", status_code=303)


def portal_session(request: Request, db: DbSession, runtime: RuntimeDep) -> CustomerSession | None:
    """The customer session behind the portal cookie, or None when not logged in."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return runtime.accounts.authenticate(db, token)
    except BrokerError:
        return None


PortalSession = Annotated[CustomerSession | None, Depends(portal_session)]


def _back_after_login(request: Request) -> str:
    # A page comes back to itself; a form post cannot be replayed, so it comes back to the dashboard.
    return request.url.path if request.method in ("GET", "HEAD") else HOME


async def logged_in(request: Request, session: PortalSession) -> CustomerSession:
    """The session of a page that needs a login; a logged-out browser is sent to log in."""
    if session is None:
        raise LoginRequired(_back_after_login(request))
    return session


LoggedIn = Annotated[CustomerSession, Depends(logged_in)]


def portal_customer(request: Request, session: LoggedIn, db: DbSession) -> Customer:
    """The customer on a page that needs a login."""
    customer = db.get(Customer, session.customer_id)
    if customer is None:  # the sessions cascade with their account: only in a race with its deletion
        raise LoginRequired(_back_after_login(request))
    return customer


PortalCustomer = Annotated[Customer, Depends(portal_customer)]


async def checked_form(request: Request, runtime: RuntimeDep, csrf: Csrf = "") -> None:
    """Refuse a form post that does not carry this browser's CSRF token."""
    if not csrf_valid(request, csrf, str(runtime.settings.base_url)):
        raise FormExpired


CheckedForm = Annotated[None, Depends(checked_form)]


async def posted_form(session: LoggedIn, _: CheckedForm) -> CustomerSession:
    """The session of a logged-in customer's form post that carries its CSRF token."""
    return session


PostedForm = Annotated[CustomerSession, Depends(posted_form)]


def start_session(
    request: Request, db: DbSession, runtime: RuntimeDep, token: str, next_path: str
) -> Response:
    """Go on with a new session: the one the browser had before (if any) ends server-side, and the
    CSRF token is replaced, so nothing fixed before the login carries over (session fixation)."""
    if (previous := portal_session(request, db, runtime)) is not None:
        runtime.accounts.log_out(db, previous)
    redirect = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(redirect, token, runtime.settings)
    rotate_csrf(redirect, secure=runtime.settings.secure_cookies)
    return redirect
