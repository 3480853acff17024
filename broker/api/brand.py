"""The brand API: read a granted profile, manage offers, see and end grants."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from broker.api.contract import problems
from broker.api.grant_schemas import GrantPage, GrantPublic, ProfileRead
from broker.audit.entries import Actor
from broker.consent.access_log import AccessLogPage
from broker.consent.models import GrantStatus
from broker.errors import (
    GrantExpired,
    GrantRevoked,
    GrantSuspended,
    IllegalTransition,
    InsufficientScope,
    NotAuthenticated,
    NotFound,
    PurposeNotGranted,
    PurposeRequired,
    ReadNotRecorded,
    ReconfirmationDue,
    SealedCopyMissing,
    ValidationFailed,
    ValueOverdue,
)
from broker.runtime import Runtime
from broker.web.deps import BrandAccessDep, DbSession, RuntimeDep, brand_token
from broker.web.plain import answer_plainly
from broker.web.purposes import PURPOSE_PARAMETER, checked_purpose

router = APIRouter(prefix="/v1", tags=["brand"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks the scope", InsufficientScope),
}
_NO_GRANT = problems("No such grant for this brand", NotFound)
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]


@router.get(
    "/profile",
    operation_id="readProfile",
    response_model=ProfileRead,
    openapi_extra={"parameters": [PURPOSE_PARAMETER]},
    responses={
        **_AUTH,
        400: problems("A grant of several purposes, and no purpose said", PurposeRequired),
        403: problems(
            "The token lacks the scope, or the grant is not live (revoked, expired, suspended), its 90-day "
            "reconfirmation is due, the brand owes value that is overdue, or the purpose is not granted "
            "(a refused read, logged)",
            InsufficientScope,
            GrantSuspended,
            GrantRevoked,
            GrantExpired,
            ReconfirmationDue,
            ValueOverdue,
            PurposeNotGranted,
        ),
        409: problems(
            "A self-custody grant whose fields the customer has not sealed for this purpose yet",
            SealedCopyMissing,
        ),
        422: problems("An unknown purpose", ValidationFailed),
        503: problems(
            "The read could not be recorded in the audit log in time, so it was not served", ReadNotRecorded
        ),
    },
)
async def read_profile(request: Request) -> Response:
    """The customer's granted fields (derived ones computed), if the grant is live right now.

    No unit of work here: the read runs in a batch of concurrent reads (group commit), and is answered
    once its audit entry is committed."""
    # The hottest endpoint, answered through `answer_plainly`: it reads its bearer token and request id
    # itself (with `brand_token`, as the dependency would) and serialises its own answer.
    runtime: Runtime = request.app.state.runtime
    token = await brand_token(request)
    purpose = checked_purpose(request.query_params.get("purpose"))
    # awaited on the event loop: the request holds no worker thread while its batch commits
    served = await runtime.reads.serve_async(
        runtime.sessions, token, request_id=request.state.request_id, purpose=purpose
    )
    answer = ProfileRead.model_validate(served)
    return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")


answer_plainly(router, "/profile", read_profile)


@router.get(
    "/grants",
    operation_id="listBrandGrants",
    response_model=GrantPage,
    responses={**_AUTH, 422: problems("Bad filter or cursor", ValidationFailed)},
)
def list_grants(
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
    status_filter: Annotated[GrantStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """This brand's grants, newest first (keyset pagination)."""
    access.require("grants:read")
    page = runtime.grant_views.brand_page(db, access.brand, status=status_filter, cursor=cursor, limit=limit)
    return Response(GrantPage.json_of(page), media_type="application/json")


@router.get(
    "/access-log",
    operation_id="getBrandAccessLog",
    responses={**_AUTH, 422: problems("Bad cursor", ValidationFailed)},
)
def brand_access_log(
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
    grant_id: Annotated[UUID | None, Query(description="only the entries about this grant")] = None,
) -> AccessLogPage:
    """This brand's entries in the audit log (its reads, offers and grants' events), newest first, each
    with its proof of inclusion against the signed checkpoint in the page. Needs `grants:read`."""
    access.require("grants:read")
    return runtime.access_log.for_brand(db, access.brand.id, cursor=cursor, limit=limit, grant_id=grant_id)


@router.get(
    "/grants/{grant_id}",
    operation_id="getBrandGrant",
    responses={**_AUTH, 404: _NO_GRANT},
)
def get_grant(grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> GrantPublic:
    """One of this brand's grants; another brand's id answers 404."""
    access.require("grants:read")
    return GrantPublic.of(runtime.grant_views.for_brand(db, access.brand, grant_id))


@router.delete(
    "/grants/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="endBrandGrant",
    responses={
        **_AUTH,
        404: _NO_GRANT,
        409: problems("The grant has expired (ending it twice is no error)", IllegalTransition),
    },
)
def end_grant(grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> Response:
    """The brand ends the arrangement: the grant is revoked and its tokens die."""
    access.require("grants:write")
    runtime.grants.revoke(db, runtime.grants.for_brand(db, access.brand.id, grant_id), by=Actor.BRAND)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
