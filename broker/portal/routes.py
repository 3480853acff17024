"""Portal pages: log in and out, the dashboard, a grant's detail and the actions on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts.models import Customer, CustomerSession
from broker.accounts.signin import SecondFactorRequired
from broker.api.deps import (
    SESSION_COOKIE,
    DbSession,
    RuntimeDep,
    clear_session_cookie,
    client_address,
    set_session_cookie,
)
from broker.audit.entries import Actor
from broker.errors import BrokerError, InvalidCredentials, NotFound, TooManyAttempts, ValidationFailed
from broker.portal import views
from broker.portal.pages import CSRF_FIELD, csrf_valid, render, rotate_csrf
from broker.portal.profile_form import ProfileForm, form_context
from broker.portal.step_up import step_up_context
from vault.errors import ProfileInvalid

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
Csrf = Annotated[str, Form(alias=CSRF_FIELD, max_length=200)]
Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=1024)]
NextPath = Annotated[str, Form(alias="next", max_length=4000)]


def login_redirect(next_path: str) -> RedirectResponse:
    """Send the browser to the login page, to come back to `next_path`."""
    return RedirectResponse(f"/portal/login?next={quote(next_path, safe='')}", status_code=303)


@router.get("/login")
def login_page(
    request: Request, runtime: RuntimeDep, next: str | None = None, confirmed: str | None = None
) -> Response:
    """The login form (saying so when the customer just confirmed their address)."""
    notice = "Your email address is confirmed. Log in to go on." if confirmed else None
    context = {"next": safe_next(next), "email": "", "message": None, "notice": notice}
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
        # Imported here: signin_pages builds on this module's form helpers.
        from broker.portal.signin_pages import second_factor_page

        return second_factor_page(request, runtime, issued, next_path)
    return _logged_in(request, db, runtime, issued.token, next_path)


def _logged_in(request: Request, db: DbSession, runtime: RuntimeDep, token: str, next_path: str) -> Response:
    """Go on with a new session: the one the browser had before (if any) ends server-side, and the
    CSRF token is replaced, so nothing fixed before the login carries over (session fixation)."""
    if (previous := portal_session(request, db, runtime)) is not None:
        runtime.accounts.log_out(db, previous)
    redirect = RedirectResponse(safe_next(next_path), status_code=303)
    set_session_cookie(redirect, token, runtime.settings)
    rotate_csrf(redirect, secure=runtime.settings.secure_cookies)
    return redirect


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
    """Sign up (the same answer whether or not the address has an account: `broker.verification`),
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


@router.get("/")
def home(request: Request, session: PortalSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """The dashboard: every grant across brands, its value and last access, and value totals."""
    if session is None:
        return login_redirect("/portal/")
    context = views.overview(db, runtime, session.customer_id)
    return render(request, "home.html", context, secure=runtime.settings.secure_cookies)


@router.get("/grants/{grant_id}")
def grant_page(
    grant_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One grant: what is shared, its terms, its timeline with proof badges, its value, actions."""
    if session is None:
        return login_redirect(f"/portal/grants/{grant_id}")
    return _grant(request, db, runtime, session, grant_id, before=before)


def _grant(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    session: CustomerSession,
    grant_id: UUID,
    *,
    message: str | None = None,
    status: int = 200,
    before: str | None = None,
    until: str | None = None,
) -> Response:
    secure = runtime.settings.secure_cookies
    try:
        context = views.grant_detail(db, runtime, session.customer_id, grant_id, before=before)
    except NotFound:
        context = {
            "title": "No such grant",
            "message": "It may have been another account's. Go back to your data.",
        }
        return render(request, "error.html", context, status=404, secure=secure)
    except ValidationFailed:
        context = {"title": "That link is broken", "message": "Open the grant again from your data."}
        return render(request, "error.html", context, status=400, secure=secure)
    context.update(message=message, until=until)
    return render(request, "grant.html", context, status=status, secure=secure)


def _change_grant(
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
    session: CustomerSession,
    grant_id: UUID,
    change: Callable[[], object],
    *,
    until: str | None = None,
) -> Response:
    """Make one change to a grant, then show the grant again; a refusal is shown on its page."""
    try:
        change()
    except BrokerError as exc:
        return _grant(
            request, db, runtime, session, grant_id, message=exc.detail, status=exc.status, until=until
        )
    return RedirectResponse(f"/portal/grants/{grant_id}", status_code=303)


def _refused(
    request: Request, session: CustomerSession | None, csrf: str, runtime: RuntimeDep
) -> Response | None:
    """The response for a post that may not proceed (not logged in, or no valid CSRF token), else None."""
    if session is None:
        return login_redirect("/portal/")
    return _forged(request, csrf, runtime)


def _forged(request: Request, csrf: str, runtime: RuntimeDep) -> Response | None:
    """The 403 page for a post without a valid CSRF token, else None."""
    if csrf_valid(request, csrf, str(runtime.settings.base_url)):
        return None
    context = {"title": "This form expired", "message": "Reload the page and try again."}
    return render(request, "error.html", context, status=403, secure=runtime.settings.secure_cookies)


@router.post("/grants/{grant_id}/revoke")
def revoke_grant(
    grant_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """End a grant, once the customer ticked that they understand."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    if confirm != "yes":
        message = "Tick the box to confirm you want to stop sharing."
        return _grant(request, db, runtime, session, grant_id, message=message, status=422)
    customer_id = session.customer_id
    return _change_grant(
        request, db, runtime, session, grant_id,
        lambda: runtime.grants.revoke(
            db, runtime.grants.for_customer(db, customer_id, grant_id), by=Actor.CUSTOMER
        ),
    )  # fmt: skip


@router.post("/grants/{grant_id}/narrow")
def narrow_grant(
    grant_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
    fields: Annotated[list[str] | None, Form(max_length=40)] = None,
) -> Response:
    """Stop sharing the fields left unticked (required ones stay; to stop those, end the grant)."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    customer_id = session.customer_id
    return _change_grant(
        request, db, runtime, session, grant_id,
        lambda: runtime.grants.narrow_for_customer(
            db, customer_id, grant_id, fields=fields or [], expires_at=None
        ),
    )  # fmt: skip


@router.post("/grants/{grant_id}/shorten")
def shorten_grant(
    grant_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
    until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Bring the end of sharing forward to the end of the chosen day (UTC); never later than it was."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    try:
        last_day = date.fromisoformat(until.strip())
    except ValueError:
        message = "Pick the last day of sharing as a date, like 2026-12-31."
        return _grant(request, db, runtime, session, grant_id, message=message, status=422, until=until)
    customer_id = session.customer_id

    def shorten() -> None:
        grant = runtime.grants.for_customer(db, customer_id, grant_id)
        if last_day < runtime.clock().date():
            raise ValidationFailed("The last day of sharing cannot be in the past; pick today or later.")
        end_of_day = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
        if end_of_day >= grant.expires_at:
            raise ValidationFailed(
                f"Sharing already ends on {grant.expires_at:%Y-%m-%d at %H:%M} UTC; pick an earlier day "
                "to shorten it (to share for longer, renew)."
            )
        runtime.grants.narrow_for_customer(db, customer_id, grant_id, fields=None, expires_at=end_of_day)

    return _change_grant(request, db, runtime, session, grant_id, shorten, until=until)


@router.post("/grants/{grant_id}/renew")
def renew_grant(
    grant_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
) -> Response:
    """Keep sharing on the same terms for the offer's duration from today (and reconfirm)."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    customer_id = session.customer_id
    return _change_grant(
        request, db, runtime, session, grant_id, lambda: runtime.renewals.renew(db, customer_id, grant_id)
    )


@router.post("/value/{obligation_id}/confirm")
def confirm_value(
    obligation_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
) -> Response:
    """The customer received the value."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    obligation = runtime.value.for_customer(db, session.customer_id, obligation_id)
    try:
        runtime.value.confirm(db, session.customer_id, obligation_id)
    except BrokerError as exc:
        return _grant(request, db, runtime, session, obligation.grant_id, message=str(exc), status=exc.status)
    return RedirectResponse(f"/portal/grants/{obligation.grant_id}", status_code=303)


@router.post("/value/{obligation_id}/dispute")
def dispute_value(
    obligation_id: UUID,
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The customer disputes a delivery, saying why."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    obligation = runtime.value.for_customer(db, session.customer_id, obligation_id)
    if not reason.strip():
        message = "Say what is wrong with the delivery, so the brand can answer."
        return _grant(request, db, runtime, session, obligation.grant_id, message=message, status=422)
    try:
        runtime.value.dispute(db, session.customer_id, obligation_id, reason.strip())
    except BrokerError as exc:
        return _grant(request, db, runtime, session, obligation.grant_id, message=str(exc), status=exc.status)
    return RedirectResponse(f"/portal/grants/{obligation.grant_id}", status_code=303)


@router.get("/profile")
def profile_page(request: Request, session: PortalSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """The profile editor, filled with what is stored."""
    if session is None:
        return login_redirect("/portal/profile")
    customer = db.get(Customer, session.customer_id)
    assert customer is not None
    stored = runtime.profiles.read(db, customer)["fields"]
    context = {**form_context(stored, {}), "message": None}
    return render(request, "profile.html", context, secure=runtime.settings.secure_cookies)


@router.post("/profile")
def save_profile(
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    form: Annotated[ProfileForm, Form()],
    csrf: Csrf = "",
) -> Response:
    """Save the whole profile; on a mistake, say which field and keep everything typed."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    customer = db.get(Customer, session.customer_id) if session else None
    assert customer is not None
    values = form.values()
    try:
        runtime.profiles.replace(db, customer, values)
    except (ProfileInvalid, ValidationFailed) as exc:
        problems = (
            {e.field: e.message for e in exc.errors}
            if isinstance(exc, ProfileInvalid)
            else {p["pointer"].strip("/"): p["detail"] for p in exc.extensions.get("errors", [])}
        )
        typed = {**values, **{n: getattr(form, n) for n in ("phone", "household_size", "birthdate")}}
        context = {**form_context(typed, problems), "message": "Please fix what is marked below."}
        return render(request, "profile.html", context, status=422, secure=runtime.settings.secure_cookies)
    context = {**form_context(runtime.profiles.read(db, customer)["fields"], {}), "message": "Saved."}
    return render(request, "profile.html", context, secure=runtime.settings.secure_cookies)


DELETE_PHRASE = "delete my account"


@router.get("/account")
def account_page(
    request: Request, session: PortalSession, db: DbSession, runtime: RuntimeDep, reauth: str | None = None
) -> Response:
    """Export, and deleting the account (with what it means, and a typed confirmation); both need a
    fresh sign-in, asked for inline."""
    if session is None:
        return login_redirect("/portal/account")
    context = {
        "message": None,
        "typed": "",
        **step_up_context(db, runtime, session, "/portal/account", reauth),
    }
    return render(request, "account.html", context, secure=runtime.settings.secure_cookies)


@router.post("/account/delete")
def delete_account(
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
    confirm: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Delete the account for good, once the customer typed the phrase."""
    if (refused := _refused(request, session, csrf, runtime)) is not None:
        return refused
    assert session is not None
    step_up = step_up_context(db, runtime, session, "/portal/account", "needed")
    if not step_up["fresh"]:
        context = {"message": step_up["reauth_message"], "typed": confirm, **step_up}
        return render(request, "account.html", context, status=403, secure=runtime.settings.secure_cookies)
    if confirm.strip().lower() != DELETE_PHRASE:
        context = {"message": f"Type “{DELETE_PHRASE}” exactly to confirm.", "typed": confirm, **step_up}
        return render(request, "account.html", context, status=422, secure=runtime.settings.secure_cookies)
    customer = db.get(Customer, session.customer_id)
    if customer is not None:
        runtime.account_deletion.delete(db, customer)
    response = render(request, "deleted.html", {}, secure=runtime.settings.secure_cookies)
    clear_session_cookie(response, runtime.settings)
    return response


@router.post("/logout")
def logout(
    request: Request,
    session: PortalSession,
    db: DbSession,
    runtime: RuntimeDep,
    csrf: Csrf = "",
) -> Response:
    """End the session server-side and forget the cookie."""
    if (forged := _forged(request, csrf, runtime)) is not None:
        return forged
    if session is not None:
        runtime.accounts.log_out(db, session)
    response = RedirectResponse("/portal/login", status_code=303)
    clear_session_cookie(response, runtime.settings)
    return response
