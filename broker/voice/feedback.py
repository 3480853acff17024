"""Feedback that counts: a customer rates a brand after a delivery they confirmed, or after their grant
ended, and the ratings join the brand's track record.

One rating per occasion: each confirmed delivery (an obligation of the grant in state `confirmed`)
and the grant's end (revoked or expired). A rating is 1 to 5, with optional words. The words are
sealed in the customer's vault (so they go when the account goes) and reach the brand only if the
customer ticks `share_text_with_brand`. The brand sees its ratings without names or grants, each dated
by day only (a time would tie a rating to the delivery it followed).

Aggregates (`RatingRecord`) show the mean only once `MIN_RATERS` different customers rated (counted
by a keyed blind index of customer and brand): below that, a single customer's rating would be easy to
tell, and one customer rating many times cannot make a mean alone. Each rating is a `feedback.given`
audit entry in the customer's own log only: naming the brand, subject or grant would let the brand
match ratings to grants in its access log. For the same reason a rating keeps its day, not its time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Final
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt
from sqlalchemy import func, tuple_
from sqlmodel import Session, col, select

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import effective_status
from broker.consent.models import Grant, GrantStatus
from broker.errors import Conflict, ValidationFailed
from broker.pagination import CURSOR_ERRORS, Page, check_limit, cursor_refused, pack, unpack
from broker.value.models import Obligation, ObligationStatus
from broker.voice.models import BrandRating
from vault.blind_index import blind_token
from vault.profile import Vault

__all__ = ["MIN_RATERS", "NO_RATINGS", "Feedback", "Occasion", "RatingIn", "RatingRecord", "rating_records"]

MIN_RATERS: Final = 5
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
    raters: int = Field(description="different customers who rated")
    average: str | None = Field(description=f"the mean to one decimal; null below {MIN_RATERS} raters")

    def words(self) -> str:
        """In plain words, e.g. 'rated 4.2 of 5 (14 ratings from 12 customers)'."""
        if self.average is not None:
            return f"rated {self.average} of 5 ({self.ratings} ratings from {self.raters} customers)"
        if self.ratings:
            plural = "s" if self.ratings > 1 else ""
            return f"{self.ratings} rating{plural} so far (the mean shows once {MIN_RATERS} customers rated)"
        return "no ratings yet"


NO_RATINGS: Final = RatingRecord(ratings=0, raters=0, average=None)


@dataclass(frozen=True, slots=True)
class Feedback:
    """Take ratings; list them for their brand."""

    clock: Callable[[], datetime]
    vault: Vault
    audit: AuditLog
    blind_key: bytes

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
            rater=blind_token(self.blind_key, "rater", f"{grant.customer_id}:{grant.brand_id}"),
            occasion_key=key,
            rating=rating.rating,
            has_text=bool(words),
            share_text=bool(words) and rating.share_text_with_brand,
            created_on=now.date(),
        )
        session.add(row)
        session.flush()  # the unique index settles a race: the loser's transaction fails
        if words:
            self.vault.put_secret(session, grant.customer_id, f"feedback:{row.id}", words)
        # The customer's own entry: naming the brand, the subject or the grant would show the brand,
        # in its access log, who gave which rating.
        self.audit.record(session, Kind.FEEDBACK_GIVEN, actor=Actor.CUSTOMER, customer_id=grant.customer_id)
        return row

    def _occasion(self, session: Session, grant: Grant, rating: RatingIn, now: datetime) -> str:
        if rating.occasion is Occasion.GRANT_END:
            if rating.obligation_id is not None:
                raise ValidationFailed.at(
                    "/obligation_id", "leave obligation_id out when rating the end of the grant"
                )
            if effective_status(grant, now) not in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
                raise Conflict("this grant has not ended: rate it once it has, or rate a confirmed delivery")
            return "end"
        if rating.obligation_id is None:
            raise ValidationFailed.at("/obligation_id", "name the obligation whose delivery you confirmed")
        obligation = session.get(Obligation, rating.obligation_id)
        if obligation is None or obligation.grant_id != grant.id:
            raise ValidationFailed.at("/obligation_id", "no such obligation under this grant")
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
        """The brand's ratings, newest day first, in random order within a day (their ids): nothing in
        the order or the cursor tells when in the day a rating came."""
        check_limit(limit)
        query = select(BrandRating).where(col(BrandRating.brand_id) == brand_id)
        if cursor is not None:
            try:
                day, ident = unpack(cursor)
                after = (date.fromisoformat(day), UUID(ident))
            except CURSOR_ERRORS:
                raise cursor_refused() from None
            query = query.where(tuple_(col(BrandRating.created_on), col(BrandRating.id)) < after)
        newest = query.order_by(col(BrandRating.created_on).desc(), col(BrandRating.id).desc())
        rows = list(session.exec(newest.limit(limit + 1)))
        items = rows[:limit]
        if len(rows) <= limit:
            return Page(items=items, next_cursor=None)
        return Page(items=items, next_cursor=pack([items[-1].created_on.isoformat(), str(items[-1].id)]))

    def shared_words(self, session: Session, rows: Iterable[BrandRating]) -> dict[UUID, str]:
        """The words the customers chose to share, of these ratings (opened from each one's vault, one
        customer at a time; gone with a deleted account)."""
        shared = [row for row in rows if row.share_text]
        if not shared:
            return {}
        owners = dict(
            session.exec(
                select(Grant.id, Grant.customer_id).where(col(Grant.id).in_({row.grant_id for row in shared}))
            ).all()
        )
        by_owner: dict[UUID, list[BrandRating]] = {}
        for row in shared:
            if (owner := owners.get(row.grant_id)) is not None:
                by_owner.setdefault(owner, []).append(row)
        found: dict[UUID, str] = {}
        for owner, theirs in by_owner.items():
            if self.vault.exists(session, owner):
                found.update(self.words(session, owner, theirs))
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
        return list(session.exec(query.order_by(col(BrandRating.created_on), col(BrandRating.occasion_key))))


def rating_records(session: Session, brand_ids: Iterable[UUID]) -> dict[UUID, RatingRecord]:
    """Each brand's ratings and distinct raters, and the mean of the ratings once `MIN_RATERS`
    different customers gave them (one customer rating many times cannot make a mean alone)."""
    wanted = set(brand_ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(
            BrandRating.brand_id,
            func.count(),
            func.count(func.distinct(BrandRating.rater)),
            func.sum(BrandRating.rating),
        )
        .where(col(BrandRating.brand_id).in_(wanted))
        .group_by(col(BrandRating.brand_id))
    ).all()
    found = {}
    for brand_id, count, raters, total in rows:
        mean = (Decimal(int(total)) / Decimal(int(count))).quantize(Decimal("0.1"), ROUND_HALF_EVEN)
        shown = str(mean) if raters >= MIN_RATERS else None
        found[brand_id] = RatingRecord(ratings=int(count), raters=int(raters), average=shown)
    return found


_WORDS = {Occasion.DELIVERY: "delivery", Occasion.GRANT_END: "grant's end"}
