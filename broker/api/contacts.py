"""Contacts: a brand reports each contact it makes with a customer under a grant; the customer sees
them, those that broke their preferences flagged; auditors count them per brand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from broker.api.contract import problems
from broker.errors import (
    InsufficientScope,
    MalformedRequest,
    NotAuthenticated,
    NotFound,
    RequestTooLarge,
    ValidationFailed,
)
from broker.voice.contacts import BREACH_WORDS, Breach, ContactIn, ContactReportSummary, summary
from broker.voice.models import ContactReport
from broker.web.deps import (
    BrandAccessDep,
    CurrentCustomer,
    DbSession,
    ReadingAuditor,
    ReadSession,
    RuntimeDep,
)

brand_router = APIRouter(prefix="/v1/grants/{grant_id}/contacts", tags=["brand"])
customer_router = APIRouter(prefix="/v1/me/contacts", tags=["preferences"])
auditor_router = APIRouter(prefix="/v1/audit/reports", tags=["audit"])

_CURSOR = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]


class ContactPublic(BaseModel):
    """A contact a brand reported, and what of the customer's preferences it broke (in codes and in
    words). `preferences_version`: the version of the preferences in force when it was made."""

    id: UUID
    grant_id: UUID
    brand_id: UUID
    channel: str
    purpose: str
    contacted_at: datetime
    reported_at: datetime
    breaches: list[Breach]
    breaches_in_words: list[str]
    preferences_version: int

    @classmethod
    def of(cls, row: ContactReport) -> ContactPublic:
        """The API's view of a stored report."""
        broken = [Breach(code) for code in row.breaches]
        return cls(
            **row.model_dump(exclude={"breaches", "customer_id", "flagged"}),
            breaches=broken,
            breaches_in_words=[BREACH_WORDS[code] for code in broken],
        )


class ContactPage(BaseModel):
    """A page of contacts, most recent first; pass `next_cursor` back as `cursor`."""

    items: list[ContactPublic]
    next_cursor: str | None


@brand_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="reportContact",
    responses={
        401: problems("Missing, invalid, expired or revoked access token", NotAuthenticated),
        403: problems("The token lacks the scope", InsufficientScope),
        400: problems("The body is not JSON", MalformedRequest),
        404: problems("No such grant for this brand", NotFound),
        413: problems("The body is over 64 KiB", RequestTooLarge),
        422: problems(
            "An unknown channel, purpose or topic, or a time before the grant, in the future or over "
            "30 days ago",
            ValidationFailed,
        ),
    },
)
def report(
    grant_id: UUID, body: ContactIn, access: BrandAccessDep, db: DbSession, runtime: RuntimeDep
) -> ContactPublic:
    """Report a contact you made with the customer of this grant: the channel, when, why and which of
    the avoidable topics it was about. It is judged against the preferences in force then, and the
    customer sees it (flagged if it broke them). Needs `grants:write`."""
    access.require("grants:write")
    grant = runtime.grants.for_brand(db, access.brand.id, grant_id)
    return ContactPublic.of(runtime.contacts.report(db, grant, body))


@customer_router.get(
    "",
    operation_id="listMyContacts",
    responses={
        401: problems("Not logged in, or the session has ended", NotAuthenticated),
        422: problems("Bad cursor or limit", ValidationFailed),
    },
)
def list_mine(
    customer: CurrentCustomer,
    db: DbSession,
    runtime: RuntimeDep,
    flagged: Annotated[bool, Query(description="only those that broke your preferences")] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: _CURSOR = None,
) -> ContactPage:
    """The contacts brands reported making with you, most recent first, each with what it broke of
    your preferences."""
    found = runtime.contacts.for_customer(db, customer.id, cursor=cursor, limit=limit, flagged=flagged)
    return ContactPage(items=[ContactPublic.of(row) for row in found.items], next_cursor=found.next_cursor)


@auditor_router.get(
    "/contacts",
    operation_id="getContactReport",
    responses={401: problems("Missing, unknown or revoked auditor token", NotAuthenticated)},
)
def contact_report(
    _: ReadingAuditor,
    db: ReadSession,
    runtime: RuntimeDep,
    days: Annotated[int, Query(ge=1, le=3660, description="contacts made in the last this many days")] = 365,
) -> ContactReportSummary:
    """Per brand: the contacts it reported making in the last `days` days, and how many broke the
    customers' preferences, by what they broke. No customer is named."""
    now = runtime.contacts.clock()
    return summary(db, now, now - timedelta(days=days))
