"""The customer's preferences: the customer reads and sets them (`/v1/me/preferences`); a brand with a
live grant reads them with that grant's access token (`/v1/preferences`), an audited read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from broker.api.contract import problems
from broker.errors import (
    CrossSiteRefused,
    GrantExpired,
    GrantRevoked,
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    RequestTooLarge,
    ValidationFailed,
)
from broker.voice.preferences import PreferencesIn, PreferencesPublic
from broker.web.deps import BrandToken, CurrentCustomer, DbSession, RuntimeDep

router = APIRouter(tags=["preferences"])

_CUSTOMER: dict[int | str, dict[str, Any]] = {
    401: problems("Not logged in, or the session has ended", NotAuthenticated),
}
_SET: dict[int | str, dict[str, Any]] = {
    **_CUSTOMER,
    400: problems("The body is not JSON", MalformedRequest),
    403: problems("Cross-site request refused", CrossSiteRefused),
    413: problems("The body is over 64 KiB", RequestTooLarge),
    422: problems(
        "An unknown channel or topic, a bad time or time zone, a cap out of range", ValidationFailed
    ),
}


class PreferencesRead(BaseModel):
    """A customer's preferences as a brand with a live grant reads them."""

    sub: str = Field(description="the customer's pairwise subject for this brand")
    grant_id: UUID
    preferences: PreferencesPublic


@router.get("/v1/me/preferences", operation_id="getMyPreferences", responses=_CUSTOMER)
def get_mine(customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep) -> PreferencesPublic:
    """Your preferences: the channels brands may use, quiet hours, a monthly cap per brand, topics
    never to hear about, and do-not-sell-or-share. Version 0 means you have not set any."""
    return runtime.preferences.of(db, customer.id)


@router.put("/v1/me/preferences", operation_id="setMyPreferences", responses=_SET)
def set_mine(
    body: PreferencesIn, customer: CurrentCustomer, db: DbSession, runtime: RuntimeDep
) -> PreferencesPublic:
    """Replace your preferences (what you leave out takes its default). Every brand with a live grant
    is told that they changed (webhook `preferences.changed`) and must read them again."""
    return runtime.preferences.set(db, customer.id, body)


@router.get(
    "/v1/preferences",
    operation_id="readPreferences",
    tags=["brand"],
    responses={
        401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
        403: problems(
            "A brand token (not a grant's), or the grant has ended",
            InsufficientScope,
            GrantRevoked,
            GrantExpired,
        ),
    },
)
def read(token: BrandToken, db: DbSession, runtime: RuntimeDep) -> PreferencesRead:
    """The preferences of the customer behind this grant's access token, which you must honour while
    the grant is live (active, or suspended for an overdue value), whatever its fields. Logged as an
    access (`preferences.read`)."""
    subject, grant_id, preferences = runtime.preference_reads.read(db, token)
    return PreferencesRead(sub=subject, grant_id=grant_id, preferences=preferences)
