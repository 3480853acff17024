"""Grants: the persisted state machine of a customer's consent to one brand.

    active ──suspend──▶ suspended ──resume──▶ active
      │                    │
      ├──────revoke────────┴──▶ revoked      (by the customer or the brand)
      └──────expire────────────▶ expired     (also computed from expires_at on every check)

Any other transition is `IllegalTransition`. A grant is checked on every read: its stored state,
and its `expires_at` against the clock, so expiry holds to the second without a background job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, Integer, Uuid, and_, bindparam, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from broker.accounts.models import Brand
from broker.accounts.tombstones import deleted_among
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.models import Grant, GrantFacts, GrantStatus, Offer, OfferStatus
from broker.consent.notices import Notice, Notices, NoticeType
from broker.consent.sealed import SealedCopies
from broker.consent.standing import AcceptedTerms, BrandName, Listed, lapsed
from broker.consent.standing import effective_status as effective_status  # its home was here: re-exported
from broker.errors import (
    GrantExpired,
    GrantRevoked,
    GrantSuspended,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from broker.pagination import Page, check_limit, decode_cursor, newest_first, page_of
from vault.driver import DriverQuery
from vault.sqltypes import UTCDateTime

TRANSITIONS: dict[GrantStatus, frozenset[GrantStatus]] = {
    GrantStatus.ACTIVE: frozenset({GrantStatus.SUSPENDED, GrantStatus.REVOKED, GrantStatus.EXPIRED}),
    GrantStatus.SUSPENDED: frozenset({GrantStatus.ACTIVE, GrantStatus.REVOKED, GrantStatus.EXPIRED}),
    GrantStatus.REVOKED: frozenset(),
    GrantStatus.EXPIRED: frozenset(),
}


# The problem a read on a grant that is not live answers, by the grant's state.
_NOT_LIVE = {
    GrantStatus.SUSPENDED: GrantSuspended,
    GrantStatus.REVOKED: GrantRevoked,
    GrantStatus.EXPIRED: GrantExpired,
}


_ENTRY_KIND = {
    GrantStatus.ACTIVE: Kind.GRANT_RESUMED,
    GrantStatus.SUSPENDED: Kind.GRANT_SUSPENDED,
    GrantStatus.REVOKED: Kind.GRANT_REVOKED,
    GrantStatus.EXPIRED: Kind.GRANT_EXPIRED,
}


@dataclass(frozen=True, slots=True)
class Grants:
    """Grant operations, each recorded in the audit log and told to the notice subscribers (which
    follow a grant's transitions: `broker.consent.notices`); the clock is injected."""

    clock: Callable[[], datetime]
    audit: AuditLog
    # Required: what follows a grant (receipts, webhooks, value, token families) is told through these,
    # and a Grants without them would, say, leave an ended grant's tokens live.
    notices: Notices
    # How long a brand has, from a grant's end, to acknowledge it (broker.usecases.acknowledgements).
    end_ack_window: timedelta = timedelta(hours=72)

    def create(
        self,
        session: Session,
        *,
        customer_id: UUID,
        offer: Offer,
        fields: Sequence[str],
        purposes: Mapping[str, Sequence[str]] | None = None,
        decline_by: datetime | None = None,
        grant_id: UUID | None = None,
    ) -> Grant:
        """A new active grant for exactly `fields` of `offer`, expiring after the offer's duration; with
        `purposes` (an offer of several), the fields that go with each purpose agreed to. With
        `decline_by`, a grant the customer started in the directory, which the brand may decline
        until then (its notice says `origin: directory`). `grant_id`: the id the customer's browser chose
        (a self-custody grant is sealed to its brand, bound to its id, before it exists)."""
        now = self.clock()
        grant = Grant(
            id=grant_id or uuid4(),
            customer_id=customer_id,
            brand_id=offer.brand_id,
            offer_id=offer.id,
            fields=list(fields),
            purpose=next(iter(purposes)) if purposes else offer.purpose,
            purpose_fields={slug: list(used) for slug, used in purposes.items()} if purposes else None,
            created_at=now,
            expires_at=now + timedelta(days=offer.grant_duration_days),
            status_changed_at=now,
            last_confirmed_at=now,
            started_in_directory=decline_by is not None,
            decline_by=decline_by,
        )
        session.add(grant)
        session.flush()
        self._record(session, grant, Kind.GRANT_CREATED, Actor.CUSTOMER, offer=offer.id, with_terms=True)
        return grant

    def _record(
        self,
        session: Session,
        grant: Grant,
        kind: Kind,
        actor: Actor,
        *,
        with_terms: bool = False,
        **more: object,
    ) -> None:
        terms: dict[str, object] = {
            "fields": grant.fields,
            "purpose": grant.purpose,
            "expires_at": grant.expires_at,
        }
        if grant.purpose_fields:  # several purposes: which fields go with which
            terms["purposes"] = grant.purpose_fields
        entry = self.audit.record(
            session,
            kind,
            actor=actor,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
            **(terms if with_terms else {}),
            **more,
        )
        data: dict[str, object] = {**terms, "expires_at": grant.expires_at.isoformat()}
        if more.get("reason") is not None:
            data["reason"] = more["reason"]
        if kind is Kind.GRANT_CREATED and grant.decline_by is not None:  # started in the directory
            data |= {"origin": "directory", "decline_by": grant.decline_by.isoformat()}
        self.notices.publish(
            session,
            Notice(
                type=NoticeType(kind.value),
                at=self.clock(),
                actor=actor,
                grant_id=grant.id,
                brand_id=grant.brand_id,
                customer_id=grant.customer_id,
                data=data,
                entry=entry,
            ),
        )

    def _get(self, session: Session, grant_id: UUID, **owner: UUID) -> Grant:
        grant = self._find(session, grant_id, **owner)
        self._settle_expiry(session, grant)
        return grant

    def _find(self, session: Session, grant_id: UUID, **owner: UUID) -> Grant:
        grant = session.get(Grant, grant_id)
        if grant is None or any(getattr(grant, k) != v for k, v in owner.items()):
            raise NotFound(f"grant '{grant_id}' not found")
        return grant

    def for_brand(self, session: Session, brand_id: UUID, grant_id: UUID) -> Grant:
        """A brand's own grant; another brand's (or an unknown id) is 404, never 403."""
        return self._get(session, grant_id, brand_id=brand_id)

    def for_customer(self, session: Session, customer_id: UUID, grant_id: UUID) -> Grant:
        """A customer's own grant; anyone else's is 404."""
        return self._get(session, grant_id, customer_id=customer_id)

    def seen_by_customer(self, session: Session, customer_id: UUID, grant_id: UUID) -> Grant:
        """`for_customer` without the write: a lapsed expiry stays for the sweep to record (views
        compute it: `effective_status`, `settled_ending`)."""
        return self._find(session, grant_id, customer_id=customer_id)

    def listing(
        self,
        session: Session,
        *,
        owner: tuple[str, UUID],
        status: GrantStatus | None = None,
        brand_id: UUID | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Listed]:
        """Grants of one brand or one customer, newest first, keyset-paginated (`broker.pagination`),
        each with its brand's names and its offer's terms: one query, run on the driver's cursor, whose
        rows stand for the grants themselves (`GrantFacts`: no ORM object to build; a page of 20 cost
        about 600 µs of CPU as ORM grants and brands). A read: a lapsed expiry is left for the sweep to
        record (views compute it: `effective_status`, `settled_ending`)."""
        check_limit(limit)
        column, value = owner
        params: dict[str, object] = {"owner": value, "rows": limit + 1, "now": self.clock()}
        if brand_id is not None:
            params["brand_id"] = brand_id
        if cursor is not None:
            params["after_at"], params["after_id"] = decode_cursor(cursor)
        query = _listing_query(column, brand_id is not None, status, cursor is not None)
        rows = page_of(query.all(session.connection(), params), limit, created="created_at", ident="id")
        items = [
            Listed(row, BrandName(row.brand_client_id, row.brand_name),
                   AcceptedTerms(row.offer_status is OfferStatus.ACTIVE, row.offer_retention_days))
            for row in rows.items
        ]  # fmt: skip
        return Page(items, rows.next_cursor)

    def listed(self, session: Session, grants: Sequence[Grant]) -> list[Listed]:
        """`listing`'s items for grants at hand (their brands and their offers' terms, a query each)."""
        terms = self.accepted_terms(session, grants)
        return [
            Listed(grant, BrandName(brand.client_id, brand.name), terms[grant.offer_id])
            for grant, brand in self.with_brands(session, grants)
        ]

    def with_brands(self, session: Session, grants: Sequence[Grant]) -> list[tuple[Grant, Brand]]:
        """Pair each grant with its brand, in one query."""
        ids = {g.brand_id for g in grants}
        brands = {b.id: b for b in session.exec(select(Brand).where(col(Brand.id).in_(ids)))} if ids else {}
        return [(g, brands[g.brand_id]) for g in grants]

    def accepted_terms(self, session: Session, grants: Sequence[Grant]) -> dict[UUID, AcceptedTerms]:
        """What views need of these grants' offer versions, by offer id, in one query."""
        ids = {g.offer_id for g in grants}
        if not ids:
            return {}
        query = select(Offer.id, Offer.status, Offer.retention_days).where(col(Offer.id).in_(ids))
        return {
            offer_id: AcceptedTerms(status is OfferStatus.ACTIVE, retention_days)
            for offer_id, status, retention_days in session.exec(query)
        }

    def customers_deleted(self, session: Session, grants: Sequence[GrantFacts]) -> set[UUID]:
        """The customers of these grants who deleted their account (their grants stay, revoked)."""
        return deleted_among(session, {g.customer_id for g in grants})

    def _settle_expiry(self, session: Session, grant: Grant) -> None:
        # Persist an expiry the clock has already decided, so stored state catches up with the truth.
        if lapsed(grant, self.clock()):
            self._move(session, grant, GrantStatus.EXPIRED, actor=Actor.BROKER, at=grant.expires_at)

    def _move(
        self,
        session: Session,
        grant: Grant,
        target: GrantStatus,
        *,
        actor: Actor,
        at: datetime | None = None,
        reason: str | None = None,
    ) -> None:
        if target not in TRANSITIONS[grant.status]:
            raise IllegalTransition(
                f"grant '{grant.id}' is {grant.status.value}; it cannot become {target.value}"
            )
        grant.status, grant.status_changed_at = target, at or self.clock()
        if target in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            # Deletion falls due when the offer's retention has run from the grant's end.
            offer = session.get(Offer, grant.offer_id)
            assert offer is not None  # grants keep their offer version (no cascade)
            grant.deletion_due_at = grant.status_changed_at + timedelta(days=offer.retention_days)
            grant.end_ack_due_at = grant.status_changed_at + self.end_ack_window
        session.add(grant)
        self._record(session, grant, _ENTRY_KIND[target], actor, reason=reason)
        if target in (GrantStatus.REVOKED, GrantStatus.EXPIRED):  # a self-custody grant's copy goes
            SealedCopies(audit=self.audit, clock=self.clock).delete(session, grant, reason=target.value)

    def revoke(self, session: Session, grant: Grant, *, by: Actor, reason: str | None = None) -> Grant:
        """End the grant now (its token families die with it: a notice subscriber), for `reason` (a
        slug) if there is one. Revoking twice is a no-op."""
        if grant.status is GrantStatus.REVOKED:
            return grant
        self._move(session, grant, GrantStatus.REVOKED, actor=by, reason=reason)
        grant.ended_by = by.value
        session.flush()
        return grant

    def suspend(self, session: Session, grant: Grant, *, reason: str) -> None:
        """The broker stops the grant's reads for `reason` (a slug) until `resume`."""
        self._move(session, grant, GrantStatus.SUSPENDED, actor=Actor.BROKER, reason=reason)

    def resume(self, session: Session, grant: Grant, *, reason: str) -> None:
        """Reads of a suspended grant may go on again."""
        self._move(session, grant, GrantStatus.ACTIVE, actor=Actor.BROKER, reason=reason)

    def renew(self, session: Session, grant: Grant, *, expires_at: datetime) -> Grant:
        """The customer renews (and so reconfirms) a live grant until `expires_at`; the caller checked
        the offer's terms (broker.consent.renewal)."""
        if effective_status(grant, self.clock()) in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            raise IllegalTransition(f"grant '{grant.id}' has ended; it can no longer be renewed")
        grant.expires_at, grant.last_confirmed_at = expires_at, self.clock()
        session.add(grant)
        session.flush()
        self._record(session, grant, Kind.GRANT_RENEWED, Actor.CUSTOMER, with_terms=True)
        return grant

    def settle_lapsed(self, session: Session, *, limit: int = 500) -> int:
        """Move up to `limit` live grants whose expiry has passed to expired, oldest expiry first, so
        that their `grant.expired` entry and notice happen even when nobody touches them. Returns how
        many moved; the caller commits."""
        now = self.clock()
        lapsed = (
            select(Grant)
            .where(col(Grant.status).in_([GrantStatus.ACTIVE, GrantStatus.SUSPENDED]))
            .where(col(Grant.expires_at) <= now)
            .order_by(col(Grant.expires_at), col(Grant.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        grants = list(session.exec(lapsed))
        for grant in grants:
            self._settle_expiry(session, grant)
        return len(grants)

    def revoke_all_for_customer(self, session: Session, customer_id: UUID) -> int:
        """Revoke every grant of a customer that is still live (before their account is deleted)."""
        live = select(Grant).where(
            Grant.customer_id == customer_id,
            col(Grant.status).in_([GrantStatus.ACTIVE, GrantStatus.SUSPENDED]),
        )
        # in id order: the order a batch of reads locks grants in (`broker.audit.group_commit`)
        grants = list(session.exec(live.order_by(col(Grant.id))))
        for grant in grants:
            self._settle_expiry(session, grant)
            if grant.status is not GrantStatus.EXPIRED:
                self.revoke(session, grant, by=Actor.CUSTOMER)
        return len(grants)

    def revoke_all_for_brand(self, session: Session, brand_id: UUID) -> int:
        """Revoke every grant of a brand that is still live (it deleted its registration): each ends
        as if the brand had ended it, with its entry, receipt and notices."""
        live = select(Grant).where(
            Grant.brand_id == brand_id, col(Grant.status).in_([GrantStatus.ACTIVE, GrantStatus.SUSPENDED])
        )
        grants = list(session.exec(live.order_by(col(Grant.id))))  # the order batches of reads lock in
        for grant in grants:
            self._settle_expiry(session, grant)
            if grant.status is not GrantStatus.EXPIRED:
                self.revoke(session, grant, by=Actor.BRAND)
        return len(grants)

    def narrow(
        self,
        session: Session,
        grant: Grant,
        offer: Offer,
        *,
        fields: Sequence[str] | None,
        expires_at: datetime | None,
        by: Actor,
    ) -> Grant:
        """Drop fields and/or bring the expiry forward; never widen. Required fields stay."""
        if effective_status(grant, self.clock()) in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            raise IllegalTransition(f"grant '{grant.id}' has ended; it can no longer be changed")
        errors = []
        if fields is not None:
            added = [f for f in fields if f not in grant.fields]
            dropped_required = [f for f in offer.required_fields if f in grant.fields and f not in fields]
            if added:
                errors.append(
                    {
                        "pointer": "/fields",
                        "detail": f"a grant can only be narrowed; not granted: {', '.join(added)}",
                    }
                )
            if dropped_required:
                errors.append(
                    {
                        "pointer": "/fields",
                        "detail": f"required by the offer: {', '.join(dropped_required)}; revoke instead",
                    }
                )
        if expires_at is not None and not (self.clock() < expires_at <= grant.expires_at):
            errors.append(
                {
                    "pointer": "/expires_at",
                    "detail": "expires_at must be in the future and no later than the current expiry: "
                    "a grant can only be shortened",
                }
            )
        if errors:
            raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)
        if fields is not None and set(fields) != set(grant.fields):
            # A self-custody grant's copy holds the dropped fields: it goes at once (`broker.usecases.
            # custody` seals the narrowed grant anew in the same transaction).
            SealedCopies(audit=self.audit, clock=self.clock).delete(
                session, grant, reason="narrowed", actor=by
            )
        if fields is not None:
            grant.fields = [f for f in grant.fields if f in fields]
            if grant.purpose_fields:  # a purpose left with none of its fields is no longer granted
                kept = {slug: [f for f in used if f in fields] for slug, used in grant.purpose_fields.items()}
                grant.purpose_fields = {slug: used for slug, used in kept.items() if used}
                grant.purpose = next(iter(grant.purpose_fields))
        if expires_at is not None:
            grant.expires_at = expires_at
        session.add(grant)
        session.flush()
        self._record(session, grant, Kind.GRANT_AMENDED, by, with_terms=True)
        return grant

    def narrow_for_customer(
        self,
        session: Session,
        customer_id: UUID,
        grant_id: UUID,
        *,
        fields: Sequence[str] | None,
        expires_at: datetime | None,
    ) -> Grant:
        """The customer narrows one of their grants (see `narrow`)."""
        grant = self.for_customer(session, customer_id, grant_id)
        offer = session.get(Offer, grant.offer_id)
        assert offer is not None
        return self.narrow(session, grant, offer, fields=fields, expires_at=expires_at, by=Actor.CUSTOMER)

    def brand_filter(self, session: Session, client_id: str | None) -> UUID | None:
        """The brand id for a client_id filter; an unknown client_id matches nothing (not an error)."""
        if client_id is None:
            return None
        brand = session.exec(select(Brand).where(Brand.client_id == client_id)).first()
        return brand.id if brand else UUID(int=0)

    def ensure_live(self, grant: Grant) -> None:
        """Raise GrantSuspended, GrantRevoked or GrantExpired (403, since when) unless the grant is active."""
        now = self.clock()
        status = effective_status(grant, now)
        if status is GrantStatus.ACTIVE:
            return
        since = grant.expires_at if status is GrantStatus.EXPIRED else grant.status_changed_at
        raise _NOT_LIVE[status](
            f"grant '{grant.id}' is {status.value} since {since.isoformat()}",
            grant_id=str(grant.id),
            grant_status=status.value,
            since=since.isoformat(),
        )


# A page of grants, as `Grants.listing` reads it: the grant's columns (named as the grant's attributes,
# so a row stands for the grant: `GrantFacts`), its brand's names and its offer's terms.
_LISTED_COLUMNS: tuple[Any, ...] = (
    *Grant.__table__.columns,  # type: ignore[attr-defined]
    col(Brand.client_id).label("brand_client_id"),
    col(Brand.name).label("brand_name"),
    col(Offer.status).label("offer_status"),
    col(Offer.retention_days).label("offer_retention_days"),
)
LIVE = (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)  # grants a brand still holds


def _status_filter(status: GrantStatus, now: Any) -> ColumnElement[bool]:
    """Grants whose effective state is `status` at `now` (expiry is exact: `effective_status`)."""
    stored = col(Grant.status)
    if status is GrantStatus.EXPIRED:
        live = or_(*(stored == state for state in LIVE))
        return or_(stored == GrantStatus.EXPIRED, and_(live, col(Grant.expires_at) <= now))
    if status in LIVE:
        return and_(stored == status, col(Grant.expires_at) > now)
    return stored == status


@functools.cache
def _listing_query(owner: str, by_brand: bool, status: GrantStatus | None, after: bool) -> DriverQuery:
    """`Grants.listing`'s query for one shape of request (at most 2 x 2 x 5 x 2 of them), compiled
    once: the owner's grants (`owner`: the column, `brand_id` or `customer_id`), of one brand
    (`by_brand`), in one effective state (`status`), after a cursor (`after`), newest first."""
    created, ident = col(Grant.created_at), col(Grant.id)
    query = (
        sa_select(*_LISTED_COLUMNS)
        .select_from(Grant)
        .join(Brand, col(Brand.id) == col(Grant.brand_id))
        .join(Offer, col(Offer.id) == col(Grant.offer_id))
        .where(getattr(Grant, owner) == bindparam("owner", type_=Uuid()))
    )
    if by_brand:
        query = query.where(col(Grant.brand_id) == bindparam("brand_id", type_=Uuid()))
    if status is not None:
        query = query.where(_status_filter(status, bindparam("now", type_=UTCDateTime())))
    cursor = (
        (bindparam("after_at", type_=UTCDateTime()), bindparam("after_id", type_=Uuid())) if after else None
    )
    return DriverQuery(
        newest_first(query, created, ident, after=cursor, rows=bindparam("rows", type_=Integer()))
    )
