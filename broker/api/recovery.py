"""Getting back in by email (no login needed): password resets and one-time sign-in links.

Requests answer 202 with the same body whether or not the address has an account; see
`broker.usecases.recovery` for the codes, the limits and what a reset ends.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from broker.accounts.signin import SecondFactorRequired
from broker.api.contract import problems
from broker.api.recovery_schemas import PasswordReset, RecoveryAccepted, RecoveryRequest
from broker.api.schemas import SessionPublic, VerificationCode
from broker.api.signin_schemas import SecondFactorPending
from broker.errors import (
    CodeExpired,
    CodeRejected,
    CodeUsed,
    MalformedRequest,
    RequestTooLarge,
    TooManyAttempts,
    ValidationFailed,
)
from broker.usecases.recovery import LINK_ACCEPTED, RESET_ACCEPTED
from broker.web.deps import DbSession, RuntimeDep, client_address, set_session_cookie

router = APIRouter(prefix="/v1", tags=["accounts"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems("Invalid input; `errors` points at each problem", ValidationFailed),
}
_REQUEST: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS,
    422: problems("Not an email address; `errors` points at it", ValidationFailed),
    429: problems("Too many requests from this client address; see Retry-After", TooManyAttempts),
}
_CODE: dict[int | str, dict[str, Any]] = {
    **_PROBLEMS,
    400: problems(
        "The body is not JSON, or the code is wrong (`invalid-code`), used (`code-used`) "
        "or expired (`code-expired`)",
        MalformedRequest,
        CodeRejected,
        CodeUsed,
        CodeExpired,
    ),
    429: problems("Too many wrong codes from this client address; see Retry-After", TooManyAttempts),
}


@router.post(
    "/password-resets",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="requestPasswordReset",
    responses=_REQUEST,
)
def request_reset(
    body: RecoveryRequest, request: Request, db: DbSession, runtime: RuntimeDep
) -> RecoveryAccepted:
    """Forgot the password: a code to reset it goes to the address if an account uses it. The answer
    is the same either way."""
    runtime.recovery.request(
        db,
        "password-reset",
        body.email,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    return RecoveryAccepted(detail=RESET_ACCEPTED)


@router.post(
    "/password-resets/complete",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="completePasswordReset",
    responses={
        **_CODE,
        422: problems("The new password is too weak; `errors` points at it", ValidationFailed),
    },
)
def complete_reset(body: PasswordReset, request: Request, db: DbSession, runtime: RuntimeDep) -> Response:
    """Set a new password with the emailed code: you are logged out everywhere (log in again with
    the new password), other outstanding codes stop working, and the address is told."""
    runtime.recovery.reset(
        db,
        body.code,
        body.new_password,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/sign-in-links",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="requestSignInLink",
    responses=_REQUEST,
)
def request_link(
    body: RecoveryRequest, request: Request, db: DbSession, runtime: RuntimeDep
) -> RecoveryAccepted:
    """Sign in without the password: a one-time link goes to the address if an account uses it. It
    works even while password attempts on the account are being slowed down or refused."""
    runtime.recovery.request(
        db,
        "sign-in",
        body.email,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    return RecoveryAccepted(detail=LINK_ACCEPTED)


@router.post(
    "/sign-in-links/complete",
    status_code=status.HTTP_201_CREATED,
    operation_id="completeSignInLink",
    responses={**_CODE, 200: {"description": "A second factor is set up: finish at POST /v1/sessions/mfa"}},
)
def complete_link(
    body: VerificationCode, request: Request, response: Response, db: DbSession, runtime: RuntimeDep
) -> SessionPublic | SecondFactorPending:
    """Sign in with the code of an emailed link: a bearer token and the portal's session cookie, as
    `POST /v1/sessions` gives (201); when the account has a second factor, 200 with an `mfa_token`
    to finish at POST /v1/sessions/mfa, as after a password."""
    issued = runtime.recovery.sign_in(
        db, body.code, address=client_address(request), user_agent=request.headers.get("user-agent")
    )
    if isinstance(issued, SecondFactorRequired):
        response.status_code = status.HTTP_200_OK
        return SecondFactorPending.of(issued)
    set_session_cookie(response, issued.token, runtime.settings)
    return SessionPublic(token=issued.token, expires_at=issued.session.expires_at)
