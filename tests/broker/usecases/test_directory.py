"""The offer directory over HTTP: brands list offers, customers browse (filters, sorts, keyset pages),
weigh each offer (their own values, value per field per month, the brand's track record) and compare
2 to 4; listing and unlisting are audit entries, browsing leaves none."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select
from support.core import FakeClock, bearer, log_in
from support.oauth import OFFER, BrandCredentials, brand_token, portal_login, publish_offer
from support.problems import assert_problem
from support.value import Brand, logged

from broker.audit.models import AuditEntry
from broker.consent.directory import value_per_field_month
from broker.consent.offer_schemas import OfferDraft
from broker.errors import ValidationFailed
from broker.oauth.clients import register_brand
from broker.runtime import Runtime

VALUE = OFFER["value"]
POINTS = {"kind": "points", "amount": "500", "description": "points", "due": {"when": "monthly"}}
MONEY_OFF = {"kind": "discount", "unit": "money", "amount": "5.00", "currency": "EUR", "description": "off",
             "due": {"when": "monthly"}}  # fmt: skip
SERVICE = {"kind": "service", "description": "a free tasting", "due": {"when": "monthly"}}


def listed(client: TestClient, brand: BrandCredentials, **changes: Any) -> dict[str, Any]:
    return publish_offer(client, brand_token(client, brand), listed=True, **changes)


def browse(client: TestClient, customer: str, **params: Any) -> Any:
    return client.get("/v1/directory/offers", params=params, headers=bearer(customer))


def ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["offer_id"] for item in answer.json()["items"]]


def every_page(client: TestClient, customer: str, **params: Any) -> list[str]:
    found, cursor = [], None
    for _ in range(50):
        page = browse(client, customer, **params, **({"cursor": cursor} if cursor else {}))
        found += ids(page)
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the pages never ended")


def test_only_listed_active_versions_are_in_the_directory_and_they_leave_at_once(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    token = brand_token(client, brand)
    quiet = publish_offer(client, token)
    assert quiet["listed"] is False
    shown = listed(client, brand)
    assert ids(browse(client, customer)) == [shown["id"]], "an unlisted offer stays out"

    revised = client.put(f"/v1/offers/{shown['id']}", json={**OFFER, "listed": True}, headers=bearer(token))
    assert revised.status_code == 201
    assert ids(browse(client, customer)) == [revised.json()["id"]], "the new version replaces the old"
    stale = client.get(f"/v1/directory/offers/{shown['id']}", headers=bearer(customer))
    assert_problem(stale, 409, "offer-superseded")
    assert stale.json()["latest_id"] == revised.json()["id"]

    unlisted = client.put(f"/v1/offers/{revised.json()['id']}", json=OFFER, headers=bearer(token))
    assert ids(browse(client, customer)) == []
    relisted = client.put(
        f"/v1/offers/{unlisted.json()['id']}", json={**OFFER, "listed": True}, headers=bearer(token)
    )
    assert ids(browse(client, customer)) == [relisted.json()["id"]]
    assert client.delete(f"/v1/offers/{relisted.json()['id']}", headers=bearer(token)).status_code == 200
    assert ids(browse(client, customer)) == [], "a withdrawn offer leaves at once"
    path = f"/v1/directory/offers/{relisted.json()['id']}/grant"
    gone = client.post(path, json={}, headers=bearer(customer))
    assert_problem(gone, 409, "offer-withdrawn")
    never = client.get(f"/v1/directory/offers/{quiet['id']}", headers=bearer(customer))
    assert_problem(never, 404, "not-found")

    entries = [(e["kind"], e.get("offer"), e.get("reason")) for e in logged(db, "offer.")]
    listing = [entry for entry in entries if entry[0] in ("offer.listed", "offer.unlisted")]
    assert listing == [
        ("offer.listed", shown["id"], None),
        ("offer.listed", revised.json()["id"], None),
        ("offer.unlisted", revised.json()["id"], "unlisted"),
        ("offer.listed", relisted.json()["id"], None),
        ("offer.unlisted", relisted.json()["id"], "withdrawn"),
    ]
    for entry in logged(db, "offer.listed"):
        assert set(entry) <= {"v", "kind", "at", "actor", "brand", "offer", "request_id"}


def test_browsing_and_comparing_leave_no_trace(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    first, second = listed(client, brand), listed(client, brand, retention_days=90)
    before = db.exec(select(func.count()).select_from(AuditEntry)).one()
    assert browse(client, customer).status_code == 200
    assert client.get(f"/v1/directory/offers/{first['id']}", headers=bearer(customer)).status_code == 200
    compared = client.get(
        "/v1/directory/compare", params={"offer": [first["id"], second["id"]]}, headers=bearer(customer)
    )
    assert compared.status_code == 200
    db.expire_all()
    assert db.exec(select(func.count()).select_from(AuditEntry)).one() == before


def test_the_directory_needs_a_customer(client: TestClient, brand: BrandCredentials) -> None:
    listed(client, brand)
    assert_problem(client.get("/v1/directory/offers"), 401, "unauthenticated")
    as_brand = client.get("/v1/directory/offers", headers=bearer(brand_token(client, brand)))
    assert_problem(as_brand, 401, "unauthenticated")


def test_each_offer_shows_the_customers_values_and_plain_terms(
    client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    offer = listed(client, brand, optional_fields=["household_size", "postcode"])
    item = browse(client, customer).json()["items"][0]
    by_name = {f["name"]: f for f in item["fields"]}
    assert by_name["dietary"] == {
        "name": "dietary", "title": by_name["dietary"]["title"], "required": True, "special_category": True,
        "filled": True, "value": "vegan, nut_allergy",
    }  # fmt: skip
    assert by_name["household_size"]["value"] == "3" and not by_name["household_size"]["required"]
    assert by_name["postcode"] == {**by_name["postcode"], "filled": False, "value": None}
    assert item["offer_id"] == offer["id"] and item["brand"] == "Green Grocer"
    assert item["value_text"] == "10.00 EUR voucher: 10 EUR off your next box (within 7 days)"
    # 10.00 EUR once, over 180 days (6 months), for 4 fields: 10 / 6 / 4
    assert item["value_per_field_month"] == {"amount": "0.4167", "scale": "EUR"}
    assert [p["purpose"] for p in item["purposes"]] == ["personalised_offers"]
    assert item["record"]["history"] is False
    assert item["record"]["summary"].startswith("Green Grocer has no history yet")


@pytest.mark.parametrize(
    ("value", "fields", "days", "expected"),
    [
        ({**VALUE, "amount": "10.00"}, 3, 90, ("1.1111", "EUR")),  # 10 / 3 months / 3 fields
        ({**VALUE, "amount": "9.99", "currency": "GBP"}, 1, 366, ("0.8189", "GBP")),
        ({**VALUE, "amount": "1000000.00"}, 1, 1, ("30000000.0000", "EUR")),
        ({**POINTS, "amount": "100"}, 4, 30, ("25.0000", "points")),
        ({**MONEY_OFF, "due": {"when": "before_first_read"}}, 2, 60, ("1.2500", "EUR")),
        ({**MONEY_OFF, "unit": "percent", "amount": "15", "currency": None}, 2, 60, None),
        (SERVICE, 2, 60, None),
    ],
)  # fmt: skip
def test_value_per_field_per_month(
    value: dict[str, Any], fields: int, days: int, expected: tuple[str, str] | None
) -> None:
    normalised = value_per_field_month(value, fields, days)
    if expected is None:
        assert normalised is None
        return
    assert normalised is not None
    assert isinstance(normalised.amount, Decimal)
    assert (format(normalised.amount, "f"), normalised.scale) == expected


@settings(max_examples=200, deadline=None)
@given(
    cents=st.integers(min_value=1, max_value=100_000_000),
    fields=st.integers(min_value=1, max_value=30),
    days=st.integers(min_value=1, max_value=366),
    monthly=st.booleans(),
)
def test_value_per_field_per_month_is_exact_decimal_arithmetic(
    cents: int, fields: int, days: int, monthly: bool
) -> None:
    amount = Decimal(cents) / 100
    due = {"when": "monthly"} if monthly else {"when": "within_days", "days": 7}
    value = {"kind": "cash", "amount": format(amount, "f"), "currency": "EUR", "description": "c", "due": due}
    normalised = value_per_field_month(value, fields, days)
    assert normalised is not None
    exact = Fraction(cents, 100) / fields * (1 if monthly else Fraction(30, days))
    # the exact rational, rounded half-even to four places: no float anywhere
    scaled = exact * 10_000
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest > scaled.denominator or (2 * rest == scaled.denominator and whole % 2 == 1):
        whole += 1
    assert normalised.amount == Decimal(whole).scaleb(-4)
    assert normalised.amount == normalised.amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


@pytest.fixture
def spread(client: TestClient, brand: BrandCredentials, rival: BrandCredentials) -> dict[str, dict[str, Any]]:
    """Seven listed offers of two brands that differ in every filtered and sorted term."""
    money, gbp = {**VALUE, "amount": "12.00"}, {**VALUE, "currency": "GBP"}
    return {
        "a": listed(client, brand),  # 10 EUR, 5 fields, 180 days, 30 days kept
        "b": listed(client, brand, required_fields=["email"], optional_fields=[], value=money,
                    retention_days=0),
        "c": listed(client, rival, value=gbp, grant_duration_days=30, recipients=["Courier Ltd"]),
        "d": listed(client, rival, value=POINTS, retention_days=365),
        "e": listed(client, brand, value=SERVICE, purpose="improve_service",
                    recipients=["Courier Ltd", "Bank plc"]),
        "f": listed(client, rival, required_fields=["email", "postcode"], optional_fields=["given_name"],
                    value={**VALUE, "amount": "2.00"}, grant_duration_days=90),
        "g": listed(client, brand, required_fields=["postcode"], optional_fields=[], value=money,
                    retention_days=0, grant_duration_days=60),
    }  # fmt: skip


def test_filters(client: TestClient, customer: str, spread: dict[str, dict[str, Any]]) -> None:
    name = {offer["id"]: key for key, offer in spread.items()}

    def found(**params: Any) -> set[str]:
        return {name[i] for i in every_page(client, customer, limit=2, **params)}

    assert found() == set(spread)
    assert found(purpose="improve_service") == {"e"}
    assert found(value_kind=["points", "service"]) == {"d", "e"}
    assert found(currency="GBP") == {"c"}
    assert found(currency="points") == {"d"}
    assert found(fields=["email"]) == {"b"}, "offers you could accept sharing your email alone"
    assert found(fields=["email", "dietary"]) == {"a", "b", "c", "d", "e"}
    assert found(fields=["email", "postcode"]) == {"b", "f", "g"}
    assert found(max_duration_days=60) == {"c", "g"}
    assert found(max_retention_days=0) == {"b", "g"}
    assert found(max_recipients=0) == {"a", "b", "d", "f", "g"}
    assert found(max_recipients=0, max_retention_days=0, currency="EUR") == {"b", "g"}
    for bad, pointer in (
        ({"purpose": "surveillance"}, "/purpose"),
        ({"fields": ["shoe_size"]}, "/fields"),
        ({"value_kind": ["gold"]}, None),
        ({"currency": "euro"}, None),
        ({"max_retention_days": -1}, None),
        ({"sort": "cheapest"}, None),
        ({"limit": 101}, None),
    ):
        assert_problem(browse(client, customer, **bad), 422, "validation", pointer)


def test_sorts_page_through_in_order_with_keyset_cursors(
    client: TestClient, customer: str, spread: dict[str, dict[str, Any]]
) -> None:
    name = {offer["id"]: key for key, offer in spread.items()}
    expected = {
        "newest": ["g", "f", "e", "d", "c", "b", "a"],
        # EUR by value per field per month (b 12/6/1 = 2, g 12/2/1 = 6, a 10/6/5 = 0.3333, f 2/3/3 = 0.2222),
        # then GBP (c 10/1/5 = 2), then points (d 500/4 = 125), then the service
        "value": ["g", "b", "a", "f", "c", "d", "e"],
        "fewest_fields": ["b", "g", "f", "a", "c", "d", "e"],
        "shortest_retention": ["b", "g", "a", "c", "e", "f", "d"],
        "shortest_duration": ["c", "g", "f", "a", "b", "d", "e"],
    }
    for sort, order in expected.items():
        seen = [name[i] for i in every_page(client, customer, sort=sort, limit=2)]
        # ties (same key) come in offer id order: compare each tie group as a set, and the whole as a list
        assert sorted(seen) == sorted(order) and len(seen) == len(set(seen)), sort
        assert _groups(seen, sort, spread) == _groups(order, sort, spread), (sort, seen)


def _groups(order: list[str], sort: str, spread: dict[str, dict[str, Any]]) -> list[frozenset[str]]:
    key = {
        "newest": lambda o: o["created_at"],
        "value": lambda o: (o["value"].get("currency") or o["value"]["kind"], o["value"].get("amount")),
        "fewest_fields": lambda o: len(o["required_fields"]) + len(o["optional_fields"]),
        "shortest_retention": lambda o: o["retention_days"],
        "shortest_duration": lambda o: o["grant_duration_days"],
    }[sort]
    groups: list[frozenset[str]] = []
    for name in order:
        if groups and key(spread[name]) == key(spread[next(iter(groups[-1]))]):
            groups[-1] = groups[-1] | {name}
        else:
            groups.append(frozenset({name}))
    return groups


def test_a_cursor_belongs_to_its_sort(
    client: TestClient, customer: str, spread: dict[str, dict[str, Any]]
) -> None:
    cursor = browse(client, customer, sort="value", limit=2).json()["next_cursor"]
    assert cursor is not None
    assert_problem(browse(client, customer, sort="newest", cursor=cursor), 422, "validation", "/cursor")
    forged = base64.urlsafe_b64encode(json.dumps(["value", "EUR", "x", "nope"]).encode()).decode().rstrip("=")
    assert_problem(browse(client, customer, sort="value", cursor=forged), 422, "validation", "/cursor")
    assert_problem(browse(client, customer, cursor="%%%"), 422, "validation", "/cursor")
    # a page after the last row is empty, not an error
    last = every_page(client, customer, sort="fewest_fields", limit=7)
    assert len(last) == 7


def test_compare_lays_offers_side_by_side_and_says_what_differs(
    client: TestClient, customer: str, spread: dict[str, dict[str, Any]]
) -> None:
    a, c, g = spread["a"]["id"], spread["c"]["id"], spread["g"]["id"]
    answer = client.get("/v1/directory/compare", params={"offer": [a, c, g]}, headers=bearer(customer))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [o["offer_id"] for o in body["offers"]] == [a, c, g]
    rows = {row["term"]: row for row in body["rows"]}
    assert rows["Kept after the grant ends"] == {
        "term": "Kept after the grant ends", "cells": ["30 days", "30 days", "0 days"], "differs": True,
    }  # fmt: skip
    postcode = next(term for term in rows if term.startswith("Asks for") and "ostcode" in term)
    assert rows[postcode]["cells"] == ["not asked", "not asked", "required"]
    summary = " ".join(body["summary"])
    assert "keeps your data 30 days longer after the grant ends than Green Grocer (" in summary
    assert "Rival Foods shares your data with Courier Ltd" in summary
    assert "counted in different currencies" in summary, "EUR and GBP are not compared as amounts"
    assert "has no history yet" in summary

    for wrong in ([a], [a, a], [a, c, g, spread["b"]["id"], spread["d"]["id"]]):
        refused = client.get("/v1/directory/compare", params={"offer": wrong}, headers=bearer(customer))
        assert_problem(refused, 422, "validation")
    unknown = "00000000-0000-4000-8000-000000000000"
    missing = client.get("/v1/directory/compare", params={"offer": [a, unknown]}, headers=bearer(customer))
    assert_problem(missing, 404, "not-found")


def test_same_currency_offers_are_ranked_by_value_per_field(
    client: TestClient, customer: str, spread: dict[str, dict[str, Any]]
) -> None:
    a, b = spread["a"]["id"], spread["b"]["id"]
    body = client.get("/v1/directory/compare", params={"offer": [a, b]}, headers=bearer(customer)).json()
    assert "Green Grocer (" in body["summary"][0], "the same brand twice is named by title too"
    assert any("gives the most back per field per month (2.0000 EUR)" in line for line in body["summary"])


@pytest.fixture
def auditor(runtime: Runtime, db: Session) -> dict[str, str]:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return bearer(token)


def test_the_track_record_is_the_auditors_figures(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    clock: FakeClock,
    auditor: dict[str, str],
) -> None:
    """A seeded history: one value delivered on time and one never; three ended grants, one deletion
    attested on time, one late, one overdue; one end acknowledged on time, one late."""
    token = brand_token(client, brand)
    on_time = Brand(client, brand, publish_offer(client, token))
    delivered = on_time.deliver(kind="voucher", amount="10.00", currency="EUR", redemption="X-1")
    assert delivered.status_code == 201
    late = Brand(client, brand, publish_offer(client, token))
    third = Brand(client, brand, publish_offer(client, token, retention_days=0))
    for side in (on_time, late):  # read: what they owe stays owed when the grant ends
        assert side.read().status_code == 200
    me = bearer(log_in(client, "ada@example.org"))
    for side in (on_time, late, third):
        assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=me).status_code == 204
    ended = clock.now

    def attest(side: Brand) -> None:
        done = {"outcome": "deleted", "completed_at": clock.now.isoformat()}
        path = f"/v1/grants/{side.grant_id}/deletion"
        assert client.post(path, json=done, headers=bearer(brand_token(client, brand))).status_code == 201

    def acknowledge(side: Brand) -> None:
        deletion_by = (ended + timedelta(days=30)).isoformat()
        body = {"stopped_processing_at": ended.isoformat(), "deletion_by": deletion_by}
        path = f"/v1/grants/{side.grant_id}/acknowledgement"
        assert client.post(path, json=body, headers=bearer(brand_token(client, brand))).status_code == 201

    attest(on_time)
    acknowledge(on_time)
    clock.advance(days=31)
    attest(late)
    acknowledge(late)
    assert portal_login(client, "ada@example.org").status_code == 303
    customer_token = log_in(client, "ada@example.org")
    listed(client, brand)

    record = browse(client, customer_token).json()["items"][0]["record"]
    value = client.get("/v1/audit/reports/value", headers=auditor).json()["brands"][0]["record"]
    deletion = client.get("/v1/audit/reports/deletion", headers=auditor).json()["brands"][0]
    assert record["history"] is True
    assert (record["values_fell_due"], record["values_on_time"], record["disputes_upheld"]) == (
        value["fell_due"],
        value["on_time"],
        value["disputes_upheld"],
    )
    assert (record["values_fell_due"], record["values_on_time"]) == (2, 1)
    assert (
        record["deletions_fell_due"]
        == (deletion["overdue"] + deletion["attested_on_time"] + deletion["attested_late"])
        == 3
    )
    assert record["deletions_on_time"] == deletion["attested_on_time"] == 1
    ends = ("ends_acknowledged_on_time", "ends_acknowledged_late", "ends_unacknowledged")
    assert record["ends_fell_due"] == sum(deletion[name] for name in ends) == 3
    assert record["ends_acknowledged_on_time"] == deletion["ends_acknowledged_on_time"] == 1
    assert "1 of 2 values delivered on time" in record["summary"]
    assert "1 of 3 deletions attested on time" in record["summary"]


def test_a_brands_record_is_remembered_for_a_minute(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    listed(client, brand)
    assert browse(client, customer).json()["items"][0]["record"]["history"] is False
    side = Brand(client, brand, publish_offer(client, brand_token(client, brand), retention_days=0))
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(customer)).status_code == 204
    clock.advance(seconds=59)
    assert browse(client, customer).json()["items"][0]["record"]["history"] is False, "remembered"
    clock.advance(seconds=1)
    record = browse(client, customer).json()["items"][0]["record"]
    assert (record["history"], record["deletions_fell_due"], record["deletions_on_time"]) == (True, 1, 0)


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def test_hostile_cursors_are_422_never_500(
    client: TestClient, customer: str, spread: dict[str, dict[str, Any]]
) -> None:
    anyone = "00000000-0000-4000-8000-000000000000"
    for sort, cursor in (
        ("newest", _cursor("newest", "0001-01-01T00:00:00+01:00", anyone)),  # before year 1 in UTC
        ("newest", _cursor("newest", "9999-12-31T23:59:59-01:00", anyone)),  # after year 9999
        ("fewest_fields", _cursor("fewest_fields", 10**200, anyone)),
        ("value", _cursor("value", 0, "EUR", 2**63, anyone)),
        ("value", _cursor("value", True, "EUR", 1, anyone)),
    ):
        assert_problem(browse(client, customer, sort=sort, cursor=cursor), 422, "validation", "/cursor")
    portal = client.get(
        "/portal/directory", params={"after": _cursor("newest", "0001-01-01T00:00:00+01:00", anyone)}
    )
    assert portal.status_code == 400
    grants = client.get("/v1/me/grants", params={"cursor": _cursor("0001-01-01T00:00:00+01:00", anyone)},
                        headers=bearer(customer))  # fmt: skip
    assert_problem(grants, 422, "validation", "/cursor")
    numbered = client.get("/v1/me/grants", params={"cursor": _cursor("2026-01-01T00:00:00+00:00", 5)},
                          headers=bearer(customer))  # fmt: skip
    assert_problem(numbered, 422, "validation", "/cursor")


def test_the_largest_values_list_and_sort(client: TestClient, brand: BrandCredentials, customer: str) -> None:
    # 1,000,000 points a month for one field: 10^10 ten-thousandths, past a 32-bit column
    huge = listed(client, brand, required_fields=["email"], optional_fields=[],
                  value={**POINTS, "amount": "1000000"})  # fmt: skip
    small = listed(client, brand, required_fields=["email"], optional_fields=[], value=POINTS)
    assert every_page(client, customer, sort="value", limit=1) == [huge["id"], small["id"]]
    item = browse(client, customer, currency="points", sort="value").json()["items"][0]
    assert item["value_per_field_month"] == {"amount": "1000000.0000", "scale": "points"}


def test_a_public_client_cannot_list(client: TestClient, runtime: Runtime, db: Session) -> None:
    public = register_brand(db, name="Pocket App", redirect_uris=["https://app.example/cb"], public=True,
                            clock=runtime.clock)  # fmt: skip
    db.commit()
    offer = runtime.offers.create  # the service itself: a public client has no client-credentials token
    with pytest.raises(ValidationFailed) as refused:
        offer(db, public.brand, OfferDraft.model_validate({**OFFER, "listed": True}))
    assert refused.value.extensions["errors"][0]["pointer"] == "/listed"
    db.rollback()
    assert offer(db, public.brand, OfferDraft.model_validate(OFFER)).listed is False
