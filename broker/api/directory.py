"""The offer directory: customers browse, compare and accept listed offers; brands decline the grants
customers start there, or take a new grant ticket when the webhook's was lost.

Browsing is a read that leaves no trace: no audit entry, nothing a brand can see.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from sqlmodel import Session

from broker.accounts.service import LiveSession
from broker.api.contract import problems
from broker.api.grant_schemas import GrantPublic
from broker.consent.directory import DirectoryFilters, DirectorySort
from broker.consent.offer_schemas import ValueKind
from broker.consent.purposes import PURPOSES
from broker.errors import (
    CrossSiteRefused,
    GrantsUnsealable,
    IllegalTransition,
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotDeclinable,
    NotFound,
    OfferSuperseded,
    OfferWithdrawn,
    RequestTooLarge,
    ValidationFailed,
)
from broker.oauth.tickets import GrantTicket, issue_ticket
from broker.usecases.directory import Comparison, DirectoryOffer, DirectoryPage, StartGrant
from broker.web.customer_reads import customer_read
from broker.web.deps import BrandAccessDep, CurrentCustomer, DbSession, RuntimeDep
from vault.fields import CATALOGUE

router = APIRouter(prefix="/v1/directory", tags=["customer"])
brand_router = APIRouter(prefix="/v1/grants", tags=["brand"])

_NOT_LOGGED_IN = problems("Not logged in, or the session has ended", NotAuthenticated)
_NOT_LISTED = problems("No such offer in the directory", NotFound)
_CHANGED = problems(
    "The offer was withdrawn, or changed (latest_id names its listed version)",
    OfferWithdrawn,
    OfferSuperseded,
)
_BRAND: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks the scope grants:write", InsufficientScope),
    404: problems("No such grant for this brand", NotFound),
}


@router.get(
    "/offers",
    operation_id="browseDirectory",
    response_model=DirectoryPage,
    responses={401: _NOT_LOGGED_IN, 422: problems("Bad filter, sort or cursor", ValidationFailed)},
)
async def browse(
    request: Request,
    runtime: RuntimeDep,
    purpose: Annotated[
        str | None,
        Query(
            max_length=64,
            description="offers that declare this purpose (a slug)",
            json_schema_extra={"enum": list(PURPOSES)},
        ),
    ] = None,
    value_kind: Annotated[
        list[ValueKind], Query(max_length=5, description="offers whose value is of one of these kinds")
    ] = [],  # noqa: B006 - FastAPI copies a list default per request
    currency: Annotated[
        str | None,
        Query(pattern=r"^([A-Z]{3}|points)$", description="offers whose value is counted in it (or points)"),
    ] = None,
    fields: Annotated[
        list[str],
        Query(
            max_length=len(CATALOGUE),
            description="offers you could accept sharing only these fields: each field they require is "
            "among them (optional ones you would leave out)",
            json_schema_extra={"items": {"type": "string", "enum": list(CATALOGUE)}},
        ),
    ] = [],  # noqa: B006
    max_duration_days: Annotated[int | None, Query(ge=1, le=366)] = None,
    max_retention_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    max_recipients: Annotated[
        int | None, Query(ge=0, le=20, description="0: offers that share your data with nobody else")
    ] = None,
    sort: DirectorySort = DirectorySort.NEWEST,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """Listed offers, each with your values of the fields it asks for, its value per field per month
    and the brand's track record; filtered, sorted, keyset-paginated. Nobody learns that you looked."""
    filters = DirectoryFilters(
        purpose=purpose,
        value_kinds=tuple(value_kind),
        currency=currency,
        fields=tuple(fields),
        max_duration_days=max_duration_days,
        max_retention_days=max_retention_days,
        max_recipients=max_recipients,
    )

    def page(db: Session, current: LiveSession) -> str:
        found = runtime.directory.page(
            db, current.customer_id, filters, sort=sort, cursor=cursor, limit=limit
        )
        return found.model_dump_json()

    return _json(await customer_read(request, runtime, page))


@router.get(
    "/offers/{offer_id}",
    operation_id="getDirectoryOffer",
    response_model=DirectoryOffer,
    responses={401: _NOT_LOGGED_IN, 404: _NOT_LISTED, 409: _CHANGED},
)
async def one_offer(offer_id: UUID, request: Request, runtime: RuntimeDep) -> Response:
    """One listed offer, as the directory shows it."""

    def one(db: Session, current: LiveSession) -> str:
        return runtime.directory.one(db, current.customer_id, offer_id).model_dump_json()

    return _json(await customer_read(request, runtime, one))


@router.get(
    "/compare",
    operation_id="compareDirectoryOffers",
    response_model=Comparison,
    responses={
        401: _NOT_LOGGED_IN,
        404: _NOT_LISTED,
        409: _CHANGED,
        422: problems("Not 2 to 4 different offers", ValidationFailed),
    },
)
async def compare(
    request: Request,
    runtime: RuntimeDep,
    offer: Annotated[list[UUID], Query(min_length=2, max_length=4, description="2 to 4 offer ids")],
) -> Response:
    """2 to 4 listed offers side by side: a row per term (marked where they differ) and the
    differences in plain words."""

    def side_by_side(db: Session, current: LiveSession) -> str:
        return runtime.directory.compare(db, current.customer_id, offer).model_dump_json()

    return _json(await customer_read(request, runtime, side_by_side))


@router.post(
    "/offers/{offer_id}/grant",
    status_code=status.HTTP_201_CREATED,
    operation_id="acceptDirectoryOffer",
    responses={
        401: _NOT_LOGGED_IN,
        403: problems("Cross-site request refused", CrossSiteRefused),
        404: _NOT_LISTED,
        409: problems(
            "The offer was withdrawn, or changed (latest_id names its listed version); or your profile is "
            "in your custody and the brand cannot receive sealed data",
            OfferWithdrawn,
            OfferSuperseded,
            GrantsUnsealable,
        ),
        400: problems("The body is not JSON", MalformedRequest),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems(
            "A field or purpose the offer does not have, sensitive fields without special_category_consent, "
            "no purpose agreed to, an unconfirmed email the offer requires, or (self-custody) no sealed "
            "copy, or one that does not fit",
            ValidationFailed,
        ),
    },
)
def accept(
    offer_id: UUID,
    body: StartGrant,
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    response: Response,
) -> GrantPublic:
    """Accept a listed offer: the grant the consent screen would make (its receipt, the value owed, the
    brand's `grant.created` webhook with a grant ticket for its tokens). The brand may decline it
    within a window, before reading anything."""
    grant = runtime.directory.start(db, customer, offer_id, body)
    response.headers["Location"] = f"/v1/me/grants/{grant.id}"
    return GrantPublic.of(runtime.grant_views.for_customer(db, customer.id, grant.id))


@brand_router.post(
    "/{grant_id}/decline",
    operation_id="declineGrant",
    responses={
        **_BRAND,
        409: problems("Not started in the directory, past the window, already read, or ended", NotDeclinable),
    },
)
def decline(grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> GrantPublic:
    """Decline a grant a customer started in the directory, before its `decline_by` and before any
    read: it ends (revoked by the brand) with a receipt to the customer, and nothing is owed."""
    access.require("grants:write")
    runtime.directory.decline(db, access.brand.id, grant_id)
    return GrantPublic.of(runtime.grant_views.for_brand(db, access.brand, grant_id))


@brand_router.post(
    "/{grant_id}/ticket",
    operation_id="newGrantTicket",
    responses={
        **_BRAND,
        409: problems("Not started in the directory, or no longer active", IllegalTransition),
    },
)
def new_ticket(grant_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> GrantTicket:
    """A new grant ticket for a live grant a customer started in the directory (when the webhook's
    was lost or expired): exchange it at the token endpoint like the webhook's."""
    access.require("grants:write")
    grant = runtime.directory.ticketable(db, access.brand.id, grant_id)
    ticket, expires_at = issue_ticket(
        runtime.oauth,
        grant_id=grant.id,
        brand_id=grant.brand_id,
        customer_id=grant.customer_id,
        client_id=access.brand.client_id,
    )
    return GrantTicket(grant_ticket=ticket, expires_at=expires_at)


def _json(body: str) -> Response:
    return Response(body, media_type="application/json")
