"""The brand API for offers: publish, list, read, revise (a new version), withdraw."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from broker.api.contract import problems
from broker.consent.models import OfferStatus
from broker.consent.offer_schemas import OfferDraft, OfferPage, OfferPublic
from broker.errors import (
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    OfferSuperseded,
    OfferWithdrawn,
    RequestTooLarge,
    ValidationFailed,
)
from broker.web.deps import BrandAccessDep, BrandReadAccess, DbSession, ReadSession, RuntimeDep

router = APIRouter(prefix="/v1/offers", tags=["brand"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks the scope offers:write (or offers:read)", InsufficientScope),
}
_ONE = {**_AUTH, 404: problems("No such offer for this brand", NotFound)}
_WRITE = {
    **_AUTH,
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems("Invalid offer; `errors` points at each problem", ValidationFailed),
}


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="publishOffer", responses=_WRITE)
def publish(
    body: OfferDraft, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep, response: Response
) -> OfferPublic:
    """Publish an offer: the fields asked for, the purpose, how long, and the value given back."""
    access.require("offers:write")
    offer = runtime.offers.create(db, access.brand, body)
    response.headers["Location"] = f"/v1/offers/{offer.id}"
    return OfferPublic.from_offer(offer)


@router.get(
    "",
    operation_id="listOffers",
    responses={**_AUTH, 422: problems("Bad filter or cursor", ValidationFailed)},
)
def list_offers(
    access: BrandReadAccess,
    db: ReadSession,
    runtime: RuntimeDep,
    status_filter: Annotated[OfferStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OfferPage:
    """This brand's offers, every version, newest first (keyset pagination)."""
    access.require("offers:read")
    page = runtime.offers.list(db, access.brand, status=status_filter, cursor=cursor, limit=limit)
    return OfferPage(items=[OfferPublic.from_offer(o) for o in page.items], next_cursor=page.next_cursor)


@router.get("/{offer_id}", operation_id="getOffer", responses=_ONE)
def get_offer(offer_id: UUID, access: BrandReadAccess, db: ReadSession, runtime: RuntimeDep) -> OfferPublic:
    """One offer version of this brand."""
    access.require("offers:read")
    return OfferPublic.from_offer(runtime.offers.get(db, access.brand, offer_id))


@router.put(
    "/{offer_id}",
    status_code=status.HTTP_201_CREATED,
    operation_id="reviseOffer",
    responses={
        **_ONE,
        **_WRITE,
        409: problems(
            "The offer was withdrawn, or this is not its latest version",
            OfferWithdrawn,
            OfferSuperseded,
        ),
    },
)
def revise(
    offer_id: UUID,
    body: OfferDraft,
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
    response: Response,
) -> OfferPublic:
    """Change an offer: grants keep the version they agreed to, so this publishes a new version."""
    access.require("offers:write")
    offer = runtime.offers.revise(db, access.brand, offer_id, body)
    response.headers["Location"] = f"/v1/offers/{offer.id}"
    return OfferPublic.from_offer(offer)


@router.delete("/{offer_id}", operation_id="withdrawOffer", responses=_ONE)
def withdraw(offer_id: UUID, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> OfferPublic:
    """Withdraw an offer: no new grants; existing grants run their course."""
    access.require("offers:write")
    return OfferPublic.from_offer(runtime.offers.withdraw(db, access.brand, offer_id))
