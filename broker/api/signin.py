"""Signing in beyond the password: passkey login, the second step of a login, and step-up."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from broker.accounts.signin import Proof
from broker.api.contract import problems
from broker.api.schemas import SessionPublic
from broker.api.signin_schemas import PasskeyAssertion, Reauthentication, SecondFactorAnswer, SessionProof
from broker.errors import (
    ChallengeInvalid,
    CrossSiteRefused,
    InvalidCredentials,
    LoginStepExpired,
    MalformedRequest,
    NotAuthenticated,
    PasskeyRefused,
    RequestTooLarge,
    SecondFactorRefused,
    ServiceUnavailable,
    TooManyAttempts,
    ValidationFailed,
)
from broker.web.deps import CurrentSession, DbSession, RuntimeDep, client_address, set_session_cookie

router = APIRouter(prefix="/v1/sessions", tags=["accounts"])

_BODY: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems(
        "Invalid input (e.g. not a WebAuthn credential, or not exactly one factor)", ValidationFailed
    ),
}
_OPTIONS: dict[int | str, dict[str, Any]] = {
    200: {"description": "PublicKeyCredentialRequestOptions (JSON form) for navigator.credentials.get"}
}


@router.post(
    "/passkey/options",
    operation_id="createPasskeyLoginOptions",
    responses={
        **_OPTIONS,
        503: problems("The database is unavailable for a moment; retry", ServiceUnavailable),
    },
)
def passkey_login_options(db: DbSession, runtime: RuntimeDep) -> dict[str, Any]:
    """Start a passkey login: a single-use challenge (5 minutes) without allowCredentials, so the
    browser offers the passkeys it holds for this site (no email needed)."""
    return runtime.signin.passkey_options(db)


@router.post(
    "/passkey",
    status_code=status.HTTP_201_CREATED,
    operation_id="createSessionWithPasskey",
    responses={
        **_BODY,
        401: problems(
            "Unknown, used or expired challenge (`challenge-invalid`); unknown passkey, "
            "bad signature, origin, RP id or counter (`passkey-refused`)",
            ChallengeInvalid,
            PasskeyRefused,
        ),
    },
)
def passkey_login(
    body: PasskeyAssertion, request: Request, response: Response, db: DbSession, runtime: RuntimeDep
) -> SessionPublic:
    """Log in with a passkey alone: it counts as password and second factor together."""
    issued = runtime.signin.passkey_log_in(db, body.credential, user_agent=request.headers.get("user-agent"))
    set_session_cookie(response, issued.token, runtime.settings)
    return SessionPublic(token=issued.token, expires_at=issued.session.expires_at)


@router.post(
    "/mfa",
    status_code=status.HTTP_201_CREATED,
    operation_id="completeSessionWithSecondFactor",
    responses={
        **_BODY,
        401: problems(
            "Expired or used `mfa_token` (`login-step-expired`); wrong, replayed or used "
            "code (`second-factor-refused`); refused passkey (`passkey-refused`)",
            LoginStepExpired,
            SecondFactorRefused,
            PasskeyRefused,
            NotAuthenticated,
        ),
        429: problems("Too many failed attempts from this address; see Retry-After", TooManyAttempts),
    },
)
def complete_with_second_factor(
    body: SecondFactorAnswer, request: Request, response: Response, db: DbSession, runtime: RuntimeDep
) -> SessionPublic:
    """Finish a login that asked for a second factor: the `mfa_token` from POST /v1/sessions and one of
    a code from the authenticator app, a recovery code, or a passkey's answer to `passkey_options`."""
    proof = Proof(code=body.code, recovery_code=body.recovery_code, credential=body.credential)
    issued = runtime.signin.complete(
        db,
        body.mfa_token,
        proof,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    set_session_cookie(response, issued.token, runtime.settings)
    return SessionPublic(token=issued.token, expires_at=issued.session.expires_at)


_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
    403: problems("Cross-site request refused", CrossSiteRefused),
}


@router.post(
    "/current/reauthenticate/options",
    operation_id="createReauthenticationOptions",
    responses={**_OPTIONS, **_AUTH},
)
def reauthenticate_options(current: CurrentSession, db: DbSession, runtime: RuntimeDep) -> dict[str, Any]:
    """A passkey challenge for re-authenticating the current session (its customer's passkeys only)."""
    return runtime.signin.reauthenticate_options(db, current)


@router.post(
    "/current/reauthenticate",
    operation_id="reauthenticateCurrentSession",
    responses={
        **_BODY,
        **_AUTH,
        401: problems(
            "Not logged in; wrong password (`invalid-credentials`), wrong code "
            "(`second-factor-refused`), refused passkey or challenge",
            NotAuthenticated,
            InvalidCredentials,
            SecondFactorRefused,
            PasskeyRefused,
            ChallengeInvalid,
        ),
        429: problems("Too many failed attempts; see Retry-After", TooManyAttempts),
    },
)
def reauthenticate(
    body: Reauthentication, request: Request, current: CurrentSession, db: DbSession, runtime: RuntimeDep
) -> SessionProof:
    """Prove it is still you, so that deletion, export and removing a factor work for the next few
    minutes: the password (with `code` or `recovery_code` when a second factor is set up), or a
    passkey `credential` answering POST /v1/sessions/current/reauthenticate/options."""
    proof = Proof(code=body.code, recovery_code=body.recovery_code, credential=body.credential)
    renewed = runtime.signin.reauthenticate(
        db, current, body.password, proof, address=client_address(request)
    )
    return SessionProof(
        authenticated_at=renewed.authenticated_at,
        second_factor=renewed.second_factor,
        method=renewed.auth_method,
    )
