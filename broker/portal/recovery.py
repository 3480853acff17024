"""Portal pages for getting back in by email: "Forgot your password?" (ask for a code, then choose a
new password with it) and "Email me a sign-in link" (ask, then open the link and press Sign in).

A link's GET only shows a button: mail scanners open links, and must not use up the code; the POST
does. Each form carries the CSRF token; answers about an address are the API's: the same for any.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from broker.accounts.signin import SecondFactorRequired
from broker.api.deps import DbSession, RuntimeDep, client_address, undone_if_refused
from broker.errors import BrokerError
from broker.portal.pages import render
from broker.portal.routes import Csrf, Email, NextPath, Password, _forged, _logged_in, safe_next
from broker.portal.signin_pages import second_factor_page
from broker.usecases.recovery import LINK_ACCEPTED, RESET_ACCEPTED

router = APIRouter(prefix="/portal", include_in_schema=False)

Code = Annotated[str, Form(max_length=64)]
CodeQuery = Annotated[str | None, Query(max_length=64)]
NextQuery = Annotated[str | None, Query(max_length=4000)]


def _page(
    request: Request, runtime: RuntimeDep, template: str, status: int = 200, **context: Any
) -> Response:
    values = {"message": None, "notice": None, "errors": {}, "email": "", "code": "", **context}
    return render(request, template, values, status=status, secure=runtime.settings.secure_cookies)


def _refusal(
    request: Request, runtime: RuntimeDep, template: str, exc: BrokerError, **context: Any
) -> Response:
    """The page again with what was wrong: per field when the problem names one."""
    errors = {p["pointer"].strip("/"): p["detail"] for p in exc.extensions.get("errors") or []}
    message = "Please fix what is marked below." if errors else exc.detail
    response = _page(request, runtime, template, exc.status, message=message, errors=errors, **context)
    if retry_after := getattr(exc, "retry_after", None):
        response.headers["retry-after"] = str(retry_after)
    return response


@router.get("/password-reset")
def reset_page(request: Request, runtime: RuntimeDep, code: CodeQuery = None) -> Response:
    """Ask for a code; or, from the emailed link, choose the new password."""
    stage = "complete" if code else "request"
    return _page(request, runtime, "password_reset.html", stage=stage, code=code or "")


@router.post("/password-reset")
def request_reset(
    request: Request, db: DbSession, runtime: RuntimeDep, email: Email = "", csrf: Csrf = ""
) -> Response:
    """Send a code if an account uses the address; the page says the same either way."""
    if (forged := _forged(request, csrf, runtime)) is not None:
        return forged
    user_agent = request.headers.get("user-agent")
    try:
        with undone_if_refused(db):
            runtime.recovery.request(
                db, "password-reset", email, address=client_address(request), user_agent=user_agent
            )
    except BrokerError as exc:
        return _refusal(request, runtime, "password_reset.html", exc, stage="request", email=email)
    return _page(request, runtime, "password_reset.html", stage="complete", notice=RESET_ACCEPTED)


@router.post("/password-reset/complete")
def complete_reset(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    code: Code = "",
    new_password: Password = "",
    csrf: Csrf = "",
) -> Response:
    """Set the new password; then log in with it (every session was ended)."""
    if (forged := _forged(request, csrf, runtime)) is not None:
        return forged
    try:
        with undone_if_refused(db):
            runtime.recovery.reset(
                db,
                code,
                new_password,
                address=client_address(request),
                user_agent=request.headers.get("user-agent"),
            )
    except BrokerError as exc:
        return _refusal(request, runtime, "password_reset.html", exc, stage="complete", code=code)
    return _page(request, runtime, "password_reset.html", stage="done")


@router.get("/sign-in")
def sign_in_page(
    request: Request, runtime: RuntimeDep, code: CodeQuery = None, next: NextQuery = None
) -> Response:
    """Ask for a sign-in link; or, from the emailed link, a button that signs in."""
    stage = "confirm" if code else "request"
    return _page(request, runtime, "sign_in.html", stage=stage, code=code or "", next=safe_next(next))


@router.post("/sign-in/request")
def request_link(
    request: Request, db: DbSession, runtime: RuntimeDep, email: Email = "", csrf: Csrf = ""
) -> Response:
    """Send a link if an account uses the address; the page says the same either way."""
    if (forged := _forged(request, csrf, runtime)) is not None:
        return forged
    user_agent = request.headers.get("user-agent")
    try:
        with undone_if_refused(db):
            runtime.recovery.request(
                db, "sign-in", email, address=client_address(request), user_agent=user_agent
            )
    except BrokerError as exc:
        return _refusal(request, runtime, "sign_in.html", exc, stage="request", email=email, next="/portal/")
    return _page(request, runtime, "sign_in.html", stage="confirm", notice=LINK_ACCEPTED, next="/portal/")


@router.post("/sign-in")
def sign_in(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    code: Code = "",
    next_path: NextPath = "/portal/",
    csrf: Csrf = "",
) -> Response:
    """Use the link's code: a new session, and on to the portal."""
    if (forged := _forged(request, csrf, runtime)) is not None:
        return forged
    try:
        with undone_if_refused(db):
            issued = runtime.recovery.sign_in(
                db, code, address=client_address(request), user_agent=request.headers.get("user-agent")
            )
    except BrokerError as exc:
        context = {"stage": "confirm", "code": code, "next": safe_next(next_path)}
        return _refusal(request, runtime, "sign_in.html", exc, **context)
    if isinstance(issued, SecondFactorRequired):
        return second_factor_page(request, runtime, issued, next_path)
    return _logged_in(request, db, runtime, issued.token, next_path)
