"""The customer API: the logged-in customer's own profile, export and deletion."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlmodel import Session

from broker.accounts.service import LiveSession
from broker.api.contract import FRESH_READ_PROBLEMS, FRESH_SESSION_PROBLEMS, problems
from broker.api.grant_schemas import GrantChange, GrantPage, GrantPublic
from broker.api.schemas import ProfilePublic
from broker.audit.entries import Actor
from broker.consent.access_log import AccessLogPage
from broker.consent.models import GrantStatus
from broker.errors import (
    CrossSiteRefused,
    DeletionReceiptPending,
    EmailChangeNeedsVerification,
    GrantEnded,
    IllegalTransition,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    OfferSuperseded,
    OfferWithdrawn,
    ProfileHeld,
    RenewalNotOpen,
    RequestTooLarge,
    ValidationFailed,
)
from broker.receipts.schemas import DeletionReceiptPublic
from broker.usecases.account_deletion import receipt_path
from broker.web.customer_reads import customer_read
from broker.web.deps import CurrentCustomer, DbSession, FreshSession, RuntimeDep, clear_session_cookie

router = APIRouter(prefix="/v1/me", tags=["customer"])
log = logging.getLogger(__name__)

_READ: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
}
_HELD: dict[int | str, dict[str, Any]] = {
    409: problems("The profile is in self-custody: only your browser opens it (/v1/me/custody)", ProfileHeld)
}
_AUTH: dict[int | str, dict[str, Any]] = {
    **_READ,
    403: problems("Cross-site request refused", CrossSiteRefused),
}
_FRESH = FRESH_SESSION_PROBLEMS
_WRITE: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems(
        "Unknown field or invalid value; `errors` points at each",
        ValidationFailed,
        EmailChangeNeedsVerification,
    ),
}


@router.get("/profile", operation_id="getMyProfile", responses={**_READ, **_HELD})
def get_profile(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> ProfilePublic:
    """The profile, decrypted for its owner, with derived fields."""
    return ProfilePublic.model_validate(runtime.profiles.read(db, customer))


# The vault validates profile values (one set of rules and messages); the body is parsed as a JSON
# object here and documented with the catalogue's schema.
ProfileBody = Annotated[dict[str, Any], Body(description="Profile fields; see ProfileFields")]
_PROFILE_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProfileFields"}}},
    }
}


@router.put(
    "/profile", operation_id="replaceMyProfile", responses={**_WRITE, **_HELD}, openapi_extra=_PROFILE_SCHEMA
)
def replace_profile(
    body: ProfileBody, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ProfilePublic:
    """Replace the whole profile: fields left out are removed (email is required)."""
    return ProfilePublic.model_validate(runtime.profiles.replace(db, customer, body))


@router.patch(
    "/profile", operation_id="updateMyProfile", responses={**_WRITE, **_HELD}, openapi_extra=_PROFILE_SCHEMA
)
def patch_profile(
    body: ProfileBody, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> ProfilePublic:
    """Change some fields (JSON merge patch): given fields change, null removes one, others stay."""
    return ProfilePublic.model_validate(runtime.profiles.patch(db, customer, body))


@router.get(
    "/export",
    operation_id="exportMyData",
    responses={
        **FRESH_READ_PROBLEMS,
        200: {"content": {"application/json": {}}, "description": "Everything we hold, as JSON"},
    },
)
def export(customer: CurrentCustomer, _: FreshSession, db: DbSession, runtime: RuntimeDep) -> JSONResponse:
    """Download everything held about you as one JSON document. Needs a fresh sign-in."""
    document = runtime.export.document(db, customer)
    return JSONResponse(
        document, headers={"Content-Disposition": 'attachment; filename="consentry-export.json"'}
    )


_DELETED = {
    **_FRESH,
    503: problems(
        "`deletion-receipt-pending`: the account IS deleted, but its receipt could not be proven just "
        "now; download it from the problem's `receipt_url` within the hour, without an account (do "
        "not retry the deletion). `unavailable`: nothing was deleted; retry",
        DeletionReceiptPending,
    ),
}


@router.delete("", operation_id="deleteMe", responses=_DELETED)
def delete_me(
    customer: CurrentCustomer, _: FreshSession, db: DbSession, runtime: RuntimeDep
) -> DeletionReceiptPublic:
    """Delete the account for good: the data key is destroyed, every session ends at once. Needs a
    fresh sign-in. Answers with the deletion receipt, signed, with the proof that its `account.deleted`
    entry is in the audit log: keep it (`consentry-audit receipt verify` checks it offline). A copy
    goes by mail to the account's confirmed address, once, before the answer; `mail` says whether it
    went (the deletion stands either way)."""
    deleted = runtime.account_deletion.delete(db, customer)
    db.commit()  # the entry appended and the receipt signed: now a checkpoint can cover it
    try:
        bundle = runtime.account_deletion.hand_over(db, deleted)
    except Exception as exc:  # the deletion is committed: never answer as if it failed
        # The error's text may carry the receipt's id, the capability to download it: its type only.
        log.error("a deletion receipt could not be proven after the deletion: %s", type(exc).__name__)
        db.rollback()
        raise DeletionReceiptPending(
            "Your account is deleted. Its receipt is signed and kept for an hour, but could not be "
            "proven just now, so it was not mailed either: download it from receipt_url (retrying "
            "the deletion cannot help: the account is gone).",
            receipt_url=f"{runtime.oauth.issuer}{receipt_path(deleted.receipt_id)}",
        ) from None
    response = JSONResponse(bundle.model_dump(mode="json"))
    clear_session_cookie(response, runtime.settings)
    return response  # type: ignore[return-value]  # the model above documents it


@router.get(
    "/access-log",
    operation_id="getMyAccessLog",
    responses={**_READ, 422: problems("Bad cursor", ValidationFailed)},
)
def my_access_log(
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    grant_id: Annotated[UUID | None, Query(description="only the entries about this grant")] = None,
) -> AccessLogPage:
    """Every read of your data and every consent event, newest first, each with its proof of inclusion
    in the audit log against the signed checkpoint in the page."""
    return runtime.access_log.for_customer(db, customer.id, cursor=cursor, limit=limit, grant_id=grant_id)


_NO_GRANT = problems("No such grant for this customer", NotFound)
_GRANT = {**_AUTH, 404: _NO_GRANT}


@router.get(
    "/grants",
    operation_id="listMyGrants",
    response_model=GrantPage,
    responses={**_READ, 422: problems("Bad filter or cursor", ValidationFailed)},
)
async def list_my_grants(
    request: Request,
    runtime: RuntimeDep,
    status_filter: Annotated[GrantStatus | None, Query(alias="status")] = None,
    brand: Annotated[str | None, Query(max_length=64, description="a brand's client_id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Every grant you gave, across brands, newest first (keyset pagination)."""

    def listing(db: Session, current: LiveSession) -> bytes:
        page = runtime.grant_views.customer_page(
            db, current.customer_id, status=status_filter, brand_client_id=brand, cursor=cursor, limit=limit
        )
        return GrantPage.json_of(page)

    return _json(await customer_read(request, runtime, listing))


@router.get(
    "/grants/{grant_id}",
    operation_id="getMyGrant",
    response_model=GrantPublic,
    responses={**_READ, 404: _NO_GRANT},
)
async def get_my_grant(grant_id: UUID, request: Request, runtime: RuntimeDep) -> Response:
    """One of your grants."""

    def one(db: Session, current: LiveSession) -> str:
        return GrantPublic.of(
            runtime.grant_views.for_customer(db, current.customer_id, grant_id)
        ).model_dump_json()

    return _json(await customer_read(request, runtime, one))


def _json(body: str | bytes) -> Response:
    # Serialized in the worker thread by the response model itself, as FastAPI would (`by_alias`: no
    # alias in these models), so the event loop only sends it.
    return Response(body, media_type="application/json")


@router.patch(
    "/grants/{grant_id}",
    operation_id="narrowMyGrant",
    responses={
        **_GRANT,
        409: problems("The grant has ended", IllegalTransition),
        422: problems(
            "That would widen the grant; or a self-custody grant's fields are dropped without its sealed "
            "copy (or with a bad one)",
            ValidationFailed,
        ),
    },
)
def narrow_my_grant(
    grant_id: UUID, body: GrantChange, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> GrantPublic:
    """Share less: drop fields, or end sooner. A grant is never widened (to keep it longer, renew it)."""
    grant = runtime.custody.narrow(
        db,
        customer.id,
        grant_id,
        fields=body.fields,
        expires_at=body.expires_at,
        seal=None if body.sealed is None else body.sealed.seal(),
    )
    return GrantPublic.of(runtime.grant_views.of(db, grant))


@router.delete(
    "/grants/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="revokeMyGrant",
    responses={
        **_GRANT,
        409: problems("The grant has expired (revoking twice is no error)", IllegalTransition),
    },
)
def revoke_my_grant(
    grant_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> Response:
    """Revoke: the brand's very next read fails, and its refresh tokens die."""
    runtime.grants.revoke(db, runtime.grants.for_customer(db, customer.id, grant_id), by=Actor.CUSTOMER)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/grants/{grant_id}/renewal",
    operation_id="renewMyGrant",
    responses={
        **_GRANT,
        409: problems(
            "The grant ended, its offer was withdrawn or replaced (accept the new one), "
            "or the renewal window has not opened",
            GrantEnded,
            OfferWithdrawn,
            OfferSuperseded,
            RenewalNotOpen,
        ),
    },
)
def renew_my_grant(
    grant_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> GrantPublic:
    """Renew a live grant, on the terms of the offer you accepted: it then runs for the offer's duration
    from now, and counts as your 90-day reconfirmation. Open from `renewal.window_opens_at`."""
    return GrantPublic.of(runtime.grant_views.of(db, runtime.renewals.renew(db, customer.id, grant_id)))
