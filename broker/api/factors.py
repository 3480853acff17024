"""The customer's second factors: passkeys, the authenticator app (TOTP) and recovery codes.

Removing a factor, and making new recovery codes, need a fresh sign-in (`FreshSession`)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response, status

from broker.accounts.passkeys import PasskeyView
from broker.api.contract import FRESH_SESSION_PROBLEMS, problems
from broker.api.signin_schemas import (
    PasskeyPublic,
    PasskeyRegistration,
    PasskeyRename,
    RecoveryCodesPublic,
    RecoveryCodesStatus,
    TotpCode,
    TotpEnrolmentPublic,
    TotpStatus,
)
from broker.errors import (
    ChallengeInvalid,
    CrossSiteRefused,
    EmailUnverified,
    MalformedRequest,
    NoSecondFactor,
    NotAuthenticated,
    NotFound,
    PasskeyExists,
    PasskeyRefused,
    ReauthenticationRequired,
    RequestTooLarge,
    TotpEnrolled,
    ValidationFailed,
)
from broker.web.deps import CurrentCustomer, DbSession, FreshSession, RuntimeDep

router = APIRouter(prefix="/v1/me", tags=["customer"])

_READ: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
}
_AUTH: dict[int | str, dict[str, Any]] = {
    **_READ,
    403: problems("Cross-site request refused", CrossSiteRefused),
}
_FRESH = FRESH_SESSION_PROBLEMS
# Adding a factor is itself a step-up action (else a stolen session would add the thief's passkey and
# "confirm it is you" with it), and needs a confirmed address.
_ADD_FACTOR: dict[int | str, dict[str, Any]] = {
    **FRESH_SESSION_PROBLEMS,
    403: problems(
        FRESH_SESSION_PROBLEMS[403]["description"] + "; or `email-unverified`: confirm "
        "the account's email address first",
        CrossSiteRefused,
        ReauthenticationRequired,
        EmailUnverified,
    ),
}
_BODY: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems("Invalid input; `errors` points at each problem", ValidationFailed),
}


def _public(view: PasskeyView) -> PasskeyPublic:
    return PasskeyPublic(
        id=view.id, name=view.name, created_at=view.created_at, last_used_at=view.last_used_at
    )


@router.get("/passkeys", operation_id="listMyPasskeys", responses=_READ)
def list_passkeys(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> list[PasskeyPublic]:
    """Your passkeys, oldest first."""
    return [_public(view) for view in runtime.signin.passkeys.views(db, customer.id)]


@router.post(
    "/passkeys/options",
    operation_id="createPasskeyRegistrationOptions",
    responses={**_ADD_FACTOR, 200: {"description": "PublicKeyCredentialCreationOptions (JSON form)"}},
)
def passkey_registration_options(current: FreshSession, db: DbSession, runtime: RuntimeDep) -> dict[str, Any]:
    """Start adding a passkey: options for navigator.credentials.create (single-use challenge, 5 minutes,
    bound to this session)."""
    return runtime.signin.passkey_registration_options(db, current)


@router.post(
    "/passkeys",
    status_code=status.HTTP_201_CREATED,
    operation_id="registerMyPasskey",
    responses={
        **_ADD_FACTOR,
        **_BODY,
        401: problems(
            "Not logged in; or the challenge is unknown, used or expired "
            "(`challenge-invalid`), or the credential did not verify (`passkey-refused`)",
            NotAuthenticated,
            ChallengeInvalid,
            PasskeyRefused,
        ),
        409: problems("This passkey is already registered", PasskeyExists),
    },
)
def register_passkey(
    body: PasskeyRegistration, current: FreshSession, db: DbSession, runtime: RuntimeDep
) -> PasskeyPublic:
    """Add a passkey: the answer of navigator.credentials.create to POST /v1/me/passkeys/options."""
    view = runtime.signin.add_passkey(db, current, body.name, body.credential)
    return _public(view)


@router.patch(
    "/passkeys/{passkey_id:uuid}",
    operation_id="renameMyPasskey",
    responses={**_AUTH, **_BODY, 404: problems("No such passkey on this account", NotFound)},
)
def rename_passkey(
    passkey_id: UUID, body: PasskeyRename, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> PasskeyPublic:
    """Rename a passkey."""
    return _public(runtime.signin.passkeys.rename(db, customer.id, passkey_id, body.name))


@router.delete(
    "/passkeys/{passkey_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="removeMyPasskey",
    responses={**_FRESH, 404: problems("No such passkey on this account", NotFound)},
)
def remove_passkey(passkey_id: UUID, fresh: FreshSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """Remove a passkey; it stops working at once. Needs a fresh sign-in."""
    runtime.signin.remove_passkey(db, fresh, passkey_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/totp", operation_id="getMyTotp", responses=_READ)
def totp_status(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> TotpStatus:
    """Whether an authenticator app is set up."""
    row = runtime.signin.totp.factor(db, customer.id)
    return TotpStatus(enabled=row is not None and row.confirmed_at is not None,
                      pending=row is not None and row.confirmed_at is None)  # fmt: skip


@router.post(
    "/totp",
    status_code=status.HTTP_201_CREATED,
    operation_id="startMyTotp",
    responses={
        **_ADD_FACTOR,
        409: problems("An authenticator app is already set up (`totp-enrolled`)", TotpEnrolled),
    },
)
def start_totp(current: FreshSession, db: DbSession, runtime: RuntimeDep) -> TotpEnrolmentPublic:
    """Start setting up an authenticator app: a new secret, as a QR code (SVG), an otpauth URI and
    text. It counts once confirmed with a first code (POST /v1/me/totp/confirm)."""
    enrolment = runtime.signin.start_totp(db, current)
    return TotpEnrolmentPublic(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post(
    "/totp/confirm",
    operation_id="confirmMyTotp",
    responses={
        **_ADD_FACTOR,
        **_BODY,
        404: problems("No set-up is waiting for its first code", NotFound),
        422: problems("The code is wrong, expired or already used", ValidationFailed),
    },
)
def confirm_totp(
    body: TotpCode, current: FreshSession, db: DbSession, runtime: RuntimeDep
) -> RecoveryCodesPublic:
    """Confirm the authenticator app with its first code. The answer holds the first recovery codes
    (shown this once; empty when unused ones remain from before)."""
    return RecoveryCodesPublic(codes=runtime.signin.confirm_totp(db, current, body.code))


@router.delete(
    "/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="removeMyTotp",
    responses={**_FRESH, 404: problems("No authenticator app is set up", NotFound)},
)
def remove_totp(fresh: FreshSession, db: DbSession, runtime: RuntimeDep) -> Response:
    """Remove the authenticator app. Needs a fresh sign-in."""
    runtime.signin.remove_totp(db, fresh)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/recovery-codes", operation_id="getMyRecoveryCodes", responses=_READ)
def recovery_codes_status(
    customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> RecoveryCodesStatus:
    """How many unused recovery codes remain (the codes themselves are never shown again)."""
    return RecoveryCodesStatus(remaining=runtime.signin.recovery.remaining(db, customer.id))


@router.post(
    "/recovery-codes",
    status_code=status.HTTP_201_CREATED,
    operation_id="regenerateMyRecoveryCodes",
    responses={**_FRESH, 409: problems("No second factor is set up (`no-second-factor`)", NoSecondFactor)},
)
def regenerate_recovery_codes(fresh: FreshSession, db: DbSession, runtime: RuntimeDep) -> RecoveryCodesPublic:
    """Make a new set of recovery codes, shown this once; the old ones stop working. Needs a fresh sign-in."""
    return RecoveryCodesPublic(codes=runtime.signin.regenerate_recovery_codes(db, fresh))
