"""Renewal and reconfirmation: a customer keeps a grant going, on the terms they agreed to.

Before a grant expires, the customer is prompted (from `window` before its expiry, 14 days by
default) and may renew it: the new expiry is the offer's duration from now, under the very offer
version the grant was made under, and the brand's refresh tokens live on to the new expiry (the
token families follow the `grant.renewed` notice: `broker.oauth.families`). An offer since
withdrawn, or replaced by a newer version, cannot be renewed: the customer accepts the new offer
instead.

A grant longer than 90 days also needs the customer's reconfirmation every 90 days (as UK Open
Banking asks): `reconfirm_by = last_confirmed_at + 90 days` when that comes before the expiry.
From then on reads are refused (`grant-reconfirmation-due`), without touching the grant's stored
state, until the customer renews it, which counts as a reconfirmation. The prompt opens `window`
before `reconfirm_by` as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from sqlmodel import Session

from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantFacts, GrantStatus, Offer, OfferStatus
from broker.consent.offers import Offers
from broker.errors import GrantEnded, OfferSuperseded, OfferWithdrawn, ReconfirmationDue, RenewalNotOpen

__all__ = [
    "RECONFIRM_EVERY", "Confirmable", "RenewalState", "Renewals", "ensure_confirmed", "reconfirm_by",
]  # fmt: skip

RECONFIRM_EVERY = timedelta(days=90)


class Confirmable(Protocol):
    """What `reconfirm_by` reads of a grant: a `Grant`, or a row of its columns."""

    @property
    def last_confirmed_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...


def reconfirm_by(grant: Confirmable) -> datetime | None:
    """When the customer must next reconfirm the grant, or None when it expires before that."""
    due = grant.last_confirmed_at + RECONFIRM_EVERY
    return due if due < grant.expires_at else None


def ensure_confirmed(grant: Grant, now: datetime) -> None:
    """Refuse a read once the grant's reconfirmation is due (two timestamps compared, nothing loaded)."""
    due = reconfirm_by(grant)
    if due is not None and now >= due:
        raise ReconfirmationDue(
            f"grant '{grant.id}' needed the customer's reconfirmation by {due.isoformat()} (every 90 days "
            "for grants longer than 90 days): reads resume once the customer renews it in the portal",
            grant_id=str(grant.id),
            reconfirm_by=due.isoformat(),
        )


@dataclass(frozen=True, slots=True)
class RenewalState:
    """Where a grant stands for renewal: when the prompt opens, the reconfirmation date, and whether
    the customer is prompted (`prompt`) and may renew (`can_renew`: the offer is still current)."""

    window_opens_at: datetime | None
    reconfirm_by: datetime | None
    can_renew: bool
    prompt: bool


@dataclass(frozen=True, slots=True)
class Renewals:
    """Renewal by the customer, within the offer's terms; the clock is injected."""

    clock: Callable[[], datetime]
    grants: Grants
    offers: Offers
    window: timedelta

    def state(self, grant: GrantFacts, *, offer_current: bool) -> RenewalState:
        """The renewal state of `grant` now; `offer_current`: its offer version is still the active one."""
        now = self.clock()
        if effective_status(grant, now) not in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED):
            return RenewalState(window_opens_at=None, reconfirm_by=None, can_renew=False, prompt=False)
        due = reconfirm_by(grant)
        opens = min(grant.expires_at, due or grant.expires_at) - self.window
        prompt = now >= opens
        return RenewalState(
            window_opens_at=opens, reconfirm_by=due, can_renew=prompt and offer_current, prompt=prompt
        )

    def renew(self, session: Session, customer_id: UUID, grant_id: UUID) -> Grant:
        """Renew one of the customer's live grants for the offer's duration from now (409 when it has
        ended, its offer is no longer current, or the renewal window has not opened)."""
        grant = self.grants.for_customer(session, customer_id, grant_id)
        now = self.clock()
        status = effective_status(grant, now)
        if status in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            since = grant.expires_at if status is GrantStatus.EXPIRED else grant.status_changed_at
            raise GrantEnded(
                f"grant '{grant.id}' {status.value} on {since.date().isoformat()}; an ended grant cannot be "
                "renewed: accept the brand's offer again to share again",
            )
        offer = session.get(Offer, grant.offer_id)
        assert offer is not None  # grants keep their offer version
        self._ensure_current(session, offer)
        state = self.state(grant, offer_current=True)
        if not state.prompt:
            assert state.window_opens_at is not None
            raise RenewalNotOpen(
                f"grant '{grant.id}' runs until {grant.expires_at.date().isoformat()}; it can be renewed "
                f"from {state.window_opens_at.date().isoformat()}, {self.window.days} days before it "
                "expires or needs reconfirming",
                window_opens_at=state.window_opens_at.isoformat(),
            )
        expires_at = max(grant.expires_at, now + timedelta(days=offer.grant_duration_days))
        self.grants.renew(session, grant, expires_at=expires_at)
        return grant

    def _ensure_current(self, session: Session, offer: Offer) -> None:
        if offer.status is OfferStatus.ACTIVE:
            return
        latest = self.offers.latest(session, offer)
        if latest.status is OfferStatus.WITHDRAWN:
            on = (latest.withdrawn_at or latest.created_at).date().isoformat()
            raise OfferWithdrawn(
                f"the offer '{offer.title}' was withdrawn on {on}: the grant runs until it expires but "
                "cannot be renewed",
            )
        raise OfferSuperseded(
            f"the offer '{offer.title}' (version {offer.version}) was replaced by version {latest.version} "
            f"'{latest.id}' ('{latest.title}'); a grant cannot be renewed under old terms: accept the new "
            "offer instead",
            latest_id=str(latest.id),
        )
