"""Accounts: sign up, confirm an address, log in, log out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from broker.accounts.signin import SecondFactorRequired
from broker.api.contract import problems
from broker.api.schemas import (
    Credentials,
    EmailVerified,
    SessionPublic,
    SignUp,
    SignUpAccepted,
    VerificationCode,
)
from broker.api.signin_schemas import SecondFactorPending
from broker.errors import (
    CodeExpired,
    CodeRejected,
    CodeUsed,
    CrossSiteRefused,
    EmailTaken,
    InvalidCredentials,
    MalformedRequest,
    NotAuthenticated,
    RequestTooLarge,
    TooManyAttempts,
    ValidationFailed,
)
from broker.web.deps import (
    CurrentSession,
    DbSession,
    RuntimeDep,
    clear_session_cookie,
    client_address,
    set_session_cookie,
)

router = APIRouter(prefix="/v1", tags=["accounts"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems("Invalid input; `errors` points at each problem", ValidationFailed),
}


@router.post(
    "/customers",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createCustomer",
    responses={
        **_PROBLEMS,
        429: problems("Too many sign-ups from this client address; see Retry-After", TooManyAttempts),
    },
)
def create_customer(body: SignUp, request: Request, db: DbSession, runtime: RuntimeDep) -> SignUpAccepted:
    """Sign up with an email and a password (at least 12 characters, not a common one).

    The answer is the same whether or not the address has an account: a new account gets a
    verification code by email (`POST /v1/customers/verify`); the owner of an existing one (or of an
    address that looks like this one) is told someone tried. An unverified account may log in, but
    its email is not given to brands until it is confirmed."""
    runtime.verification.sign_up(db, body.email, body.password, address=client_address(request))
    return SignUpAccepted()


_BAD_CODE = "The code is wrong (`invalid-code`), used (`code-used`) or expired (`code-expired`)"


@router.post(
    "/customers/verify",
    operation_id="verifyEmail",
    responses={
        **_PROBLEMS,
        400: problems(_BAD_CODE, MalformedRequest, CodeRejected, CodeUsed, CodeExpired),
        409: problems(
            "A pending new address was taken by another account meanwhile (`email-taken`)", EmailTaken
        ),
        429: problems("Too many wrong codes from this client address; see Retry-After", TooManyAttempts),
    },
)
def verify_email(
    body: VerificationCode, request: Request, db: DbSession, runtime: RuntimeDep
) -> EmailVerified:
    """Confirm an address with the code emailed to it: the sign-up address, or a new address (which
    then replaces the old one; the old one is told). Needs no login: the code proves the mailbox."""
    used = runtime.verification.verify(db, body.code, address=client_address(request))
    return EmailVerified(purpose=used.purpose.value)


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    operation_id="createSession",
    responses={
        **_PROBLEMS,
        200: {"model": SecondFactorPending, "description": "Password right; a second factor must follow"},
        201: {"model": SessionPublic, "description": "Logged in"},
        401: problems("Wrong email or password", InvalidCredentials),
        429: problems("Too many failed attempts from this address; see Retry-After", TooManyAttempts),
    },
)
def create_session(
    body: Credentials, request: Request, response: Response, db: DbSession, runtime: RuntimeDep
) -> SessionPublic | SecondFactorPending:
    """Log in: returns a bearer token and sets the portal's session cookie (201). When the account
    has a second factor, the answer is 200 with an `mfa_token` to finish at POST /v1/sessions/mfa."""
    outcome = runtime.signin.log_in(
        db,
        body.email,
        body.password,
        address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    if isinstance(outcome, SecondFactorRequired):
        response.status_code = status.HTTP_200_OK
        return SecondFactorPending.of(outcome)
    set_session_cookie(response, outcome.token, runtime.settings)
    return SessionPublic(token=outcome.token, expires_at=outcome.session.expires_at)


@router.delete(
    "/sessions/current",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteCurrentSession",
    responses={
        401: problems("Not logged in", NotAuthenticated),
        403: problems("Cross-site request refused", CrossSiteRefused),
    },
)
def delete_current_session(current: CurrentSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """Log out: the session ends server-side and its token stops working at once."""
    runtime.accounts.log_out(db, current)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, runtime.settings)
    return response
