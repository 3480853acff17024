"""Portal pages: log in, log out, and the account home."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts.models import CustomerSession
from broker.api.deps import SESSION_COOKIE, DbSession, RuntimeDep, clear_session_cookie, set_session_cookie
from broker.consent.grants import effective_status
from broker.errors import BrokerError, InvalidCredentials, TooManyAttempts
from broker.portal.pages import CSRF_FIELD, csrf_valid, render

router = APIRouter(prefix="/portal", include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only our own pages may be returned to after login (no open redirect)."""
    if target and target.startswith(("/oauth/authorize?", "/portal/")) and not target.startswith("//"):
        return target
    return "/portal/"


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


def login_redirect(next_path: str) -> RedirectResponse:
    """Send the browser to the login page, to come back to `next_path`."""
    return RedirectResponse(f"/portal/login?next={quote(next_path, safe='')}", status_code=303)


@router.get("/login")
def login_page(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    """The login form."""
    context = {"next": safe_next(next), "email": "", "message": None}
    return render(request, "login.html", context, secure=runtime.settings.secure_cookies)


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=4000)] = "/portal/",
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
) -> Response:
    """Check the form, log in, set the session cookie, and go back where the customer came from."""
    secure = runtime.settings.secure_cookies
    context = {"next": safe_next(next_path), "email": email}
    if not csrf_valid(request, csrf, str(runtime.settings.base_url)):
        return render(
            request,
            "login.html",
            {**context, "message": "This form expired; please try again."},
            status=403,
            secure=secure,
        )
    address = request.client.host if request.client else "unknown"
    try:
        issued = runtime.accounts.log_in(db, email, password, address=address)
    except InvalidCredentials:
        return render(
            request,
            "login.html",
            {**context, "message": "The email or password is wrong."},
            status=401,
            secure=secure,
        )
    except TooManyAttempts as exc:
        response = render(
            request, "login.html", {**context, "message": exc.detail}, status=429, secure=secure
        )
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    redirect = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(redirect, issued.token, runtime.settings)
    return redirect


@router.get("/")
def home(request: Request, session: PortalSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """The account home: who is logged in and the grants given, newest first."""
    if session is None:
        return login_redirect("/portal/")
    page = runtime.grants.listing(db, owner=("customer_id", session.customer_id), limit=50)
    now = runtime.clock()
    grants = [
        {
            "brand": brand.name,
            "fields": ", ".join(g.fields),
            "status": effective_status(g, now).value,
            "expires_at": g.expires_at.date().isoformat(),
        }
        for g, brand in runtime.grants.with_brands(db, page.items)
    ]
    return render(request, "home.html", {"grants": grants}, secure=runtime.settings.secure_cookies)


@router.post("/logout")
def logout(
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
) -> Response:
    """End the session server-side and forget the cookie."""
    if not csrf_valid(request, csrf, str(runtime.settings.base_url)):
        context = {"title": "This form expired", "message": "Reload the page and try again."}
        return render(request, "error.html", context, status=403, secure=runtime.settings.secure_cookies)
    if session is not None:
        runtime.accounts.log_out(db, session)
    response = RedirectResponse("/portal/login", status_code=303)
    clear_session_cookie(response, runtime.settings)
    return response
