"""Intents: what a customer is looking for now (a move, a new baby, a car in three months), which
brands of that kind can answer with an offer without knowing who asked.

    customer publishes ──▶ brands with a listed offer in its category see it (handle, kind, horizon,
                           budget band; region and age band only if the customer shared them)
         │                        │
         │                        └──▶ each may answer once, with one of its listed offers there
         ▼
    customer compares the answers and accepts one in the directory (a customer-started grant): only
    that brand learns who, by its grant. Withdrawn or expired intents are deleted with their answers.

What a brand sees names nobody: the handle is random for each intent, so two intents of one customer
cannot be tied together or to the customer's grants, and the region and age band are the customer's
choice (coarse by construction: the vault derives them). The intent row holds no customer id, only a
keyed blind index (`owner`) by which the broker finds a customer's own intents.

Limits: a customer keeps at most `MAX_OPEN` intents open, each for 1 to 90 days; a brand answers at
most `MAX_ANSWERS_A_DAY` intents a day. Publishing, answering and withdrawing are audit entries without
personal data: `intent.published` and `intent.withdrawn` (nothing but the time and the actor),
`intent.answered` (the brand and its offer).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt
from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from broker.accounts.models import Brand
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.categories import OfferCategory
from broker.consent.models import DirectoryCategory, DirectoryListing, Offer
from broker.errors import Conflict, NotFound, TooManyAttempts, ValidationFailed
from broker.voice.models import Intent, IntentAnswer
from vault.blind_index import blind_token
from vault.profile import Vault

__all__ = ["CATEGORY_OF", "BudgetBand", "Horizon", "IntentIn", "IntentKind", "Intents"]

MAX_OPEN: Final = 5
MAX_ANSWERS_A_DAY: Final = 50


class IntentKind(StrEnum):
    """What the customer is looking for."""

    MOVING_HOME = "moving_home"
    NEW_BABY = "new_baby"
    NEW_CAR = "new_car"
    HOLIDAY = "holiday"
    INSURANCE = "insurance"
    HOME_IMPROVEMENT = "home_improvement"


CATEGORY_OF: Final = {
    IntentKind.MOVING_HOME: OfferCategory.HOME,
    IntentKind.NEW_BABY: OfferCategory.FAMILY,
    IntentKind.NEW_CAR: OfferCategory.MOTORING,
    IntentKind.HOLIDAY: OfferCategory.TRAVEL,
    IntentKind.INSURANCE: OfferCategory.INSURANCE,
    IntentKind.HOME_IMPROVEMENT: OfferCategory.HOME,
}
KIND_LABELS: Final = {
    IntentKind.MOVING_HOME: "Moving home",
    IntentKind.NEW_BABY: "A new baby",
    IntentKind.NEW_CAR: "Looking for a car",
    IntentKind.HOLIDAY: "Looking for a holiday",
    IntentKind.INSURANCE: "Looking for insurance",
    IntentKind.HOME_IMPROVEMENT: "Improving my home",
}


class Horizon(StrEnum):
    """When."""

    NOW = "within_a_month"
    SOON = "1_to_3_months"
    LATER = "3_to_6_months"
    THIS_YEAR = "6_to_12_months"


class BudgetBand(StrEnum):
    """Roughly how much, in the customer's own currency."""

    UNDER_500 = "under_500"
    UP_TO_2000 = "500_to_2000"
    UP_TO_10000 = "2000_to_10000"
    OVER_10000 = "over_10000"


class IntentIn(BaseModel):
    """An intent as the customer publishes it."""

    model_config = {"extra": "forbid"}

    kind: IntentKind
    horizon: Horizon
    budget_band: BudgetBand | None = None
    share_region: StrictBool = Field(default=False, description="show brands your region (from your profile)")
    share_age_band: StrictBool = Field(
        default=False, description="show brands your age band (from your profile)"
    )
    days: StrictInt = Field(default=30, ge=1, le=90, description="how long brands may see and answer it")
    only_brands: list[str] | None = Field(
        default=None,
        max_length=20,
        description="client ids of the only brands that may see it (among those of its category); null: all",
    )


@dataclass(frozen=True, slots=True)
class Intents:
    """Publish, show, answer and forget intents."""

    clock: Callable[[], datetime]
    vault: Vault
    audit: AuditLog
    blind_key: bytes

    def owner(self, customer_id: UUID) -> bytes:
        """The blind index a customer's intents carry."""
        return blind_token(self.blind_key, "intent-owner", str(customer_id))

    def publish(self, session: Session, customer_id: UUID, wanted: IntentIn) -> Intent:
        """Publish an intent for `wanted.days`; at most `MAX_OPEN` open at once."""
        now, owner = self.clock(), self.owner(customer_id)
        if len(self.mine(session, customer_id)) >= MAX_OPEN:
            raise TooManyAttempts(
                f"you have {MAX_OPEN} intents open already: withdraw one first", retry_after=3600
            )
        only = None
        if wanted.only_brands is not None:
            found = session.exec(
                select(Brand.id, Brand.client_id).where(col(Brand.client_id).in_(wanted.only_brands))
            )
            ids = dict(found.all())
            if len(ids) != len(set(wanted.only_brands)):
                raise ValidationFailed(
                    "only_brands: name brands by their client id",
                    errors=[{"pointer": "/only_brands", "detail": "an unknown client id"}],
                )
            only = sorted(str(brand_id) for brand_id in ids)
        if (wanted.share_region or wanted.share_age_band) and self.vault.is_held(session, customer_id):
            raise ValidationFailed.at(
                "/share_region" if wanted.share_region else "/share_age_band",
                "your profile is in your custody, so Consentry cannot read your region or age band to "
                "publish them: leave them out",
            )
        shared = self.vault.read(session, customer_id, ["region", "age_band"], omit_held=True)
        intent = Intent(
            handle="int_" + secrets.token_urlsafe(16),
            owner=owner,
            kind=wanted.kind.value,
            category=CATEGORY_OF[wanted.kind].value,
            horizon=wanted.horizon.value,
            budget_band=None if wanted.budget_band is None else wanted.budget_band.value,
            region=_text(shared.get("region")) if wanted.share_region else None,
            age_band=_text(shared.get("age_band")) if wanted.share_age_band else None,
            only_brands=only,
            created_at=now,
            expires_at=now + timedelta(days=wanted.days),
        )
        session.add(intent)
        self.audit.record(session, Kind.INTENT_PUBLISHED, actor=Actor.CUSTOMER)
        session.flush()
        return intent

    def mine(self, session: Session, customer_id: UUID) -> list[Intent]:
        """The customer's open intents, newest first."""
        query = select(Intent).where(
            col(Intent.owner) == self.owner(customer_id), col(Intent.expires_at) > self.clock()
        )
        return list(session.exec(query.order_by(col(Intent.created_at).desc(), col(Intent.id))))

    def one_of_mine(self, session: Session, customer_id: UUID, intent_id: UUID) -> Intent:
        """One of the customer's open intents; anyone else's is 404."""
        intent = session.get(Intent, intent_id)
        if intent is None or intent.owner != self.owner(customer_id) or intent.expires_at <= self.clock():
            raise NotFound(f"intent '{intent_id}' not found; list yours at /v1/me/intents")
        return intent

    def withdraw(self, session: Session, customer_id: UUID, intent_id: UUID) -> None:
        """Delete one of the customer's intents, with its answers."""
        session.delete(self.one_of_mine(session, customer_id, intent_id))
        self.audit.record(session, Kind.INTENT_WITHDRAWN, actor=Actor.CUSTOMER)

    def answers(self, session: Session, intent: Intent) -> list[UUID]:
        """The offers that answered the intent, oldest answer first."""
        query = select(IntentAnswer.offer_id).where(col(IntentAnswer.intent_id) == intent.id)
        return list(session.exec(query.order_by(col(IntentAnswer.created_at), col(IntentAnswer.id))))

    def visible_to(self, session: Session, brand_id: UUID, limit: int = 100) -> list[tuple[Intent, bool]]:
        """The open intents the brand may see (a listed offer of its in their category, and not kept
        from it), newest first, each with whether it answered."""
        categories = set(
            session.exec(
                select(DirectoryCategory.category)
                .join(DirectoryListing, col(DirectoryListing.offer_id) == col(DirectoryCategory.offer_id))
                .where(col(DirectoryListing.brand_id) == brand_id)
            )
        )
        if not categories:
            return []
        query = (
            select(Intent)
            .where(col(Intent.category).in_(categories), col(Intent.expires_at) > self.clock())
            .order_by(col(Intent.created_at).desc(), col(Intent.id))
        )
        seen = [i for i in session.exec(query) if i.only_brands is None or str(brand_id) in i.only_brands]
        seen = seen[:limit]
        answered = (
            set(
                session.exec(
                    select(IntentAnswer.intent_id).where(
                        col(IntentAnswer.brand_id) == brand_id,
                        col(IntentAnswer.intent_id).in_([i.id for i in seen]),
                    )
                )
            )
            if seen
            else set()
        )
        return [(intent, intent.id in answered) for intent in seen]

    def answer(self, session: Session, brand_id: UUID, handle: str, offer_id: UUID) -> IntentAnswer:
        """Answer an intent the brand may see with one of its listed offers of the intent's category."""
        now = self.clock()
        intent = session.exec(select(Intent).where(col(Intent.handle) == handle)).first()
        visible = {i.id for i, _ in self.visible_to(session, brand_id, limit=10_000)}
        if intent is None or intent.id not in visible:
            raise NotFound("no open intent with this handle that you may see")
        listed = session.exec(
            select(Offer.id)
            .join(DirectoryListing, col(DirectoryListing.offer_id) == col(Offer.id))
            .join(DirectoryCategory, col(DirectoryCategory.offer_id) == col(Offer.id))
            .where(
                col(Offer.id) == offer_id,
                col(Offer.brand_id) == brand_id,
                col(DirectoryCategory.category) == intent.category,
            )
        ).first()
        if listed is None:
            detail = f"answer with one of your listed offers in the category '{intent.category}'"
            raise ValidationFailed.at("/offer_id", detail)
        taken = select(IntentAnswer.id).where(
            col(IntentAnswer.intent_id) == intent.id, col(IntentAnswer.brand_id) == brand_id
        )
        if session.exec(taken).first() is not None:
            raise Conflict("you answered this intent already: one answer per brand")
        today = session.exec(
            select(func.count()).where(
                col(IntentAnswer.brand_id) == brand_id, col(IntentAnswer.created_at) > now - timedelta(days=1)
            )
        ).one()
        if today >= MAX_ANSWERS_A_DAY:
            raise TooManyAttempts(f"at most {MAX_ANSWERS_A_DAY} answers a day", retry_after=3600)
        answer = IntentAnswer(intent_id=intent.id, brand_id=brand_id, offer_id=offer_id, created_at=now)
        session.add(answer)
        self.audit.record(session, Kind.INTENT_ANSWERED, actor=Actor.BRAND, brand_id=brand_id, offer=offer_id)
        session.flush()
        return answer

    def prune(self, session: Session, *, limit: int) -> int:
        """Delete up to `limit` expired intents (their answers with them); how many went."""
        expired = list(
            session.exec(select(Intent.id).where(col(Intent.expires_at) <= self.clock()).limit(limit))
        )
        if expired:
            session.exec(delete(Intent).where(col(Intent.id).in_(expired)))
        return len(expired)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
