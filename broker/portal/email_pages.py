"""Portal pages for the email address: confirm it with a code, ask for a new code, change it.

`GET /portal/verify?code=…` (the link in a message) only shows the code in a form: the code is used
by the POST the customer sends, so a mail scanner that follows links cannot use it up. A confirmed
code does not log anyone in (a forwarded message must not open the account): a customer who is not
logged in goes on to the login page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts.models import Customer
from broker.errors import BrokerError
from broker.portal.guards import (
    CheckedForm,
    Email,
    LoggedIn,
    NextPath,
    PortalCustomer,
    PortalSession,
    PostedForm,
    safe_next,
)
from broker.portal.html import render
from broker.portal.step_up import step_up_context
from broker.web.deps import DbSession, RuntimeDep, client_address, undone_if_refused

router = APIRouter(prefix="/portal", include_in_schema=False)
EMAIL_PAGE = "/portal/account/email"

Code = Annotated[str, Form(max_length=64)]


@router.get("/verify")
def verify_page(
    request: Request, runtime: RuntimeDep, code: str | None = None, next: str | None = None
) -> Response:
    """The form that takes an emailed code (filled in when opened from the message's link)."""
    context = {"code": (code or "")[:64], "next": safe_next(next), "message": None}
    return render(request, "verify.html", context, secure=runtime.settings.secure_cookies)


@router.post("/verify")
def verify(
    request: Request,
    _: CheckedForm,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    code: Code = "",
    next_path: NextPath = "/portal/",
) -> Response:
    """Use the code; then back where the customer came from (a consent screen), to the account's
    email page, or, when not logged in, to log in."""
    try:
        with undone_if_refused(db):
            runtime.verification.verify(db, code, address=client_address(request))
    except BrokerError as exc:
        context = {"code": code, "next": safe_next(next_path), "message": exc.detail}
        response = render(
            request, "verify.html", context, status=exc.status, secure=runtime.settings.secure_cookies
        )
        if (retry := getattr(exc, "retry_after", None)) is not None:
            response.headers["retry-after"] = str(retry)
        return response
    if session is not None:
        target = safe_next(next_path)
        if target in ("/portal/", "/portal/account/email"):
            target = "/portal/account/email?confirmed=1"
        return RedirectResponse(target, status_code=303)
    target = f"/portal/login?confirmed=1&next={quote(safe_next(next_path), safe='')}"
    return RedirectResponse(target, status_code=303)


@router.post("/email/resend")
def resend(
    request: Request,
    _: PostedForm,
    customer: PortalCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    next_path: NextPath = "/portal/account/email",
) -> Response:
    """A new code for the account's unconfirmed address."""
    message, status = "A new code is on its way. Earlier codes no longer work.", 200
    try:
        with undone_if_refused(db):
            runtime.verification.resend(db, customer, address=client_address(request))
    except BrokerError as exc:
        message, status = exc.detail, exc.status
    context = {"code": "", "next": safe_next(next_path), "message": None, "notice": message}
    return render(request, "verify.html", context, status=status, secure=runtime.settings.secure_cookies)


@router.get("/account/email")
def email_page(
    request: Request,
    session: LoggedIn,
    customer: PortalCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    confirmed: str | None = None,
    reauth: str | None = None,
) -> Response:
    """The account's address, whether it is confirmed, and the form to change it (which needs a
    fresh sign-in: the inline "confirm it is you" box)."""
    notice = "Your email address is confirmed." if confirmed else None
    context = _email_context(db, runtime, customer, notice=notice)
    context.update(step_up_context(db, runtime, session, EMAIL_PAGE, reauth))
    return render(request, "email.html", context, secure=runtime.settings.secure_cookies)


@router.post("/account/email")
def change_email(
    request: Request,
    session: PostedForm,
    customer: PortalCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    email: Email = "",
) -> Response:
    """Send a code to the new address; it replaces the current one once the code is used."""
    secure = runtime.settings.secure_cookies
    step_up = step_up_context(db, runtime, session, EMAIL_PAGE, "needed")
    if not step_up["fresh"]:
        context = _email_context(db, runtime, customer, message=step_up["reauth_message"], typed=email)
        return render(request, "email.html", {**context, **step_up}, status=403, secure=secure)
    try:
        with undone_if_refused(db):
            pending = runtime.verification.request_change(
                db, customer, email, address=client_address(request)
            )
    except BrokerError as exc:
        context = _email_context(db, runtime, customer, message=exc.detail, typed=email)
        return render(request, "email.html", {**context, **step_up}, status=exc.status, secure=secure)
    notice = f"We sent a code to {pending}. Enter it below: your address changes when you do."
    context = _email_context(db, runtime, customer, notice=notice, pending=True)
    return render(request, "email.html", {**context, **step_up}, secure=secure)


def _email_context(
    db: DbSession,
    runtime: RuntimeDep,
    customer: Customer,
    *,
    notice: str | None = None,
    message: str | None = None,
    typed: str = "",
    pending: bool = False,
) -> dict[str, Any]:
    current = runtime.accounts.email_of(db, customer.id)
    return {
        "email": current,
        "verified": customer.email_verified_at is not None,
        "notice": notice,
        "message": message,
        "typed": typed,
        "pending": pending,
    }
