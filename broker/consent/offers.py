"""Offers: which profile fields a brand asks for, why, for how long, and what it gives back.

An offer version never changes. Revising publishes version n+1 in the same lineage and supersedes the
active one; grants keep the version the customer agreed to. Withdrawing ends the lineage: no new
authorizations, while existing grants run their course.

    active ──revise──▶ superseded     (version n+1 becomes the active one)
      └─────withdraw──▶ withdrawn     (the lineage's end; its older versions stay superseded)

A version published with `listed` enters the customers' directory (`broker.consent.directory`) and
leaves it in the transaction that supersedes or withdraws it. `offer.listed` is logged when a listed
version enters, `offer.unlisted` when a lineage leaves the directory (reason `unlisted`: its new
version is not listed; `withdrawn`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select, update

from broker.accounts.models import Brand
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent import directory
from broker.consent.models import Offer, OfferStatus
from broker.consent.offer_schemas import OfferDraft
from broker.errors import Conflict, NotFound, OfferSuperseded, OfferWithdrawn, ValidationFailed
from broker.pagination import Page, page

__all__ = ["Offers"]


def _columns(draft: OfferDraft) -> dict[str, Any]:
    # JSON mode: the amount is stored as its exact decimal string, never a float.
    value = draft.value.model_dump(mode="json", exclude_none=True)
    return {**draft.model_dump(mode="json", exclude={"value"}), "value": value}


def _withdrawn(offer: Offer, offer_id: UUID, advice: str) -> OfferWithdrawn:
    on = (offer.withdrawn_at or offer.created_at).date().isoformat()
    return OfferWithdrawn(f"offer '{offer_id}' was withdrawn on {on}; {advice}")


@dataclass(frozen=True, slots=True)
class Offers:
    """Offer operations over a session the caller commits, each recorded in the audit log."""

    clock: Callable[[], datetime]
    audit: AuditLog

    def create(self, session: Session, brand: Brand, draft: OfferDraft) -> Offer:
        """Publish version 1 of a new offer; its id is also its lineage id."""
        offer_id = uuid4()
        return self._add(session, brand, draft, id=offer_id, lineage_id=offer_id)

    def get(self, session: Session, brand: Brand, offer_id: UUID) -> Offer:
        """One of this brand's offer versions; another brand's or an unknown id is NotFound alike."""
        return self._owned(session, brand.id, offer_id)

    def list(
        self,
        session: Session,
        brand: Brand,
        *,
        status: OfferStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Offer]:
        """This brand's offer versions, optionally of one status, newest first, keyset-paginated."""
        query = select(Offer).where(Offer.brand_id == brand.id)
        if status is not None:
            query = query.where(Offer.status == status)
        return page(session, query, Offer.created_at, Offer.id, cursor=cursor, limit=limit)

    def revise(self, session: Session, brand: Brand, offer_id: UUID, draft: OfferDraft) -> Offer:
        """Publish `draft` as version n+1 and supersede version n, which `offer_id` must name.

        Conflict `offer-withdrawn` for a withdrawn offer, `offer-superseded` (naming the latest) for old ones.
        """
        offer = self._owned(session, brand.id, offer_id)
        latest = self._latest(session, offer.lineage_id)
        if latest.status == OfferStatus.WITHDRAWN:
            raise _withdrawn(latest, offer_id, "publish a new offer instead")
        if latest.id != offer.id:
            raise OfferSuperseded(
                f"offer '{offer_id}' is version {offer.version}, replaced by version {latest.version}; "
                f"revise the latest version '{latest.id}'",
                latest_id=str(latest.id),
            )
        self._retire(session, latest, OfferStatus.SUPERSEDED)
        if directory.leave(session, latest.id) and not draft.listed:
            self._unlisted(session, brand, latest, "unlisted")
        return self._add(
            session,
            brand,
            draft,
            previous=latest.id,
            lineage_id=latest.lineage_id,
            version=latest.version + 1,
        )

    def withdraw(self, session: Session, brand: Brand, offer_id: UUID) -> Offer:
        """Withdraw the offer (any of its version ids); returns its withdrawn version. Idempotent."""
        latest = self._latest(session, self._owned(session, brand.id, offer_id).lineage_id)
        if latest.status != OfferStatus.WITHDRAWN:
            self._retire(session, latest, OfferStatus.WITHDRAWN)
            self.audit.record(
                session, Kind.OFFER_WITHDRAWN, actor=Actor.BRAND, brand_id=brand.id, offer=latest.id
            )
            if directory.leave(session, latest.id):
                self._unlisted(session, brand, latest, "withdrawn")
        return latest

    def listed(self, session: Session, offer_id: UUID) -> Offer:
        """The listed active version `offer_id` names, for a customer in the directory. A superseded
        version whose newest is listed is Conflict `offer-superseded` (naming it), a withdrawn offer
        `offer-withdrawn`; anything else (unknown, never listed, unlisted) is NotFound."""
        offer = session.get(Offer, offer_id)
        if offer is not None:
            latest = self._latest(session, offer.lineage_id)
            if latest.status == OfferStatus.WITHDRAWN and offer.listed:
                raise _withdrawn(latest, offer_id, "browse the directory for a current offer")
            if latest.listed and latest.status == OfferStatus.ACTIVE:
                if latest.id == offer.id:
                    return offer
                raise OfferSuperseded(
                    f"offer '{offer_id}' changed: version {latest.version} replaced it; read it before "
                    f"accepting '{latest.id}'",
                    latest_id=str(latest.id),
                )
        raise NotFound(f"offer '{offer_id}' is not in the directory; browse it again for current offers")

    def _unlisted(self, session: Session, brand: Brand, offer: Offer, reason: str) -> None:
        self.audit.record(
            session, Kind.OFFER_UNLISTED, actor=Actor.BRAND, brand_id=brand.id, offer=offer.id, reason=reason
        )

    def current_for_authorization(self, session: Session, brand_id: UUID, offer_id: UUID) -> Offer:
        """The newest active version of the offer any of whose version ids is given, for a new authorization.

        Withdrawn is Conflict `offer-withdrawn`; an unknown id or another brand's offer is NotFound.
        """
        latest = self._latest(session, self._owned(session, brand_id, offer_id).lineage_id)
        if latest.status != OfferStatus.ACTIVE:
            raise _withdrawn(latest, offer_id, "ask the brand for a current offer")
        return latest

    def latest(self, session: Session, offer: Offer) -> Offer:
        """The newest version of `offer`'s lineage (itself when it is the newest)."""
        return self._latest(session, offer.lineage_id)

    def _owned(self, session: Session, brand_id: UUID, offer_id: UUID) -> Offer:
        offer = session.get(Offer, offer_id)
        if offer is None or offer.brand_id != brand_id:  # never reveal that another brand's offer exists
            raise NotFound(f"offer '{offer_id}' not found")
        return offer

    def _latest(self, session: Session, lineage_id: UUID) -> Offer:
        query = select(Offer).where(Offer.lineage_id == lineage_id).order_by(col(Offer.version).desc())
        latest = session.exec(query.limit(1)).first()
        assert latest is not None  # the lineage holds at least the version that led here
        return latest

    def _add(
        self,
        session: Session,
        brand: Brand,
        draft: OfferDraft,
        *,
        previous: UUID | None = None,
        **lineage: Any,
    ) -> Offer:
        if draft.listed and brand.public:
            detail = (
                "a public client cannot list offers: a grant started in the directory reaches the brand as "
                "a ticket that only a client with credentials can exchange; list from a confidential client"
            )
            raise ValidationFailed(detail, errors=[{"pointer": "/listed", "detail": detail}])
        offer = Offer(brand_id=brand.id, created_at=self.clock(), **lineage, **_columns(draft))
        session.add(offer)
        session.flush()
        self.audit.record(
            session,
            Kind.OFFER_PUBLISHED,
            actor=Actor.BRAND,
            brand_id=brand.id,
            offer=offer.id,
            fields=[*offer.required_fields, *offer.optional_fields],
            purpose=offer.purpose,
            supersedes=previous,
        )
        if offer.listed:
            directory.enter(session, offer)
            self.audit.record(
                session, Kind.OFFER_LISTED, actor=Actor.BRAND, brand_id=brand.id, offer=offer.id
            )
        return offer

    def _retire(self, session: Session, offer: Offer, status: OfferStatus) -> None:
        # Compare-and-set: of two concurrent revisions (or a revision and a withdrawal) of one active
        # version, the second finds it no longer active and stops instead of forking the lineage.
        withdrawn_at = self.clock() if status == OfferStatus.WITHDRAWN else None
        result = session.exec(
            update(Offer)
            .where(col(Offer.id) == offer.id, col(Offer.status) == OfferStatus.ACTIVE)
            .values(status=status, withdrawn_at=withdrawn_at)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise Conflict(f"offer '{offer.id}' was changed at the same time; fetch it again and retry")
        # The row already holds these values: record them on the object without another UPDATE.
        set_committed_value(offer, "status", status)
        set_committed_value(offer, "withdrawn_at", withdrawn_at)
