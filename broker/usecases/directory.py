"""The customer's side of the offer directory: browse, compare, and start a grant.

A page of the directory (`broker.consent.directory` finds the offers) shows each offer as the
customer would decide on it: the fields asked, with the customer's own current values of them (what
would go), the purposes, duration, retention, recipients, the declared value and its value per field
per month, and the brand's track record. The record is the auditors' figures, computed by the same
functions as their reports: delivering value on time and disputes upheld over the last 12 months
(`broker.value.record`, the value report's `record`), deletions attested on time and ends
acknowledged on time (`broker.consent.deletion_report`, the deletion report's counts). A brand with
none of these says so ("no history yet").

Comparing lays 2 to 4 offers side by side: a row per term, marked where the offers differ, and a few
sentences in plain words about the differences that matter.

A customer-started grant is made by `decide`, the consent screen's own decision, from the choices
the customer sends (optional fields, purposes, the special-category tick): the same rules, grant,
receipt, obligations, audit entries and webhook. The grant is marked as started in the directory,
which is what lets its brand take tokens for it by a token exchange (`broker.oauth.tickets`) and
decline it within `decline_window`, before any read.

Browsing and comparing write nothing: brands never learn who looked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from broker.accounts.brands import brand_names
from broker.accounts.models import Brand, Customer, keys_of_use
from broker.audit.entries import Actor
from broker.audit.group_commit import isolated
from broker.consent.deletion_report import DutyRecord, duty_records
from broker.consent.directory import (
    DirectoryFilters,
    DirectorySort,
    describe_value,
    search,
    value_per_field_month,
)
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantStatus, Offer
from broker.consent.offers import Offers
from broker.consent.purposes import PURPOSES, offered_purposes
from broker.consent.sealed import MAX_JWE, SealedCopies
from broker.errors import BrokerError, GrantsUnsealable, IllegalTransition, NotDeclinable, ValidationFailed
from broker.oauth.authorize import ConsentRequest
from broker.signals import StampedCache
from broker.usecases.consent_decision import Retry, decide, shown_value
from broker.value.record import NO_RECORD, TrackRecord, track_record
from broker.voice.feedback import NO_RATINGS, RatingRecord, rating_records
from vault.fields import CATALOGUE, JSONValue, Sensitivity
from vault.profile import Vault

__all__ = [
    "BrandRecord",
    "Comparison",
    "ComparisonRow",
    "Directory",
    "DirectoryOffer",
    "DirectoryPage",
    "FieldAsked",
    "StartGrant",
    "ValuePerField",
]

MIN_COMPARED, MAX_COMPARED = 2, 4
MAX_REMEMBERED_OFFERS = 20_000  # offer versions whose card a process keeps (about 4 KB each)

_RETRY_DETAILS = {
    Retry.EMAIL_UNCONFIRMED: (
        "/fields",
        "this offer requires your email address, which you have not confirmed yet: confirm it first",
    ),
    Retry.SPECIAL_CONSENT_MISSING: (
        "/special_category_consent",
        "sensitive fields need your explicit agreement: set special_category_consent to true, or leave "
        "those fields out",
    ),
    Retry.NO_PURPOSE: ("/purposes", "agree to at least one of the offer's purposes"),
    Retry.REQUIRED_UNPURPOSED: (
        "/purposes",
        "a field this offer requires is used only for a purpose you did not agree to: agree to that purpose",
    ),
}


class FieldAsked(BaseModel):
    """A field an offer asks for, and what of yours would go."""

    name: str
    title: str
    required: bool = Field(description="the offer cannot be accepted without it")
    special_category: bool = Field(description="sensitive data (GDPR art. 9): needs its own agreement")
    filled: bool = Field(description="you have a value for it (else nothing would go)")
    value: str | None = Field(description="your current value, as it would be shared; null if none")


class PurposeShown(BaseModel):
    """One purpose of an offer, in plain words."""

    purpose: str
    label: str
    explanation: str
    fields: list[str]


class ValuePerField(BaseModel):
    """The declared value per field asked and per month of access (a month is 30 days; a one-off value
    is spread over the grant's months, a monthly one taken as it is): exact, four decimal places."""

    amount: str = Field(description="exact decimal string, e.g. '0.5556'")
    scale: str = Field(description="what it is counted in: an ISO 4217 currency code, or 'points'")


class BrandRecord(BaseModel):
    """A brand's track record, the auditors' figures: value over the last 12 months, duties all time."""

    history: bool = Field(description="false: the brand has no history yet, so every count is 0")
    values_fell_due: int = Field(description="obligations that fell due in the last 12 months")
    values_on_time: int = Field(description="of those, delivered on time with no dispute upheld")
    values_on_time_percent: int | None
    disputes_upheld: int = Field(description="disputes an auditor upheld against the brand (12 months)")
    deletions_fell_due: int = Field(description="ended grants whose deletion fell due or was attested")
    deletions_on_time: int = Field(description="of those, deletions attested by their due date")
    ends_fell_due: int = Field(description="ended grants whose acknowledgement fell due or was made")
    ends_acknowledged_on_time: int = Field(description="of those, acknowledged within the window")
    ratings: int = Field(default=0, description="customers' ratings of the brand (1 to 5)")
    raters: int = Field(default=0, description="different customers who rated it")
    rating_average: str | None = Field(
        default=None, description="the ratings' mean to one decimal; null until 5 customers rated"
    )
    summary: str = Field(description="the record in plain words")


class DirectoryOffer(BaseModel):
    """A listed offer as a customer weighs it."""

    offer_id: UUID = Field(
        description="this version's id: accept it with POST /v1/directory/offers/{id}/grant"
    )
    lineage_id: UUID
    version: int
    brand_id: UUID
    brand: str
    title: str
    description: str
    fields: list[FieldAsked]
    purposes: list[PurposeShown]
    grant_duration_days: int
    retention_days: int
    recipients: list[str]
    value: dict[str, Any] = Field(description="the declared value, as the brand declared it")
    value_text: str = Field(description="the declared value in plain words")
    value_per_field_month: ValuePerField | None = Field(
        description="null for a service or a percentage discount: no amount to compare"
    )
    record: BrandRecord
    listed_at: datetime


class DirectoryPage(BaseModel):
    """A page of the directory; pass `next_cursor` back as `cursor` (with the same sort and filters)."""

    items: list[DirectoryOffer]
    next_cursor: str | None


class ComparisonRow(BaseModel):
    """One term of the compared offers, one cell per offer in their order."""

    term: str
    cells: list[str]
    differs: bool


class Comparison(BaseModel):
    """2 to 4 offers side by side: the offers, a row per term, and the differences in plain words."""

    offers: list[DirectoryOffer]
    rows: list[ComparisonRow]
    summary: list[str]


class SealedGrant(BaseModel):
    """A new grant's fields sealed to its brand by the customer's browser: one compact JWE per purpose."""

    model_config = {"extra": "forbid"}

    version: int = Field(ge=1, le=1, description="1: the grant's first sealed copy")
    copies: dict[
        Annotated[str, StringConstraints(max_length=64)],
        Annotated[str, StringConstraints(max_length=MAX_JWE)],
    ] = Field(min_length=1, max_length=16, description="{purpose: compact JWE}")


class StartGrant(BaseModel):
    """Accepting a listed offer from the directory: the choices of its consent screen."""

    model_config = {"extra": "forbid"}

    fields: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list,
        max_length=len(CATALOGUE),
        description="the optional fields you also share (required fields always go)",
    )
    purposes: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list,
        max_length=len(PURPOSES),
        description="for an offer of several purposes: each you agree to (at least one)",
    )
    special_category_consent: bool = Field(
        default=False, description="your explicit agreement to share the sensitive fields you share"
    )
    grant_id: UUID | None = Field(
        default=None,
        description="a profile in self-custody: the new grant's id, chosen by your browser (a random "
        "UUID, version 4), which the sealed copy names",
    )
    sealed: SealedGrant | None = Field(
        default=None,
        description="a profile in self-custody: the shared fields sealed to the brand by your browser "
        "(version 1; `/v1/me/custody` describes the sealing)",
    )


@dataclass(frozen=True, slots=True)
class Directory:
    """Browse, compare and accept listed offers.

    A brand's name and track record are kept in `records` (in this process, while no brand changed
    and for at most its `ttl`, 60 s in the runtime): a page of 20 offers would otherwise count 4
    aggregates over the ledgers and grants for every request, about half of its work, for figures
    that change by the day. An offer version's card is kept as long as the process lives (at most
    `MAX_REMEMBERED_OFFERS`): versions never change, so a page reads only the listing's ids and the
    customer's values."""

    clock: Callable[[], datetime]
    vault: Vault
    offers: Offers
    grants: Grants
    records: StampedCache[UUID, tuple[str, BrandRecord]]
    decline_window: timedelta = timedelta(hours=72)
    _remembered: dict[UUID, DirectoryOffer] = field(default_factory=dict, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def page(
        self,
        session: Session,
        customer_id: UUID,
        filters: DirectoryFilters,
        *,
        sort: DirectorySort,
        cursor: str | None,
        limit: int,
    ) -> DirectoryPage:
        """One page of listed offers, each shown with the customer's values and the brand's record."""
        found = self.anyones_page(session, filters, sort=sort, cursor=cursor, limit=limit)
        items = found.items
        held = bool(items) and self.vault.is_held(session, customer_id)
        if held:  # only brands that can receive sealed data
            sealable = self._sealable(session, {card.brand_id for card in items})
            items = [card for card in items if card.brand_id in sealable]
        valued = self._valued(session, customer_id, items, held=held)
        return DirectoryPage(items=valued, next_cursor=found.next_cursor)

    def _sealable(self, session: Session, brand_ids: set[UUID]) -> set[UUID]:
        """The brands among these that registered an encryption key (a self-custody grant is sealed to it)."""
        found = session.exec(select(Brand.id, Brand.jwks).where(col(Brand.id).in_(brand_ids)))
        return {brand_id for brand_id, jwks in found if keys_of_use(jwks, "enc") is not None}

    def anyones_page(
        self,
        session: Session,
        filters: DirectoryFilters,
        *,
        sort: DirectorySort,
        cursor: str | None,
        limit: int,
    ) -> DirectoryPage:
        """One page of listed offers as anyone sees it: each with its brand's name and record, none with
        a customer's values (no field filled)."""
        found = search(session, filters, sort=sort, cursor=cursor, limit=limit)
        cards = self._cards(session, found.items)
        shown = self._branded(session, [cards[i] for i in found.items if i in cards])
        return DirectoryPage(items=shown, next_cursor=found.next_cursor)

    def one(self, session: Session, customer_id: UUID, offer_id: UUID) -> DirectoryOffer:
        """One listed offer (its active version)."""
        return self._shown(session, customer_id, [self.offers.listed(session, offer_id)])[0]

    def still_listed(
        self, session: Session, customer_id: UUID, offer_ids: Sequence[UUID]
    ) -> list[DirectoryOffer]:
        """These offers as `one` shows them, leaving out those withdrawn or revised since (an intent's
        answers, say)."""
        shown = []
        for offer_id in offer_ids:
            try:
                shown.append(self.one(session, customer_id, offer_id))
            except BrokerError:
                continue
        return shown

    def compare(self, session: Session, customer_id: UUID, offer_ids: Sequence[UUID]) -> Comparison:
        """2 to 4 listed offers side by side."""
        ids = list(dict.fromkeys(offer_ids))
        if not MIN_COMPARED <= len(ids) <= MAX_COMPARED:
            detail = f"compare {MIN_COMPARED} to {MAX_COMPARED} different offers: name each with offer="
            raise ValidationFailed(detail, errors=[{"pointer": "/offer", "detail": detail}])
        shown = self._shown(session, customer_id, [self.offers.listed(session, i) for i in ids])
        return Comparison(offers=shown, rows=_rows(shown), summary=_summary(shown))

    def start(self, session: Session, customer: Customer, offer_id: UUID, choice: StartGrant) -> Grant:
        """Accept a listed offer: the grant the consent screen would make from the same choices."""
        offer = self.offers.listed(session, offer_id)
        offered = [*offer.required_fields, *offer.optional_fields]
        _check_choice(offer, choice)
        brand = brand_names(session, [offer.brand_id]).get(offer.brand_id, "")
        request = ConsentRequest(brand, offer, tuple(offered), (), "")
        form = {
            "decision": ["approve"],
            "fields": list(choice.fields),
            "purposes": list(choice.purposes),
            "special_consent": ["yes" if choice.special_category_consent else "no"],
        }
        verified = customer.email_verified_at is not None
        held = self.vault.is_held(session, customer.id)
        owner = session.get(Brand, offer.brand_id)
        if held and (owner is None or owner.encryption_jwks() is None):
            raise GrantsUnsealable(
                f"your profile is in your custody, and {brand} cannot receive data sealed to it (it "
                "registered no encryption key)"
            )
        if held and (choice.sealed is None or choice.grant_id is None or choice.grant_id.version != 4):
            raise ValidationFailed.at(
                "/sealed",
                "your profile is in your custody: give the grant_id your browser chose and the "
                "fields it sealed to the brand (sealed)",
            )
        if not held and (choice.sealed is not None or choice.grant_id is not None):
            raise ValidationFailed.at("/sealed", "only a profile in self-custody is sealed: leave sealed out")
        if held and choice.grant_id is not None and session.get(Grant, choice.grant_id) is not None:
            raise ValidationFailed.at("/grant_id", "that grant id is taken: choose another random one")
        try:
            with isolated(session):  # a twin submission took the browser's grant id a moment before
                decision = decide(
                    self.grants,
                    session,
                    request,
                    customer_id=customer.id,
                    form=form,
                    email_verified=verified,
                    decline_by=self.clock() + self.decline_window,
                    grant_id=choice.grant_id,
                )
        except IntegrityError:
            raise ValidationFailed.at(
                "/grant_id", "that grant id is taken: choose another random one"
            ) from None
        if decision.grant is None:
            pointer, detail = _RETRY_DETAILS[decision.retry or Retry.NO_CHOICE]
            raise ValidationFailed(detail, errors=[{"pointer": pointer, "detail": detail}])
        if held and choice.sealed is not None and owner is not None:
            sealed = SealedCopies(audit=self.grants.audit, clock=self.clock)
            sealed.store(session, decision.grant, owner, choice.sealed.copies, version=1, pointer="/sealed")
        return decision.grant

    def decline(self, session: Session, brand_id: UUID, grant_id: UUID) -> Grant:
        """The brand declines a grant a customer started in the directory: within the window, before
        any read. It ends (revoked by the brand, reason `declined-by-brand`) and nothing is owed.

        The grant's row is locked first, as a read locks it: a read that commits meanwhile has set
        `first_read_at` by the time the checks below look (else the decline would cancel what that
        read made owed)."""
        locked = select(Grant).where(col(Grant.id) == grant_id).with_for_update(of=Grant)
        session.exec(locked.execution_options(populate_existing=True)).first()
        grant = self.grants.for_brand(session, brand_id, grant_id)
        if not grant.started_in_directory or grant.decline_by is None:
            raise NotDeclinable(
                f"grant '{grant_id}' was not started in the directory: only those can be declined; "
                "revoke it instead (DELETE /v1/grants/{id})"
            )
        if grant.status in (GrantStatus.REVOKED, GrantStatus.EXPIRED):
            if grant.declined_at is not None:
                return grant  # declining twice is a no-op
            raise NotDeclinable(f"grant '{grant_id}' has already ended")
        now = self.clock()
        if now > grant.decline_by:
            until = grant.decline_by.isoformat()
            raise NotDeclinable(f"grant '{grant_id}' could be declined until {until}; revoke it instead")
        if grant.first_read_at is not None:
            raise NotDeclinable(
                f"grant '{grant_id}' was already read: revoke it instead, and deliver what is owed"
            )
        grant.declined_at = now
        return self.grants.revoke(session, grant, by=Actor.BRAND, reason="declined-by-brand")

    def ticketable(self, session: Session, brand_id: UUID, grant_id: UUID) -> Grant:
        """The brand's live grant, started in the directory, for a new grant ticket."""
        grant = self.grants.for_brand(session, brand_id, grant_id)
        if not grant.started_in_directory:
            raise IllegalTransition(
                f"grant '{grant_id}' was not started in the directory: its tokens come from its "
                "authorization code"
            )
        if effective_status(grant, self.clock()) is not GrantStatus.ACTIVE:
            raise IllegalTransition(f"grant '{grant_id}' is no longer active: no tokens for it")
        return grant

    def _shown(self, session: Session, customer_id: UUID, offers: Sequence[Offer]) -> list[DirectoryOffer]:
        return self._valued(session, customer_id, self._branded(session, [self._card(o) for o in offers]))

    def _card(self, offer: Offer) -> DirectoryOffer:
        """The offer version as anyone sees it (no values, no record yet), remembered: versions never
        change, so it is built once per process."""
        card = self._remembered.get(offer.id)
        if card is None:
            card = _offer(offer, "", _NO_HISTORY, {})
            with self._lock:
                if len(self._remembered) >= MAX_REMEMBERED_OFFERS:
                    self._remembered.clear()
                self._remembered[offer.id] = card
        return card

    def _cards(self, session: Session, offer_ids: Sequence[UUID]) -> dict[UUID, DirectoryOffer]:
        """The cards of these offer versions: remembered ones, the rest read in one query."""
        cards = {i: card for i in offer_ids if (card := self._remembered.get(i)) is not None}
        missing = [i for i in offer_ids if i not in cards]
        if missing:
            for offer in session.exec(select(Offer).where(col(Offer.id).in_(missing))):
                cards[offer.id] = self._card(offer)
        return cards

    def _branded(self, session: Session, cards: Sequence[DirectoryOffer]) -> list[DirectoryOffer]:
        """The cards with each brand's name and record."""
        brands = self._brands(session, {card.brand_id for card in cards}) if cards else {}
        return [
            card.model_copy(update={"brand": brands[card.brand_id][0], "record": brands[card.brand_id][1]})
            for card in cards
        ]

    def _valued(
        self,
        session: Session,
        customer_id: UUID,
        cards: Sequence[DirectoryOffer],
        *,
        held: bool | None = None,
    ) -> list[DirectoryOffer]:
        """The cards with this customer's values of their fields (what would go); `held`: whether the
        profile is in self-custody, if the caller asked already."""
        if not cards:
            return []
        if held is None:
            held = self.vault.is_held(session, customer_id)
        wanted = sorted({f.name for card in cards for f in card.fields})
        mine = self.vault.read(session, customer_id, wanted, omit_held=True)  # held: only the browser knows
        # In self-custody a held field's value is the browser's to show; that it is filled is not secret.
        filled = self.vault.filled(session, customer_id) if held else None
        return [
            card.model_copy(
                update={
                    "fields": [
                        f.model_copy(
                            update={
                                "filled": mine.get(f.name) is not None
                                if filled is None
                                else f.name in filled,
                                "value": shown_value(mine.get(f.name)),
                            }
                        )
                        for f in card.fields
                    ],
                }
            )
            for card in cards
        ]

    def _brands(self, session: Session, brand_ids: set[UUID]) -> dict[UUID, tuple[str, BrandRecord]]:
        """Each brand's name and record: the kept ones, the rest counted (and kept)."""
        stamp = self.records.stamp(session)  # as the transaction began: a brand changed since is not kept
        found = {b: kept for b in brand_ids if (kept := self.records.get(b, stamp)) is not None}
        missing = [brand_id for brand_id in brand_ids if brand_id not in found]
        if missing:
            now, names = self.clock(), brand_names(session, missing)
            values, duties = track_record(session, missing, now), duty_records(session, missing, now)
            rated = rating_records(session, missing)
            for brand_id in missing:
                name = names.get(brand_id, "")
                record = _record(values.get(brand_id), duties.get(brand_id), rated.get(brand_id), name)
                found[brand_id] = (name, record)
                self.records.put(brand_id, found[brand_id], stamp)
        return found


_NO_HISTORY = BrandRecord(
    history=False, values_fell_due=0, values_on_time=0, values_on_time_percent=None, disputes_upheld=0,
    deletions_fell_due=0, deletions_on_time=0, ends_fell_due=0, ends_acknowledged_on_time=0, summary="",
)  # fmt: skip


def _check_choice(offer: Offer, choice: StartGrant) -> None:
    errors = []
    if any(name not in offer.optional_fields for name in choice.fields):  # never echo what was sent
        shown = ", ".join(offer.optional_fields) if offer.optional_fields else "none (all are required)"
        errors.append(
            {"pointer": "/fields", "detail": f"this offer's optional fields to choose from: {shown}"}
        )
    declared = [str(item["purpose"]) for item in offer.purposes or []]
    if any(slug not in declared for slug in choice.purposes):
        shown = ", ".join(declared) if declared else "none (it has one purpose)"
        errors.append({"pointer": "/purposes", "detail": f"this offer's purposes to agree to: {shown}"})
    if errors:
        raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)


def _offer(offer: Offer, brand: str, record: BrandRecord, mine: dict[str, JSONValue]) -> DirectoryOffer:
    names = [*offer.required_fields, *offer.optional_fields]
    normalised = value_per_field_month(offer.value, len(names), offer.grant_duration_days)
    declared = offered_purposes(offer.purpose, offer.purpose_explanation, names, offer.purposes)
    return DirectoryOffer(
        offer_id=offer.id,
        lineage_id=offer.lineage_id,
        version=offer.version,
        brand_id=offer.brand_id,
        brand=brand,
        title=offer.title,
        description=offer.description,
        fields=[
            FieldAsked(
                name=name,
                title=CATALOGUE[name].title,
                required=name in offer.required_fields,
                special_category=CATALOGUE[name].sensitivity is Sensitivity.SPECIAL_CATEGORY,
                filled=mine.get(name) is not None,
                value=shown_value(mine.get(name)),
            )
            for name in names
        ],
        purposes=[
            PurposeShown(
                purpose=str(item["purpose"]),
                label=PURPOSES[str(item["purpose"])].label,
                explanation=str(item["explanation"]),
                fields=[str(name) for name in item["fields"]],
            )
            for item in declared
        ],
        grant_duration_days=offer.grant_duration_days,
        retention_days=offer.retention_days,
        recipients=list(offer.recipients),
        value=dict(offer.value),
        value_text=describe_value(offer.value),
        value_per_field_month=(
            ValuePerField(amount=format(normalised.amount, "f"), scale=normalised.scale)
            if normalised
            else None
        ),
        record=record,
        listed_at=offer.created_at,
    )


def _record(
    value: TrackRecord | None, duty: DutyRecord | None, rated: RatingRecord | None, brand: str
) -> BrandRecord:
    value = value or NO_RECORD
    duty = duty or DutyRecord(0, 0, 0, 0)
    rated = rated or NO_RATINGS
    history = any(
        (value.fell_due, value.disputes_upheld, duty.deletions_fell_due, duty.ends_fell_due, rated.ratings)
    )
    if not history:
        summary = f"{brand} has no history yet: nothing it owed, deleted or acknowledged has fallen due."
    else:
        parts = [
            f"{value.on_time} of {value.fell_due} values delivered on time in the last 12 months"
            if value.fell_due
            else "no value has fallen due in the last 12 months",
            f"{value.disputes_upheld} dispute{'' if value.disputes_upheld == 1 else 's'} upheld against it",
            f"{duty.deletions_on_time} of {duty.deletions_fell_due} deletions attested on time",
            f"{duty.ends_acknowledged_on_time} of {duty.ends_fell_due} ends acknowledged on time",
            rated.words(),
        ]
        summary = f"{brand}: " + "; ".join(parts) + "."
    return BrandRecord(
        history=history,
        values_fell_due=value.fell_due,
        values_on_time=value.on_time,
        values_on_time_percent=value.on_time_percent,
        disputes_upheld=value.disputes_upheld,
        deletions_fell_due=duty.deletions_fell_due,
        deletions_on_time=duty.deletions_on_time,
        ends_fell_due=duty.ends_fell_due,
        ends_acknowledged_on_time=duty.ends_acknowledged_on_time,
        ratings=rated.ratings,
        raters=rated.raters,
        rating_average=rated.average,
        summary=summary,
    )


def _names(offers: Sequence[DirectoryOffer]) -> list[str]:
    """What to call each offer in the summary: its brand, or brand and title when a brand is twice."""
    brands = [offer.brand for offer in offers]
    titled = [f"{o.brand} ({o.title})" for o in offers]
    return [
        o.brand
        if brands.count(o.brand) == 1
        else titled[i]
        if titled.count(titled[i]) == 1
        else f"{o.brand} (offer {i + 1})"
        for i, o in enumerate(offers)
    ]


def _listing(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _days(count: int) -> str:
    return f"{count} day{'' if count == 1 else 's'}"


def _per_field(offer: DirectoryOffer) -> str:
    v = offer.value_per_field_month
    return "not an amount" if v is None else f"{v.amount} {v.scale}"


def _rows(offers: Sequence[DirectoryOffer]) -> list[ComparisonRow]:
    def row(term: str, cells: list[str]) -> ComparisonRow:
        return ComparisonRow(term=term, cells=cells, differs=len(set(cells)) > 1)

    rows = [
        row("Brand", [o.brand for o in offers]),
        row("Value", [o.value_text for o in offers]),
        row("Value per field per month", [_per_field(o) for o in offers]),
    ]
    every = list(dict.fromkeys(f.name for o in offers for f in o.fields))
    for name in every:
        cells = []
        for offer in offers:
            asked = next((f for f in offer.fields if f.name == name), None)
            cells.append("not asked" if asked is None else "required" if asked.required else "optional")
        rows.append(row(f"Asks for: {CATALOGUE[name].title}", cells))
    rows += [
        row("Purposes", ["; ".join(p.label for p in o.purposes) for o in offers]),
        row("Access lasts", [_days(o.grant_duration_days) for o in offers]),
        row("Kept after the grant ends", [_days(o.retention_days) for o in offers]),
        row("Shared with", [", ".join(o.recipients) or "nobody else" for o in offers]),
        row("Track record", [o.record.summary.split(": ", 1)[-1] for o in offers]),
    ]
    return rows


def _summary(offers: Sequence[DirectoryOffer]) -> list[str]:
    names = _names(offers)
    lines = []
    every = list(dict.fromkeys(f.name for o in offers for f in o.fields))
    for name in every:
        asks = [any(f.name == name for f in o.fields) for o in offers]
        asking = [n for n, a in zip(names, asks, strict=True) if a]
        if len(asking) < len(offers):
            others = [n for n, a in zip(names, asks, strict=True) if not a]
            verb = "asks" if len(asking) == 1 else "ask"
            not_verb = "does" if len(others) == 1 else "do"
            title = CATALOGUE[name].title.lower()
            lines.append(f"{_listing(asking)} {verb} for your {title}; {_listing(others)} {not_verb} not.")
    for attribute, sentence in (
        ("retention_days", "{long} keeps your data {diff} longer after the grant ends than {short}."),
        ("grant_duration_days", "{long} asks for access {diff} longer than {short}."),
    ):
        spans = [getattr(o, attribute) for o in offers]
        if max(spans) != min(spans):
            long = names[spans.index(max(spans))]
            short = names[spans.index(min(spans))]
            lines.append(sentence.format(long=long, short=short, diff=_days(max(spans) - min(spans))))
    sharing = [(n, o) for n, o in zip(names, offers, strict=True) if o.recipients]
    if sharing and len(sharing) < len(offers):
        for n, o in sharing:
            lines.append(f"{n} shares your data with {', '.join(o.recipients)}; the others with nobody else.")
    comparable = [(n, o, v) for n, o in zip(names, offers, strict=True) if (v := o.value_per_field_month)]
    if len({v.scale for _, _, v in comparable}) == 1 and len(comparable) >= 2:
        ranked = sorted(comparable, key=lambda item: Decimal(item[2].amount), reverse=True)
        (best, best_offer, most), (worst, worst_offer, least) = ranked[0], ranked[-1]
        if most != least:
            lines.append(
                f"{best} gives the most back per field per month ({_per_field(best_offer)}); "
                f"{worst} the least ({_per_field(worst_offer)})."
            )
    elif len(comparable) >= 2:
        lines.append("Their values are counted in different currencies or points: compare them yourself.")
    for n, o in zip(names, offers, strict=True):
        if not o.record.history:
            lines.append(f"{n} has no history yet.")
        elif o.record.disputes_upheld:
            lines.append(
                f"{n} had {o.record.disputes_upheld} dispute(s) upheld against it in the last 12 months."
            )
    if not lines:
        lines.append("These offers ask for the same terms.")
    return lines
