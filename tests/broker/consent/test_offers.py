"""Offers: what a draft may say, immutable versions, withdrawal, and keyset pages of them."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import Session, col, update
from support.core import FakeClock

from broker.accounts.models import Brand
from broker.consent.models import Offer, OfferStatus
from broker.consent.offer_schemas import DeclaredValue, OfferDraft, OfferPublic
from broker.consent.offers import Offers
from broker.consent.purposes import DPV, PURPOSES, describe_purpose
from broker.errors import Conflict, NotFound, ValidationFailed
from broker.pagination import decode_cursor, encode_cursor
from broker.runtime import Runtime
from broker.web.problems import render_broker_error, validation_to_broker

VOUCHER: dict[str, Any] = {
    "kind": "voucher", "amount": "10.00", "currency": "EUR", "description": "10 EUR off your next box",
    "due": {"when": "within_days", "days": 7},
}  # fmt: skip
OFFER: dict[str, Any] = {
    "title": "Weekly recipes for you",
    "description": "We tailor our weekly recipe box to your diet and household.",
    "required_fields": ["email", "dietary"],
    "optional_fields": ["household_size", "age_band"],
    "purpose": "personalised_offers",
    "purpose_explanation": "We pick recipes that fit what you eat and how many you cook for.",
    "grant_duration_days": 180,
    "retention_days": 30,
    "recipients": [],
    "value": VOUCHER,
}


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def body(**changes: Any) -> dict[str, Any]:
    """The offer's JSON with some keys changed; None removes a key."""
    return _changed(OFFER, changes)


def valued(**changes: Any) -> dict[str, Any]:
    """The offer's JSON with some keys of its value changed; None removes a key."""
    return body(value=_changed(VOUCHER, changes))


def draft(**changes: Any) -> OfferDraft:
    return OfferDraft.model_validate(body(**changes))


def problems(body: dict[str, Any]) -> dict[str, str]:
    """The problem+json `errors` the API answers for this body, as pointer → detail."""
    with pytest.raises(ValidationError) as caught:
        OfferDraft.model_validate(body)
    response = render_broker_error(validation_to_broker(RequestValidationError(caught.value.errors())))
    assert response.status_code == 422
    return {e["pointer"]: e["detail"] for e in json.loads(bytes(response.body))["errors"]}


def make_brand(db: Session, clock: FakeClock, name: str = "Grocer") -> Brand:
    brand = Brand(
        client_id=f"brd_{uuid4().hex[:12]}",
        name=name,
        redirect_uris=["https://grocer.example/cb"],
        scopes=["offers:write"],
        created_at=clock(),
    )
    db.add(brand)
    db.flush()
    return brand


@pytest.fixture
def offers(runtime: Runtime) -> Offers:
    return runtime.offers


@pytest.fixture
def brand(db: Session, clock: FakeClock) -> Brand:
    return make_brand(db, clock)


# --- what a draft may say ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        VOUCHER,
        {**VOUCHER, "kind": "cash", "amount": 5, "currency": "gbp", "due": {"when": "before_first_read"}},
        {**VOUCHER, "kind": "discount", "amount": "12.5", "unit": "percent", "currency": None},
        {**VOUCHER, "kind": "discount", "amount": 3.5, "unit": "money", "currency": "USD"},
        {**VOUCHER, "kind": "points", "amount": "500", "currency": None, "due": {"when": "monthly"}},
        {"kind": "service", "description": "Free delivery on every box", "due": {"when": "monthly"}},
        {**VOUCHER, "amount": "1000000.00", "due": {"when": "within_days", "days": 365}},
    ],
)
def test_each_kind_of_value_is_accepted_when_complete(value: dict[str, Any]) -> None:
    value = _changed(value, {})
    parsed = draft(value=value).value
    assert parsed.kind == value["kind"]
    assert parsed.currency is None or parsed.currency == parsed.currency.upper()


def test_text_is_stripped_and_the_amount_serialises_as_an_exact_string() -> None:
    offer = draft(
        title="  Weekly recipes  ", recipients=[" Courier Ltd "], value={**VOUCHER, "amount": 19.99}
    )
    assert offer.title == "Weekly recipes" and offer.recipients == ["Courier Ltd"]
    assert offer.value.amount == Decimal("19.99")
    assert offer.model_dump(mode="json")["value"]["amount"] == "19.99"


# fmt: off
BROKEN = [
    (body(title=""), "/title", "at least 1 character"),
    (body(title="   "), "/title", "at least 1 character"),
    (body(title="x" * 121), "/title", "at most 120"),
    (body(title="Weekly\x07recipes"), "/title", "control characters"),
    (body(description="line one\nline two"), "/description", "line breaks"),
    (body(description="x" * 2001), "/description", "at most 2000"),
    (body(purpose_explanation=""), "/purpose_explanation", "at least 1"),
    (body(purpose_explanation="x" * 1001), "/purpose_explanation", "at most 1000"),
    (body(required_fields=["email", "shoe_size"]), "/required_fields/1", "unknown field 'shoe_size'"),
    (body(required_fields=["email", "email"]), "/required_fields", "'email' more than once"),
    (body(optional_fields=["email"]), "/optional_fields", "email already required"),
    (body(required_fields=[], optional_fields=[]), "/required_fields", "at least one field"),
    (body(required_fields=None), "/required_fields", "required"),
    (body(purpose="profit"), "/purpose", "choose from: personalised_offers, service_provision"),
    (body(grant_duration_days=0), "/grant_duration_days", "greater than or equal to 1"),
    (body(grant_duration_days=367), "/grant_duration_days", "less than or equal to 366"),
    (body(grant_duration_days="30"), "/grant_duration_days", "valid integer"),
    (body(retention_days=-1), "/retention_days", "greater than or equal to 0"),
    (body(retention_days=3651), "/retention_days", "less than or equal to 3650"),
    (body(recipients=[f"Partner {i}" for i in range(21)]), "/recipients", "at most 20"),
    (body(recipients=["x" * 201]), "/recipients/0", "at most 200"),
    (body(recipients=["Courier", "Courier"]), "/recipients", "more than once"),
    (body(recipients=None), "/recipients", "required"),
    (body(colour="green"), "/colour", "unknown field 'colour'"),
    (valued(currency=None), "/value/currency", "voucher needs an ISO 4217 currency such as EUR"),
    (valued(kind="cash", currency=None), "/value/currency", "cash needs an ISO 4217 currency such as EUR"),
    (valued(currency="EURO"), "/value/currency", "ISO 4217 code such as EUR"),
    (valued(currency="XYZ"), "/value/currency", "ISO 4217 code such as EUR"),
    (valued(amount=None), "/value/amount", "voucher needs an amount"),
    (valued(amount="0"), "/value/amount", "above 0"),
    (valued(amount="-5"), "/value/amount", "above 0"),
    (valued(amount="1000000.01"), "/value/amount", "at most 1000000"),
    (valued(amount="10.001"), "/value/amount", "at most 2 decimals"),
    (valued(amount="ten"), "/value/amount", "amount must be a number"),
    (valued(amount="NaN"), "/value/amount", "amount must be a number"),
    (valued(amount=True), "/value/amount", "amount must be a number"),
    (valued(unit="money"), "/value/unit", "unit is only for a discount, not voucher"),
    (valued(kind="discount"), "/value/unit", "a discount needs a unit: percent or money"),
    (valued(kind="discount", unit="percent", amount="101", currency=None), "/value/amount", "at most 100"),
    (valued(kind="discount", unit="percent", amount="10"), "/value/currency", "no currency for a percent"),
    (valued(kind="discount", unit="money", currency=None), "/value/currency", "a money discount needs"),
    (valued(kind="points", amount="10.5", currency=None), "/value/amount", "points must be a whole number"),
    (valued(kind="points", amount="100"), "/value/currency", "no currency for points"),
    (valued(kind="service", currency=None), "/value/amount", "a service has no amount"),
    (valued(kind="service", amount=None), "/value/currency", "no currency for a service"),
    (valued(kind="gift"), "/value/kind", "'voucher', 'discount', 'points', 'service' or 'cash'"),
    (valued(description=" "), "/value/description", "at least 1"),
    (valued(description="x" * 501), "/value/description", "at most 500"),
    (valued(colour="green"), "/value/colour", "unknown field 'colour'"),
    (valued(due={"when": "within_days"}), "/value/due/days", "within_days needs days"),
    (valued(due={"when": "within_days", "days": 366}), "/value/due/days", "less than or equal to 365"),
    (valued(due={"when": "monthly", "days": 30}), "/value/due/days", "only to within_days, not monthly"),
    (valued(due={"when": "someday"}), "/value/due/when", "'before_first_read', 'within_days' or 'monthly'"),
]
# fmt: on


@pytest.mark.parametrize(("broken", "pointer", "fragment"), BROKEN)
def test_a_broken_rule_is_reported_at_its_pointer_with_what_is_allowed(
    broken: dict[str, Any], pointer: str, fragment: str
) -> None:
    found = problems(broken)
    assert pointer in found, found
    assert fragment in found[pointer]


def test_every_broken_value_rule_is_reported_at_once() -> None:
    found = problems(valued(kind="points", amount="2.5", currency="EUR", unit="percent"))
    assert set(found) == {"/value/amount", "/value/currency", "/value/unit"}


# --- publishing and reading ----------------------------------------------------------------------------


def test_publishing_creates_version_one_of_a_new_lineage(db: Session, offers: Offers, brand: Brand) -> None:
    offer = offers.create(db, brand, draft())
    assert (offer.version, offer.status, offer.lineage_id, offer.brand_id) == (
        1,
        OfferStatus.ACTIVE,
        offer.id,
        brand.id,
    )
    public = OfferPublic.from_offer(offer)
    assert public.scopes == ["profile:email", "profile:dietary", "profile:household_size", "profile:age_band"]
    assert public.purpose_iri == "https://w3id.org/dpv#PersonalisedAdvertising"
    assert public.withdrawn_at is None


def test_amounts_keep_exact_decimals_through_the_database(db: Session, offers: Offers, brand: Brand) -> None:
    for amount, stored in [("0.10", "0.10"), (19.99, "19.99"), ("999999.99", "999999.99"), ("1E+3", "1000")]:
        offer = offers.create(db, brand, draft(value={**VOUCHER, "amount": amount}))
        db.expire(offer)
        assert offer.value["amount"] == stored
        public = OfferPublic.from_offer(offer)
        assert public.value.amount == Decimal(stored)
        assert public.model_dump(mode="json")["value"]["amount"] == stored


def test_a_brand_reads_its_own_offer(db: Session, offers: Offers, brand: Brand) -> None:
    offer = offers.create(db, brand, draft())
    assert offers.get(db, brand, offer.id) is offer


@pytest.mark.parametrize("whose", ["another brand's", "nobody's"])
def test_another_brands_offer_or_an_unknown_id_is_not_found_alike(
    db: Session, clock: FakeClock, offers: Offers, brand: Brand, whose: str
) -> None:
    rival = make_brand(db, clock, "Rival Foods")
    offer_id = offers.create(db, rival, draft()).id if whose == "another brand's" else uuid4()
    with pytest.raises(NotFound) as caught:
        offers.get(db, brand, offer_id)
    assert caught.value.detail == f"offer '{offer_id}' not found"
    with pytest.raises(NotFound):
        offers.current_for_authorization(db, brand.id, offer_id)


def test_listing_pages_newest_first_without_gaps_or_duplicates(
    db: Session, clock: FakeClock, offers: Offers, brand: Brand
) -> None:
    made = []
    for i in range(5):
        made.append(offers.create(db, brand, draft(title=f"Offer {i}")))
        if i != 2:  # offers 2 and 3 share a timestamp, split across pages: the id breaks the tie
            clock.advance(minutes=1)
    offers.create(db, make_brand(db, clock, "Rival Foods"), draft(title="Not yours"))
    seen, cursor, sizes = [], None, []
    while True:
        result = offers.list(db, brand, cursor=cursor, limit=2)
        seen += result.items
        sizes.append(len(result.items))
        if (cursor := result.next_cursor) is None:
            break
    assert sizes == [2, 2, 1]
    assert [o.id for o in seen] == [
        o.id for o in sorted(made, key=lambda o: (o.created_at, o.id), reverse=True)
    ]


def test_listing_filters_by_status(db: Session, offers: Offers, brand: Brand) -> None:
    first = offers.create(db, brand, draft())
    second = offers.revise(db, brand, first.id, draft(title="Better recipes"))
    other = offers.create(db, brand, draft(title="Other"))
    offers.withdraw(db, brand, other.id)
    by_status = {s: [o.id for o in offers.list(db, brand, status=s, limit=10).items] for s in OfferStatus}
    assert by_status == {
        OfferStatus.ACTIVE: [second.id],
        OfferStatus.SUPERSEDED: [first.id],
        OfferStatus.WITHDRAWN: [other.id],
    }


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!",
        "bm90IGpzb24",  # "not json"
        _b64("{}"),
        _b64('["2026-11-23T09:00:00+00:00"]'),
        _b64('["yesterday", "6f1c1f2e-1111-4c3b-9a55-2f1e9d7d1a00"]'),
        _b64('["2026-11-23T09:00:00", "6f1c1f2e-1111-4c3b-9a55-2f1e9d7d1a00"]'),  # no time zone
        _b64('["2026-11-23T09:00:00+00:00", "not-a-uuid"]'),
    ],
)
def test_a_garbage_cursor_is_refused_at_the_cursor_pointer(
    db: Session, offers: Offers, brand: Brand, cursor: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        offers.list(db, brand, cursor=cursor, limit=2)
    assert caught.value.extensions["errors"][0]["pointer"] == "/cursor"


@pytest.mark.parametrize("limit", [0, 201])
def test_a_limit_outside_1_to_200_is_refused(db: Session, offers: Offers, brand: Brand, limit: int) -> None:
    with pytest.raises(ValidationFailed) as caught:
        offers.list(db, brand, limit=limit)
    assert caught.value.extensions["errors"][0]["pointer"] == "/limit"


def test_a_cursor_round_trips_its_timestamp_and_id(clock: FakeClock) -> None:
    offer_id = uuid4()
    cursor = encode_cursor(clock(), offer_id)
    assert "=" not in cursor and decode_cursor(cursor) == (clock(), offer_id)


# --- versions and withdrawal ---------------------------------------------------------------------------


def test_revising_publishes_the_next_version_and_supersedes_the_old(
    db: Session, clock: FakeClock, offers: Offers, brand: Brand
) -> None:
    first = offers.create(db, brand, draft())
    clock.advance(days=1)
    second = offers.revise(db, brand, first.id, draft(title="Better recipes", grant_duration_days=90))
    assert (second.version, second.lineage_id, second.status) == (2, first.id, OfferStatus.ACTIVE)
    assert second.id != first.id and second.created_at == clock()
    db.expire_all()
    old = offers.get(db, brand, first.id)
    assert old.status is OfferStatus.SUPERSEDED
    assert (old.title, old.grant_duration_days) == ("Weekly recipes for you", 180)


def test_revising_an_old_version_points_at_the_latest(db: Session, offers: Offers, brand: Brand) -> None:
    first = offers.create(db, brand, draft())
    second = offers.revise(db, brand, first.id, draft(title="v2"))
    with pytest.raises(Conflict) as caught:
        offers.revise(db, brand, first.id, draft(title="v2 again"))
    assert caught.value.slug == "offer-superseded"
    assert f"revise the latest version '{second.id}'" in caught.value.detail


def test_a_concurrent_revision_of_the_same_version_loses_with_a_conflict(
    db: Session, offers: Offers, brand: Brand
) -> None:
    offer = offers.create(db, brand, draft())
    # Another transaction supersedes it behind this session's back; the object here still says active.
    db.exec(
        update(Offer)
        .where(col(Offer.id) == offer.id)
        .values(status=OfferStatus.SUPERSEDED)
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(Conflict, match="changed at the same time"):
        offers.revise(db, brand, offer.id, draft(title="v2"))


def test_withdrawing_marks_the_active_version_and_again_changes_nothing(
    db: Session, clock: FakeClock, offers: Offers, brand: Brand
) -> None:
    first = offers.create(db, brand, draft())
    second = offers.revise(db, brand, first.id, draft(title="v2"))
    withdrawn = offers.withdraw(db, brand, first.id)  # any version id names the offer
    assert withdrawn.id == second.id
    assert (withdrawn.status, withdrawn.withdrawn_at) == (OfferStatus.WITHDRAWN, clock())
    clock.advance(days=3)
    again = offers.withdraw(db, brand, second.id)
    assert (again.id, again.withdrawn_at) == (second.id, withdrawn.withdrawn_at)
    db.expire_all()
    assert offers.get(db, brand, first.id).status is OfferStatus.SUPERSEDED


def test_revising_a_withdrawn_offer_is_a_conflict(db: Session, offers: Offers, brand: Brand) -> None:
    offer = offers.create(db, brand, draft())
    offers.withdraw(db, brand, offer.id)
    with pytest.raises(Conflict) as caught:
        offers.revise(db, brand, offer.id, draft(title="v2"))
    assert caught.value.slug == "offer-withdrawn"


def test_authorization_follows_any_version_to_the_newest(db: Session, offers: Offers, brand: Brand) -> None:
    first = offers.create(db, brand, draft())
    second = offers.revise(db, brand, first.id, draft(title="v2"))
    third = offers.revise(db, brand, second.id, draft(title="v3"))
    for version in (first, second, third):
        assert offers.current_for_authorization(db, brand.id, version.id).id == third.id


def test_authorization_refuses_a_withdrawn_offer_saying_when(
    db: Session, clock: FakeClock, offers: Offers, brand: Brand
) -> None:
    offer = offers.create(db, brand, draft())
    offers.withdraw(db, brand, offer.id)
    with pytest.raises(Conflict) as caught:
        offers.current_for_authorization(db, brand.id, offer.id)
    assert caught.value.slug == "offer-withdrawn"
    assert caught.value.detail == (
        f"offer '{offer.id}' was withdrawn on {clock().date().isoformat()}; ask the brand for a current offer"
    )


# --- purposes ----------------------------------------------------------------------------------------


def test_every_purpose_is_a_dpv_term_with_words_for_customers() -> None:
    assert {
        "personalised_offers", "service_provision", "marketing", "direct_marketing", "research",
        "customer_care", "fraud_prevention", "improve_service",
    } <= set(PURPOSES)  # fmt: skip
    for slug, purpose in PURPOSES.items():
        assert purpose.slug == slug and purpose.iri.startswith(DPV) and purpose.iri[len(DPV) :].isalpha()
        assert purpose.label and purpose.description.endswith(".")
    assert describe_purpose("research").iri == "https://w3id.org/dpv#ResearchAndDevelopment"
    with pytest.raises(ValidationFailed, match="choose one of: personalised_offers"):
        describe_purpose("profit")


def test_a_declared_value_reads_back_from_its_stored_form() -> None:
    value = DeclaredValue.model_validate(VOUCHER)
    stored = value.model_dump(mode="json", exclude_none=True)
    assert stored == VOUCHER
    assert DeclaredValue.model_validate(stored) == value
