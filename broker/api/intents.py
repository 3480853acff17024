"""Intents: a customer says what they are looking for; brands with a listed offer of that kind see it
under a random handle, never who, and may answer with an offer; the customer compares the answers and
accepts one in the directory (`POST /v1/directory/offers/{id}/grant`), which alone tells that brand
who they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response, status
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
    TooManyAttempts,
    ValidationFailed,
)
from broker.usecases.directory import DirectoryOffer
from broker.voice.intents import IntentIn
from broker.voice.models import Intent
from broker.web.deps import BrandAccessDep, CurrentCustomer, DbSession, RuntimeDep

customer_router = APIRouter(prefix="/v1/me/intents", tags=["preferences"])
brand_router = APIRouter(prefix="/v1/intents", tags=["brand"])

_CUSTOMER: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
}
_BRAND: dict[int | str, dict[str, Any]] = {
    401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
    403: problems("The token lacks the scope", InsufficientScope),
}
_BODY: dict[int | str, dict[str, Any]] = {
    400: problems("The body is not JSON", MalformedRequest),
    413: problems("The body is over 64 KiB", RequestTooLarge),
}


class IntentPublic(BaseModel):
    """One of your intents, as you see it (brands see the same but the id and `only_brands`)."""

    id: UUID
    handle: str = Field(description="the random name brands see it under")
    kind: str
    category: str
    horizon: str
    budget_band: str | None
    region: str | None = Field(description="shown to brands only because you chose to share it")
    age_band: str | None = Field(description="shown to brands only because you chose to share it")
    only_brands: list[str] | None = Field(description="brand ids of the only brands that may see it")
    created_at: datetime
    expires_at: datetime


class IntentAnswers(BaseModel):
    """An intent and the listed offers brands answered it with, each as the directory shows it."""

    intent: IntentPublic
    answers: list[DirectoryOffer]


class IntentSeen(BaseModel):
    """An intent as a brand sees it: no customer, no subject, no field value."""

    handle: str
    kind: str
    category: str
    horizon: str
    budget_band: str | None
    region: str | None
    age_band: str | None
    expires_at: datetime
    answered: bool = Field(description="you answered it already (one answer per brand)")


class IntentsSeen(BaseModel):
    """The open intents you may answer, newest first (at most 100)."""

    items: list[IntentSeen]


class AnswerIn(BaseModel):
    """An answer: one of your listed offers in the intent's category."""

    model_config = {"extra": "forbid"}

    offer_id: UUID


class AnswerPublic(BaseModel):
    """Your answer, as recorded."""

    handle: str
    offer_id: UUID
    created_at: datetime


def _public(intent: Intent) -> IntentPublic:
    return IntentPublic.model_validate(intent.model_dump(exclude={"owner"}))


@customer_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="publishIntent",
    responses={
        **_CUSTOMER,
        **_BODY,
        403: problems("Cross-site request refused", CrossSiteRefused),
        422: problems(
            "An unknown kind, horizon or band, days out of 1-90, or an unknown brand", ValidationFailed
        ),
        429: problems("Five intents open already: withdraw one first", TooManyAttempts),
    },
)
def publish(body: IntentIn, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> IntentPublic:
    """Say what you are looking for, for 1 to 90 days. Brands with a listed offer of its kind see it
    (never who you are; your region and age band only if you share them) and may answer with an offer."""
    return _public(runtime.intents.publish(db, customer.id, body))


@customer_router.get("", operation_id="listMyIntents", responses=_CUSTOMER)
def list_mine(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> list[IntentPublic]:
    """Your open intents, newest first."""
    return [_public(intent) for intent in runtime.intents.mine(db, customer.id)]


@customer_router.get(
    "/{intent_id}",
    operation_id="getMyIntent",
    responses={**_CUSTOMER, 404: problems("No such open intent of yours", NotFound)},
)
def get_mine(intent_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> IntentAnswers:
    """One intent and the offers brands answered it with, as the directory shows them: compare them
    (`GET /v1/directory/compare`) and accept one (`POST /v1/directory/offers/{id}/grant`)."""
    intent = runtime.intents.one_of_mine(db, customer.id, intent_id)
    answers = runtime.directory.still_listed(db, customer.id, runtime.intents.answers(db, intent))
    return IntentAnswers(intent=_public(intent), answers=answers)


@customer_router.delete(
    "/{intent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="withdrawMyIntent",
    responses={**_CUSTOMER, 404: problems("No such open intent of yours", NotFound)},
)
def withdraw(intent_id: UUID, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> Response:
    """Withdraw an intent: it is deleted with its answers."""
    runtime.intents.withdraw(db, customer.id, intent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@brand_router.get("", operation_id="listIntents", responses=_BRAND)
def list_seen(access: BrandAccessDep, db: DbSession, runtime: RuntimeDep) -> IntentsSeen:
    """The open intents of the categories of your listed offers, newest first. Needs `offers:read`."""
    access.require("offers:read")
    seen = runtime.intents.visible_to(db, access.brand.id)
    return IntentsSeen(
        items=[IntentSeen(**intent.model_dump(), answered=answered) for intent, answered in seen]
    )


@brand_router.post(
    "/{handle}/answers",
    status_code=status.HTTP_201_CREATED,
    operation_id="answerIntent",
    responses={
        **_BRAND,
        **_BODY,
        404: problems("No open intent with this handle that you may see", NotFound),
        409: problems("You answered it already", Conflict),
        422: problems("Not one of your listed offers in the intent's category", ValidationFailed),
        429: problems("Over 50 answers in a day", TooManyAttempts),
    },
)
def answer(
    handle: str, body: AnswerIn, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> AnswerPublic:
    """Answer an intent with one of your listed offers in its category, once. The customer sees it
    beside the other answers; you learn who they are only if they accept yours. Needs `offers:write`."""
    access.require("offers:write")
    made = runtime.intents.answer(db, access.brand.id, handle, body.offer_id)
    return AnswerPublic(handle=handle, offer_id=made.offer_id, created_at=made.created_at)
