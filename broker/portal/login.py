"""Portal pages for getting in and out: log in with a password (then the second factor, if the
account has one: `signin_pages`), sign up, and log out.

The login and sign-up forms answer a missing CSRF token on their own page ("This form expired"),
with what was typed kept, rather than the generic page of `guards.CheckedForm`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts.signin import SecondFactorRequired
from broker.errors import BrokerError, InvalidCredentials, TooManyAttempts
from broker.portal.guards import (
    CheckedForm,
    Csrf,
    Email,
    NextPath,
    Password,
    PortalSession,
    safe_next,
    start_session,
)
from broker.portal.html import render
from broker.portal.signin_pages import second_factor_page
from broker.web.deps import DbSession, RuntimeDep, clear_session_cookie, client_address
from broker.web.pages import csrf_valid

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("/login")
def login_page(
    request: Request,
    runtime: RuntimeDep,
    next: str | None = None,
    confirmed: str | None = None,
    login_hint: str | None = None,
) -> Response:
    """The login form (saying so when the customer just confirmed their address), its email filled in
    with a brand's `login_hint` (OpenID Connect), if it sent one that could be an address."""
    notice = "Your email address is confirmed. Log in to go on." if confirmed else None
    hint = login_hint if login_hint and len(login_hint) <= 320 else ""
    context = {"next": safe_next(next), "email": hint, "message": None, "notice": notice}
    return render(request, "login.html", context, secure=runtime.settings.secure_cookies)


@router.post("/login")
def login(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    email: Email = "",
    password: Password = "",
    next_path: NextPath = "/portal/",
    csrf: Csrf = "",
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
    try:
        issued = runtime.signin.log_in(
            db, email, password, address=client_address(request), user_agent=request.headers.get("user-agent")
        )
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
    if isinstance(issued, SecondFactorRequired):
        return second_factor_page(request, runtime, issued, next_path)
    return start_session(request, db, runtime, issued.token, next_path)


@router.get("/signup")
def signup_page(request: Request, runtime: RuntimeDep, next: str | None = None) -> Response:
    """The sign-up form."""
    context: dict[str, object] = {"next": safe_next(next), "email": "", "message": None, "errors": {}}
    return render(request, "signup.html", context, secure=runtime.settings.secure_cookies)


@router.post("/signup")
def signup(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    email: Email = "",
    password: Password = "",
    next_path: NextPath = "/portal/",
    csrf: Csrf = "",
) -> Response:
    """Sign up (the same answer whether or not the address has an account: `broker.usecases.verification`),
    then the "check your email" page, whose code leads on to log in."""
    secure = runtime.settings.secure_cookies
    context: dict[str, object] = {"next": safe_next(next_path), "email": email, "message": None, "errors": {}}
    if not csrf_valid(request, csrf, str(runtime.settings.base_url)):
        context["message"] = "This form expired; please try again."
        return render(request, "signup.html", context, status=403, secure=secure)
    try:
        runtime.verification.sign_up(db, email, password, address=client_address(request))
    except BrokerError as exc:
        problems = exc.extensions.get("errors") or []
        context["errors"] = {p["pointer"].strip("/"): p["detail"] for p in problems}
        context["message"] = "Please fix what is marked below." if problems else exc.detail
        return render(request, "signup.html", context, status=exc.status, secure=secure)
    return render(request, "check_email.html", context, secure=secure)


@router.post("/logout")
def logout(_: CheckedForm, session: PortalSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """End the session server-side and forget the cookie."""
    if session is not None:
        runtime.accounts.log_out(db, session)
    response = RedirectResponse("/portal/login", status_code=303)
    clear_session_cookie(response, runtime.settings)
    return response
