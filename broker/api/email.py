"""The customer's email address: see it and whether it is confirmed, ask for a new code, change it.

Changing the address needs a fresh authentication (step-up, `FreshSession`): a session token stolen
earlier must not be enough to point the login at another mailbox.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from broker.api.contract import FRESH_SESSION_PROBLEMS, problems
from broker.api.schemas import CodeSent, EmailChange, EmailChangePending, EmailStatus
from broker.errors import (
    CrossSiteRefused,
    EmailAlreadyVerified,
    EmailLookalike,
    EmailTaken,
    NotAuthenticated,
    TooManyAttempts,
    ValidationFailed,
)
from broker.web.deps import CurrentCustomer, DbSession, FreshSession, RuntimeDep, client_address

router = APIRouter(prefix="/v1/me/email", tags=["customer"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in", NotAuthenticated),
    403: problems("Cross-site request refused", CrossSiteRefused),
}
_TAKEN = "Another account has this address (`email-taken`) or one that looks like it (`email-lookalike`)"
_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: problems("Too many codes asked for from this client address; see Retry-After", TooManyAttempts)
}


@router.get("", operation_id="getEmail", responses={401: _AUTH[401]})
def get_email(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> EmailStatus:
    """The account's address and whether it is confirmed."""
    email = runtime.accounts.email_of(db, customer.id)
    verified_at = customer.email_verified_at
    return EmailStatus(email=str(email), verified=verified_at is not None, verified_at=verified_at)


@router.post(
    "/verification",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="resendEmailVerification",
    responses={
        **_AUTH,
        **_THROTTLED,
        409: problems("The address is already confirmed", EmailAlreadyVerified),
    },
)
def resend_verification(
    customer: CurrentCustomer, request: Request, db: DbSession, runtime: RuntimeDep
) -> CodeSent:
    """Send a new code to the account's unconfirmed address; earlier codes stop working."""
    runtime.verification.resend(db, customer, address=client_address(request))
    return CodeSent(detail="a new code is on its way to your address; earlier ones no longer work")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="changeEmail",
    responses={
        **FRESH_SESSION_PROBLEMS,
        **_THROTTLED,
        409: problems(_TAKEN, EmailTaken, EmailLookalike),
        422: problems(
            "Not an email address, or already this account's; `errors` points at it", ValidationFailed
        ),
    },
)
def change_email(
    body: EmailChange,
    customer: CurrentCustomer,
    _: FreshSession,
    request: Request,
    db: DbSession,
    runtime: RuntimeDep,
) -> EmailChangePending:
    """Change the address: a code goes to the new one, which replaces the current one only when the
    code is used (`POST /v1/customers/verify`); the old address is then told. Until then nothing
    changes, and a new request replaces this one."""
    pending = runtime.verification.request_change(db, customer, body.email, address=client_address(request))
    return EmailChangePending(
        pending_email=pending,
        detail="a code is on its way to the new address; your address changes when you use it",
    )
