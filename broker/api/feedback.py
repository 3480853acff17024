"""Feedback: a customer rates a brand after a confirmed delivery or the grant's end; the brand reads
its ratings, unnamed, with the words its customers chose to share."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from broker.api.contract import problems
from broker.errors import (
    Conflict,
    CrossSiteRefused,
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    RequestTooLarge,
    ValidationFailed,
)
from broker.voice.feedback import RatingIn
from broker.voice.models import BrandRating
from broker.web.deps import BrandAccessDep, CurrentCustomer, DbSession, RuntimeDep

customer_router = APIRouter(prefix="/v1/me/grants/{grant_id}/feedback", tags=["preferences"])
brand_router = APIRouter(prefix="/v1/feedback", tags=["brand"])


class RatingPublic(BaseModel):
    """Your rating, as recorded."""

    id: UUID
    grant_id: UUID
    occasion: str = Field(description="`end`, or `delivery:<obligation id>`")
    rating: int
    has_text: bool
    share_text: bool
    created_on: date = Field(description="the day you rated (no time is kept)")

    @classmethod
    def of(cls, row: BrandRating) -> RatingPublic:
        """The customer's view of a stored rating."""
        return cls(**row.model_dump(exclude={"occasion_key", "brand_id", "rater"}), occasion=row.occasion_key)


class BrandRatingPublic(BaseModel):
    """A rating of your brand, as you see it: no customer, no grant, the day only."""

    rating: int
    occasion: str = Field(description="`delivery` or `grant_end`")
    rated_on: date
    text: str | None = Field(description="the customer's words, only if they chose to share them")


class BrandRatingPage(BaseModel):
    """A page of ratings, newest first; pass `next_cursor` back as `cursor`."""

    items: list[BrandRatingPublic]
    next_cursor: str | None


@customer_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="rateBrand",
    responses={
        400: problems("The body is not JSON", MalformedRequest),
        401: problems("Not logged in, or the session has ended", NotAuthenticated),
        403: problems("Cross-site request refused", CrossSiteRefused),
        404: problems("No such grant of yours", NotFound),
        409: problems("Already rated, the grant has not ended, or the delivery is not confirmed", Conflict),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems(
            "A rating outside 1-5, words over 2,000 characters, or an unknown obligation", ValidationFailed
        ),
    },
)
def rate(
    grant_id: UUID, body: RatingIn, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> RatingPublic:
    """Rate the grant's brand, once per confirmed delivery and once after the grant ended. Your words
    are sealed, and reach the brand only if you set `share_text_with_brand`."""
    grant = runtime.grants.for_customer(db, customer.id, grant_id)
    return RatingPublic.of(runtime.feedback.rate(db, grant, body))


@brand_router.get(
    "",
    operation_id="listBrandRatings",
    responses={
        401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
        403: problems("The token lacks the scope", InsufficientScope),
        422: problems("Bad cursor or limit", ValidationFailed),
    },
)
def list_ratings(
    access: BrandAccessDep,
    db: DbSession,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> BrandRatingPage:
    """Your customers' ratings of you, newest first: unnamed, dated by day, with their words where
    they chose to share them. Needs `grants:read`."""
    access.require("grants:read")
    found = runtime.feedback.for_brand(db, access.brand.id, cursor=cursor, limit=limit)
    words = runtime.feedback.shared_words(db, found.items)
    items = [
        BrandRatingPublic(
            rating=row.rating,
            occasion="grant_end" if row.occasion_key == "end" else "delivery",
            rated_on=row.created_on,
            text=words.get(row.id),
        )
        for row in found.items
    ]
    return BrandRatingPage(items=items, next_cursor=found.next_cursor)
