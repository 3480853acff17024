"""Feedback that counts: a customer rates a brand after a delivery they confirmed, or after their grant
ended, and the ratings join the brand's track record.

One rating per occasion: each confirmed delivery (an obligation of the grant in state `confirmed`)
and the grant's end (revoked or expired). A rating is 1 to 5, with optional words. The words are
sealed in the customer's vault (so they go when the account goes) and reach the brand only if the
customer ticks `share_text_with_brand`. The brand sees its ratings without names or grants, each dated
by day only (a time would tie a rating to the delivery it followed).

Aggregates (`RatingRecord`) are shown only from `MIN_RATINGS` ratings on: below that, a single
customer's rating would be easy to tell, and a mean of two says little. Each rating is a
`feedback.given` audit entry (brand, subject, grant; never the rating or the words).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Final, NoReturn
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt
from sqlalchemy import func
from sqlmodel import Session, col, select

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import effective_status
from broker.consent.models import Grant, GrantStatus
from broker.errors import Conflict, ValidationFailed
from broker.pagination import Page, page
from broker.value.models import Obligation, ObligationStatus
from broker.voice.models import BrandRating
from vault.profile import Vault

__all__ = ["MIN_RATINGS", "NO_RATINGS", "Feedback", "Occasion", "RatingIn", "RatingRecord", "rating_records"]

MIN_RATINGS: Final = 5
MAX_WORDS: Final = 2000  # characters


class Occasion(StrEnum):
    """What a rating follows."""

    DELIVERY = "delivery"  # a delivery of the declared value the customer confirmed
    GRANT_END = "grant_end"  # the grant ended (revoked or expired)


class RatingIn(BaseModel):
    """A rating of the grant's brand."""

    model_config = {"extra": "forbid"}

    occasion: Occasion
    obligation_id: UUID | None = Field(default=None, description="for a delivery: the obligation it settled")
    rating: StrictInt = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    text: str | None = Field(default=None, max_length=MAX_WORDS, description="your words, sealed")
    share_text_with_brand: StrictBool = Field(
        default=False, description="let the brand read your words (it always sees the rating, unnamed)"
    )


class RatingRecord(BaseModel):
    """A brand's ratings, as the directory and the consent screen show them."""

    model_config = {"frozen": True}

    ratings: int
    average: str | None = Field(description=f"the mean to one decimal; null below {MIN_RATINGS} ratings")

    def words(self) -> str:
        """In plain words, e.g. 'rated 4.2 of 5 by 12 customers'."""
        if self.average is not None:
            return f"rated {self.average} of 5 by {self.ratings} customers"
        if self.ratings:
            plural = "s" if self.ratings > 1 else ""
            return f"{self.ratings} rating{plural} so far (the mean shows from {MIN_RATINGS})"
        return "no ratings yet"


NO_RATINGS: Final = RatingRecord(ratings=0, average=None)


@dataclass(frozen=True, slots=True)
class Feedback:
    """Take ratings; list them for their brand."""

    clock: Callable[[], datetime]
    vault: Vault
    audit: AuditLog

    def rate(self, session: Session, grant: Grant, rating: RatingIn) -> BrandRating:
        """Record the customer's rating of the grant's brand (the caller checked the grant is theirs)."""
        now = self.clock()
        key = self._occasion(session, grant, rating, now)
        taken = select(BrandRating.id).where(
            col(BrandRating.grant_id) == grant.id, col(BrandRating.occasion_key) == key
        )
        if session.exec(taken).first() is not None:
            raise Conflict(f"you already rated this {_WORDS[rating.occasion]}: one rating each")
        words = (rating.text or "").strip()
        row = BrandRating(
            grant_id=grant.id,
            brand_id=grant.brand_id,
            occasion_key=key,
            rating=rating.rating,
            has_text=bool(words),
            share_text=bool(words) and rating.share_text_with_brand,
            created_at=now,
            created_on=now.date(),
        )
        session.add(row)
        session.flush()  # the unique index settles a race: the loser's transaction fails
        if words:
            self.vault.put_secret(session, grant.customer_id, f"feedback:{row.id}", words)
        self.audit.record(
            session,
            Kind.FEEDBACK_GIVEN,
            actor=Actor.CUSTOMER,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
        )
        return row

    def _occasion(self, session: Session, grant: Grant, rating: RatingIn, now: datetime) -> str:
        if rating.occasion is Occasion.GRANT_END:
            if rating.obligation_id is not None:
                _refuse("/obligation_id", "leave obligation_id out when rating the end of the grant")
            if effective_status(grant, now) not in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
                raise Conflict("this grant has not ended: rate it once it has, or rate a confirmed delivery")
            return "end"
        if rating.obligation_id is None:
            _refuse("/obligation_id", "name the obligation whose delivery you confirmed")
        obligation = session.get(Obligation, rating.obligation_id)
        if obligation is None or obligation.grant_id != grant.id:
            _refuse("/obligation_id", "no such obligation under this grant")
        if obligation.status is not ObligationStatus.CONFIRMED:
            raise Conflict("confirm the delivery first (POST /v1/me/value/{id}/confirm), then rate it")
        return f"delivery:{obligation.id}"

    def words(self, session: Session, customer_id: UUID, rows: Iterable[BrandRating]) -> dict[UUID, str]:
        """The words of these ratings of one customer's, opened from their vault."""
        labels = {f"feedback:{row.id}": row.id for row in rows if row.has_text}
        opened = self.vault.secrets(session, customer_id, labels) if labels else {}
        return {labels[label]: text for label, text in opened.items()}

    def for_brand(
        self, session: Session, brand_id: UUID, *, cursor: str | None, limit: int
    ) -> Page[BrandRating]:
        """The brand's ratings, newest first."""
        query = select(BrandRating).where(col(BrandRating.brand_id) == brand_id)
        return page(session, query, BrandRating.created_at, BrandRating.id, cursor=cursor, limit=limit)

    def shared_words(self, session: Session, rows: Iterable[BrandRating]) -> dict[UUID, str]:
        """The words the customers chose to share, of these ratings (opened from each one's vault;
        gone with a deleted account)."""
        shared = [row for row in rows if row.share_text]
        owners = (
            dict(
                session.exec(
                    select(Grant.id, Grant.customer_id).where(
                        col(Grant.id).in_({row.grant_id for row in shared})
                    )
                ).all()
            )
            if shared
            else {}
        )
        found: dict[UUID, str] = {}
        for row in shared:
            customer_id = owners.get(row.grant_id)
            if customer_id is not None and self.vault.exists(session, customer_id):
                found.update(self.words(session, customer_id, [row]))
        return found

    def due(self, session: Session, grant: Grant) -> list[tuple[Occasion, UUID | None]]:
        """What the customer may rate now under the grant and has not: each confirmed delivery, and
        the end once the grant has ended."""
        rated = {row.occasion_key for row in self.of_grant(session, grant.id)}
        confirmed = session.exec(
            select(Obligation.id)
            .where(col(Obligation.grant_id) == grant.id, col(Obligation.status) == ObligationStatus.CONFIRMED)
            .order_by(col(Obligation.period))
        ).all()
        found: list[tuple[Occasion, UUID | None]] = [
            (Occasion.DELIVERY, obligation_id)
            for obligation_id in confirmed
            if f"delivery:{obligation_id}" not in rated
        ]
        ended = effective_status(grant, self.clock()) in (GrantStatus.REVOKED, GrantStatus.EXPIRED)
        if ended and "end" not in rated:
            found.append((Occasion.GRANT_END, None))
        return found

    def of_grant(self, session: Session, grant_id: UUID) -> list[BrandRating]:
        """The ratings given under a grant, oldest first."""
        query = select(BrandRating).where(col(BrandRating.grant_id) == grant_id)
        return list(session.exec(query.order_by(col(BrandRating.created_at))))


def rating_records(session: Session, brand_ids: Iterable[UUID]) -> dict[UUID, RatingRecord]:
    """Each brand's count of ratings, and their mean once there are `MIN_RATINGS`."""
    wanted = set(brand_ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(BrandRating.brand_id, func.count(), func.sum(BrandRating.rating))
        .where(col(BrandRating.brand_id).in_(wanted))
        .group_by(col(BrandRating.brand_id))
    ).all()
    found = {}
    for brand_id, count, total in rows:
        mean = (Decimal(int(total)) / Decimal(int(count))).quantize(Decimal("0.1"), ROUND_HALF_EVEN)
        found[brand_id] = RatingRecord(
            ratings=int(count), average=str(mean) if count >= MIN_RATINGS else None
        )
    return found


_WORDS = {Occasion.DELIVERY: "delivery", Occasion.GRANT_END: "grant's end"}


def _refuse(pointer: str, detail: str) -> NoReturn:
    raise ValidationFailed(detail, errors=[{"pointer": pointer, "detail": detail}])
