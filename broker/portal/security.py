"""The portal's Security page: passkeys (add, rename, remove), the authenticator app (set up with a
QR code, remove), recovery codes (made anew, shown once), and the inline re-authentication that the
sensitive actions here and on the account page ask for.

Removing a factor and making new recovery codes need a fresh sign-in, as in the API; without one the
page says so and shows the re-authentication box, and nothing changes.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from broker.accounts.models import CustomerSession
from broker.accounts.signin import Proof
from broker.accounts.totp import TotpEnrolment
from broker.errors import BrokerError, TooManyAttempts
from broker.portal.guards import LoggedIn, Password, PostedForm
from broker.portal.html import render
from broker.portal.signin_pages import Code, CredentialField, RecoveryCode, parse_credential
from broker.portal.step_up import is_fresh, step_up_context
from broker.runtime import Runtime
from broker.web.deps import DbSession, RuntimeDep, client_address, undone_if_refused

router = APIRouter(prefix="/portal", include_in_schema=False)

Name = Annotated[str, Form(max_length=100)]
Here = Annotated[str, Form(alias="next", max_length=200)]
_RETURNS = ("/portal/security", "/portal/account", "/portal/password", "/portal/account/email")


def _page(
    request: Request,
    db: DbSession,
    runtime: Runtime,
    session: CustomerSession,
    *,
    message: str | None = None,
    problem: bool = False,
    status: int = 200,
    reauth: str | None = None,
    **extra: Any,
) -> Response:
    signin, customer_id = runtime.signin, session.customer_id
    context = {
        **step_up_context(db, runtime, session, "/portal/security", reauth),
        "passkeys": signin.passkeys.views(db, customer_id),
        "recovery_remaining": signin.recovery.remaining(db, customer_id),
        "message": message,
        "problem": problem,
        "new_codes": None,
        "enrolment": None,
        **extra,
    }
    return render(request, "security.html", context, status=status, secure=runtime.settings.secure_cookies)


def _failed(
    request: Request, db: DbSession, runtime: Runtime, session: CustomerSession, exc: BrokerError
) -> Response:
    problems = exc.extensions.get("errors") or []
    detail = problems[0]["detail"] if problems else exc.detail
    return _page(
        request,
        db,
        runtime,
        session,
        message=detail[:1].upper() + detail[1:],
        problem=True,
        status=exc.status,
    )


def _stale(request: Request, db: DbSession, runtime: Runtime, session: CustomerSession) -> Response | None:
    """The page asking for a fresh sign-in, when the session has none; else None."""
    if is_fresh(db, runtime, session):
        return None
    return _page(request, db, runtime, session, reauth="needed", status=403)


@router.get("/security")
def security_page(
    request: Request, session: LoggedIn, db: DbSession, runtime: RuntimeDep, reauth: str | None = None
) -> Response:
    """Passkeys, the authenticator app and recovery codes."""
    return _page(request, db, runtime, session, reauth=reauth)


@router.post("/security/passkeys")
def add_passkey(
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    name: Name = "",
    credential: CredentialField = "",
) -> Response:
    """Keep the passkey the browser just made (passkeys.js filled `credential`)."""
    if (stale := _stale(request, db, runtime, session)) is not None:
        return stale
    answer = parse_credential(credential)
    if answer is None or not name.strip():
        return _page(
            request,
            db,
            runtime,
            session,
            message="Name the passkey, then try again.",
            problem=True,
            status=422,
        )
    try:
        with undone_if_refused(db):
            runtime.signin.add_passkey(db, session, name.strip(), answer)
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, message=f"Passkey “{name.strip()}” added.")


@router.post("/security/passkeys/{passkey_id}/rename")
def rename_passkey(
    passkey_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    name: Name = "",
) -> Response:
    """Rename a passkey."""
    if not name.strip():
        return _page(
            request, db, runtime, session, message="A passkey needs a name.", problem=True, status=422
        )
    try:
        with undone_if_refused(db):
            runtime.signin.passkeys.rename(db, session.customer_id, passkey_id, name.strip())
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, message="Passkey renamed.")


@router.post("/security/passkeys/{passkey_id}/remove")
def remove_passkey(
    passkey_id: UUID,
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
) -> Response:
    """Remove a passkey (needs a fresh sign-in)."""
    if (stale := _stale(request, db, runtime, session)) is not None:
        return stale
    try:
        with undone_if_refused(db):
            runtime.signin.remove_passkey(db, session, passkey_id)
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, message="Passkey removed.")


def _enrolment_view(enrolment: TotpEnrolment) -> dict[str, str]:
    # The SVG Totp drew, as an image source (the page's CSP allows data: images, not inline SVG).
    qr_uri = "data:image/svg+xml;base64," + base64.b64encode(enrolment.qr_svg.encode()).decode()
    return {"secret": enrolment.secret, "qr_uri": qr_uri}


@router.post("/security/totp")
def start_totp(request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep) -> Response:
    """Start setting up an authenticator app: show the QR code and the key."""
    if (stale := _stale(request, db, runtime, session)) is not None:
        return stale
    try:
        with undone_if_refused(db):
            enrolment = runtime.signin.start_totp(db, session)
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, enrolment=_enrolment_view(enrolment))


@router.post("/security/totp/confirm")
def confirm_totp(
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    code: Code = "",
) -> Response:
    """Turn the authenticator app on with its first code; show the first recovery codes."""
    if (stale := _stale(request, db, runtime, session)) is not None:
        return stale
    try:
        with undone_if_refused(db):
            codes = runtime.signin.confirm_totp(db, session, code)
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, message="Authenticator app turned on.", new_codes=codes)


@router.post("/security/totp/remove")
def remove_totp(request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep) -> Response:
    """Remove the authenticator app (needs a fresh sign-in)."""
    if (stale := _stale(request, db, runtime, session)) is not None:
        return stale
    try:
        with undone_if_refused(db):
            runtime.signin.remove_totp(db, session)
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, message="Authenticator app removed.")


@router.post("/security/recovery-codes")
def regenerate_codes(request: Request, session: PostedForm, db: DbSession, runtime: RuntimeDep) -> Response:
    """Make new recovery codes and show them once (needs a fresh sign-in)."""
    if (stale := _stale(request, db, runtime, session)) is not None:
        return stale
    try:
        with undone_if_refused(db):
            codes = runtime.signin.regenerate_recovery_codes(db, session)
    except BrokerError as exc:
        return _failed(request, db, runtime, session, exc)
    return _page(request, db, runtime, session, message="New recovery codes made.", new_codes=codes)


@router.post("/reauthenticate")
def reauthenticate(
    request: Request,
    session: PostedForm,
    db: DbSession,
    runtime: RuntimeDep,
    password: Password = "",
    code: Code = "",
    recovery_code: RecoveryCode = "",
    credential: CredentialField = "",
    here: Here = "/portal/security",
) -> Response:
    """Confirm it is still the customer (password [+ code], or a passkey), then go back to the page."""
    back = here if here in _RETURNS else "/portal/security"
    answer = parse_credential(credential)
    proof = Proof(code=code or None, recovery_code=recovery_code or None, credential=answer)
    try:
        runtime.signin.reauthenticate(
            db, session, None if answer else password, proof, address=client_address(request)
        )
    except TooManyAttempts:
        return RedirectResponse(f"{back}?reauth=locked", status_code=303)
    except BrokerError:
        return RedirectResponse(f"{back}?reauth=failed", status_code=303)
    return RedirectResponse(back, status_code=303)
