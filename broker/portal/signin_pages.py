"""Portal login beyond the password: the second-factor step, and logging in with a passkey alone.

The passkey's answer arrives as a form field (`credential`, filled by static/passkeys.js), so these
are ordinary CSRF-checked form posts and end like the password login: a new session cookie and a new
CSRF token (`guards.start_session`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from broker.accounts.signin import Proof, SecondFactorRequired
from broker.errors import BrokerError, NotAuthenticated, TooManyAttempts
from broker.portal.guards import CheckedForm, NextPath, safe_next, start_session
from broker.portal.html import render
from broker.runtime import Runtime
from broker.web.deps import DbSession, RuntimeDep, client_address, undone_if_refused

router = APIRouter(prefix="/portal", include_in_schema=False)

Code = Annotated[str, Form(max_length=20)]
RecoveryCode = Annotated[str, Form(max_length=40)]
CredentialField = Annotated[str, Form(max_length=16_000)]
MfaToken = Annotated[str, Form(max_length=100)]


def parse_credential(text: str) -> dict[str, Any] | None:
    """The passkey answer posted by passkeys.js, or None when the field is empty or not an object."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def second_factor_page(
    request: Request,
    runtime: Runtime,
    pending: SecondFactorRequired,
    next_path: str,
    *,
    message: str | None = None,
    status: int = 200,
) -> Response:
    """The page asking for the second factor of a login whose password was right."""
    context = {
        "next": safe_next(next_path),
        "mfa_token": pending.mfa_token,
        "methods": pending.methods,
        "passkey_options": json.dumps(pending.passkey_options) if pending.passkey_options else "",
        "message": message,
    }
    return render(
        request, "second_factor.html", context, status=status, secure=runtime.settings.secure_cookies
    )


def _login_again(request: Request, runtime: Runtime, next_path: str, message: str, status: int) -> Response:
    context = {"next": safe_next(next_path), "email": "", "message": message}
    return render(request, "login.html", context, status=status, secure=runtime.settings.secure_cookies)


@router.post("/login/second-factor")
def second_factor(
    request: Request,
    _: CheckedForm,
    db: DbSession,
    runtime: RuntimeDep,
    mfa_token: MfaToken = "",
    code: Code = "",
    recovery_code: RecoveryCode = "",
    credential: CredentialField = "",
    next_path: NextPath = "/portal/",
) -> Response:
    """Finish a login with a code, a recovery code or a passkey."""
    proof = Proof(
        code=code or None, recovery_code=recovery_code or None, credential=parse_credential(credential)
    )
    try:
        issued = runtime.signin.complete(
            db,
            mfa_token,
            proof,
            address=client_address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except NotAuthenticated as exc:
        return _login_again(request, runtime, next_path, exc.detail, 401)
    except TooManyAttempts as exc:
        response = _login_again(request, runtime, next_path, exc.detail, 429)
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    except BrokerError as exc:
        try:
            pending = runtime.signin.pending(db, mfa_token)
        except NotAuthenticated:
            return _login_again(request, runtime, next_path, f"{exc.detail}. Start again.", exc.status)
        return second_factor_page(request, runtime, pending, next_path, message=exc.detail, status=exc.status)
    return start_session(request, db, runtime, issued.token, next_path)


@router.post("/login/passkey")
def passkey_login(
    request: Request,
    _: CheckedForm,
    db: DbSession,
    runtime: RuntimeDep,
    credential: CredentialField = "",
    next_path: NextPath = "/portal/",
) -> Response:
    """Log in with a passkey alone."""
    answer = parse_credential(credential)
    if answer is None:
        return _login_again(request, runtime, next_path, "The passkey did not answer; try again.", 422)
    try:
        with undone_if_refused(db):
            issued = runtime.signin.passkey_log_in(db, answer, user_agent=request.headers.get("user-agent"))
    except BrokerError as exc:
        return _login_again(request, runtime, next_path, exc.detail, exc.status)
    return start_session(request, db, runtime, issued.token, next_path)
