"""The brand API's endpoints as `Call`s: path, token, body and how the answer reads. Both clients
send exactly these, so an endpoint is described once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from pydantic import BaseModel

from clients.brand.models import (
    AccessLogPage,
    Acknowledgement,
    Contact,
    DeletionAttestation,
    Escalation,
    Grant,
    GrantPage,
    GrantTicket,
    Obligation,
    Offer,
    OfferPage,
    PreferencesRead,
    Profile,
    RatingPage,
)
from clients.brand.protocol import Call

Id = UUID | str
Outcome = Literal["deleted", "de-identified"]


def _segment(value: Id) -> str:
    """An id as one path segment: nothing in it can reach another path."""
    return quote(str(value), safe="")


def _page(**params: str | int | UUID | None) -> dict[str, str | int]:
    return {k: v if isinstance(v, int) else str(v) for k, v in params.items() if v is not None}


def read_profile(purpose: str | None = None) -> Call[Profile]:
    """`GET /v1/profile[?purpose=]`."""
    params = {} if purpose is None else {"purpose": purpose}
    return Call("GET", "/v1/profile", Profile.model_validate, auth="grant", params=params)


def read_preferences() -> Call[PreferencesRead]:
    """`GET /v1/preferences`."""
    return Call("GET", "/v1/preferences", PreferencesRead.model_validate, auth="grant")


def report_contact(
    grant_id: Id, channel: str, contacted_at: datetime, purpose: str, topics: list[str]
) -> Call[Contact]:
    """`POST /v1/grants/{id}/contacts`."""
    body = {
        "channel": channel,
        "contacted_at": contacted_at.isoformat(),
        "purpose": purpose,
        "topics": topics,
    }
    return Call(
        "POST", f"/v1/grants/{_segment(grant_id)}/contacts", Contact.model_validate, body=body, success=201
    )


def publish_offer(offer: Mapping[str, Any]) -> Call[Offer]:
    """`POST /v1/offers`."""
    return Call("POST", "/v1/offers", Offer.model_validate, body=dict(offer), success=201)


def revise_offer(offer_id: Id, offer: Mapping[str, Any]) -> Call[Offer]:
    """`PUT /v1/offers/{id}`: a new version (`listed` in it lists or unlists the offer)."""
    return Call(
        "PUT", f"/v1/offers/{_segment(offer_id)}", Offer.model_validate, body=dict(offer), success=201
    )


def withdraw_offer(offer_id: Id) -> Call[Offer]:
    """`DELETE /v1/offers/{id}`."""
    return Call("DELETE", f"/v1/offers/{_segment(offer_id)}", Offer.model_validate)


def decline_grant(grant_id: Id) -> Call[Grant]:
    """`POST /v1/grants/{id}/decline`."""
    return Call("POST", f"/v1/grants/{_segment(grant_id)}/decline", Grant.model_validate)


def new_grant_ticket(grant_id: Id) -> Call[GrantTicket]:
    """`POST /v1/grants/{id}/ticket`."""
    return Call("POST", f"/v1/grants/{_segment(grant_id)}/ticket", GrantTicket.model_validate)


def list_ratings(cursor: str | None, limit: int | None) -> Call[RatingPage]:
    """`GET /v1/feedback`."""
    return Call("GET", "/v1/feedback", RatingPage.model_validate, params=_page(cursor=cursor, limit=limit))


def list_offers(status: str | None, cursor: str | None, limit: int | None) -> Call[OfferPage]:
    """`GET /v1/offers`."""
    params = _page(status=status, cursor=cursor, limit=limit)
    return Call("GET", "/v1/offers", OfferPage.model_validate, params=params)


def list_grants(status: str | None, cursor: str | None, limit: int | None) -> Call[GrantPage]:
    """`GET /v1/grants`."""
    params = _page(status=status, cursor=cursor, limit=limit)
    return Call("GET", "/v1/grants", GrantPage.model_validate, params=params)


def get_grant(grant_id: Id) -> Call[Grant]:
    """`GET /v1/grants/{id}`."""
    return Call("GET", f"/v1/grants/{_segment(grant_id)}", Grant.model_validate)


def end_grant(grant_id: Id) -> Call[None]:
    """`DELETE /v1/grants/{id}`."""
    return Call("DELETE", f"/v1/grants/{_segment(grant_id)}", lambda _: None, success=204)


def deliver_value(
    grant_id: Id,
    *,
    kind: str,
    redemption: str,
    amount: Decimal | str | None,
    currency: str | None,
    obligation_id: Id | None,
) -> Call[Obligation]:
    """`POST /v1/grants/{id}/value`."""
    body: dict[str, Any] = {"kind": kind, "redemption": redemption}
    if amount is not None:
        body["amount"] = str(amount)
    if currency is not None:
        body["currency"] = currency
    if obligation_id is not None:
        body["obligation_id"] = str(obligation_id)
    path = f"/v1/grants/{_segment(grant_id)}/value"
    return Call("POST", path, Obligation.model_validate, body=body, success=201)


def list_value(grant_id: Id) -> Call[list[Obligation]]:
    """`GET /v1/grants/{id}/value`."""
    return Call("GET", f"/v1/grants/{_segment(grant_id)}/value", _obligations)


def answer_dispute(grant_id: Id, obligation_id: Id, answer: str) -> Call[Obligation]:
    """`POST /v1/grants/{id}/value/{obligation}/answer`."""
    path = f"/v1/grants/{_segment(grant_id)}/value/{_segment(obligation_id)}/answer"
    return Call("POST", path, Obligation.model_validate, body={"answer": answer})


def escalate_dispute(grant_id: Id, obligation_id: Id) -> Call[Escalation]:
    """`POST /v1/grants/{id}/value/{obligation}/escalation` (201 made, 200 made before)."""
    path = f"/v1/grants/{_segment(grant_id)}/value/{_segment(obligation_id)}/escalation"
    return Call("POST", path, Escalation.model_validate, success=201, also=200)


def acknowledge_end(
    grant_id: Id,
    *,
    stopped_processing_at: datetime | None,
    deletion_by: datetime | None,
    statement: str | None,
) -> Call[Acknowledgement]:
    """`POST /v1/grants/{id}/acknowledgement`: the signed statement alone, or the two times."""
    if statement is not None:
        if stopped_processing_at is not None or deletion_by is not None:
            raise ValueError("a signed statement carries its times: pass statement alone")
        body: dict[str, Any] = {"statement": statement}
    else:
        if stopped_processing_at is None or deletion_by is None:
            raise ValueError("pass stopped_processing_at and deletion_by, or a signed statement")
        if stopped_processing_at.tzinfo is None or deletion_by.tzinfo is None:
            raise ValueError("stopped_processing_at and deletion_by must be timezone-aware")
        body = {
            "stopped_processing_at": stopped_processing_at.isoformat(),
            "deletion_by": deletion_by.isoformat(),
        }
    path = f"/v1/grants/{_segment(grant_id)}/acknowledgement"
    return Call("POST", path, Acknowledgement.model_validate, body=body, success=201)


def attest_deletion(
    grant_id: Id, *, outcome: Outcome, completed_at: datetime, note: str | None
) -> Call[DeletionAttestation]:
    """`POST /v1/grants/{id}/deletion`."""
    if completed_at.tzinfo is None:
        raise ValueError("completed_at must be timezone-aware, e.g. datetime.now(UTC)")
    if outcome not in ("deleted", "de-identified"):
        raise ValueError(f"outcome is 'deleted' or 'de-identified', not {outcome!r}")
    body = {"outcome": outcome, "completed_at": completed_at.isoformat(), "note": note}
    path = f"/v1/grants/{_segment(grant_id)}/deletion"
    return Call("POST", path, DeletionAttestation.model_validate, body=body, success=201)


def access_log(grant_id: Id | None, cursor: str | None, limit: int | None) -> Call[AccessLogPage]:
    """`GET /v1/access-log`."""
    params = _page(grant_id=grant_id, cursor=cursor, limit=limit)
    return Call("GET", "/v1/access-log", AccessLogPage.model_validate, params=params)


class _ObligationList(BaseModel):
    items: list[Obligation]


def _obligations(body: Any) -> list[Obligation]:
    return _ObligationList.model_validate(body).items
