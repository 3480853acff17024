"""The declared value becomes obligations the broker enforces: owed, overdue, delivered, confirmed,
disputed; a brand that does not deliver loses access until it does. Time is the injected clock."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import FakeClock, bearer, log_in, sign_up
from support.oauth import BrandCredentials, brand_token
from support.value import VOUCHER, Brand, ledger, logged, value_offer

from broker.audit.models import AuditEntry
from broker.value.models import Delivery
from vault.models import VaultSecret


def test_a_grant_owes_the_declared_value_and_the_customer_sees_it(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    (owed,) = side.obligations()
    assert owed | {"state": "owed", "amount": "10.00", "currency": "EUR", "kind": "voucher"} == owed
    assert owed["due_at"].startswith("2026-11-30T09:00") and owed["schedule"] == "once"
    page = ledger(client)
    assert [item["id"] for item in page["items"]] == [owed["id"]]
    assert page["totals"] == [
        {"currency": "EUR", "declared": "10.00", "owed": "10.00", "overdue": "0.00", "delivered": "0.00",
         "confirmed": "0.00", "disputed": "0.00"}
    ]  # fmt: skip


def test_value_due_before_the_first_read_blocks_it_until_delivered(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="before_first_read"))
    refused = side.read()
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/value-overdue") and problem["grant_id"] == side.grant_id
    assert problem["obligation_id"] == side.obligations()[0]["id"] and "due_at" in problem
    assert side.grant_status() == "suspended"
    delivered = side.deliver(**VOUCHER)
    assert delivered.status_code == 201, delivered.text
    assert delivered.json()["state"] == "delivered" and delivered.json()["delivery"]["redemption"] is None
    assert side.grant_status() == "active"
    assert side.read().status_code == 200
    suspended, resumed = logged(db, "grant.suspended") + logged(db, "grant.resumed")
    assert (suspended["reason"], resumed["reason"]) == ("value-overdue", "value-delivered")
    assert [e["kind"] for e in logged(db, "value.")] == ["value.created", "value.overdue", "value.delivered"]


def test_an_overdue_one_off_suspends_reads_and_the_delivery_resumes_them(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    assert side.read().status_code == 200
    clock.advance(days=6, hours=23)
    assert side.read().status_code == 200, "not due yet"
    clock.advance(hours=1)
    assert side.read().status_code == 403
    assert ledger(client)["items"][0]["state"] == "overdue"
    assert ledger(client)["totals"][0]["overdue"] == "10.00"
    assert side.deliver(**VOUCHER).status_code == 201
    assert side.read().status_code == 200


def test_a_monthly_value_falls_due_every_month_while_the_grant_lives(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="monthly"))
    assert side.read().status_code == 200
    assert [o["period"] for o in side.obligations()] == [0]
    clock.advance(days=20)
    assert side.read().status_code == 200
    clock.advance(days=11)  # day 31: month 0 was due on 23 December; month 1 has started
    assert side.read().status_code == 403
    assert [(o["period"], o["state"]) for o in side.obligations()] == [(0, "overdue"), (1, "owed")]
    assert side.deliver(**VOUCHER).status_code == 201  # the oldest owed: month 0
    assert side.read().status_code == 200
    clock.advance(days=20)
    assert side.read().status_code == 200, "day 51: month 1 is not due yet"
    clock.advance(days=10)  # day 61: month 1 was due on 23 January
    assert side.read().status_code == 403
    states = [(o["period"], o["state"]) for o in side.obligations()]
    assert states == [(0, "delivered"), (1, "overdue"), (2, "owed")]
    month_one = side.obligations()[1]["id"]
    assert side.deliver(**VOUCHER, obligation_id=month_one).status_code == 201
    assert side.read().status_code == 200


def test_ending_a_grant_before_any_read_cancels_what_it_owed(
    client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(customer)).status_code == 204
    assert [o["state"] for o in side.obligations()] == ["cancelled"]
    assert ledger(client)["totals"] == []


def test_ending_a_grant_after_a_read_keeps_it_owed(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    assert side.read().status_code == 200
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(customer)).status_code == 204
    clock.advance(days=8)
    assert [o["state"] for o in side.obligations()] == ["overdue"]
    assert side.deliver(**VOUCHER).status_code == 201, "a brand can pay what it owes after the grant ended"


def test_customer_confirms_or_disputes_and_the_brand_answers(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    obligation = side.deliver(**VOUCHER).json()["id"]
    mine = ledger(client)["items"][0]
    assert mine["delivery"]["redemption"] == "GROCER-10-QZX", "the customer sees how to redeem it"
    me = bearer(log_in(client, "ada@example.org"))
    disputed = client.post(f"/v1/me/value/{obligation}/dispute", json={"reason": "code rejected"}, headers=me)
    assert disputed.status_code == 200 and disputed.json()["state"] == "disputed"
    token = brand_token(client, brand)
    answer = client.post(
        f"/v1/grants/{side.grant_id}/value/{obligation}/answer",
        json={"answer": "fixed: try again"},
        headers=bearer(token),
    )
    assert answer.status_code == 200 and answer.json()["dispute"]["reason"] == "code rejected"
    seen = ledger(client)["items"][0]["dispute"]
    assert (seen["reason"], seen["answer"]) == ("code rejected", "fixed: try again")
    withdrawn = client.delete(f"/v1/me/value/{obligation}/dispute", headers=me)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "delivered"
    confirmed = client.post(f"/v1/me/value/{obligation}/confirm", headers=me)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    assert client.post(f"/v1/me/value/{obligation}/confirm", headers=me).status_code == 409
    kinds = [e["kind"] for e in logged(db, "value.")]
    assert kinds == [
        "value.created",
        "value.delivered",
        "value.disputed",
        "value.dispute_answered",
        "value.dispute_withdrawn",
        "value.confirmed",
    ]
    texts = [b"GROCER-10-QZX", b"code rejected", b"fixed: try again"]
    for row in db.exec(select(AuditEntry)).all():
        assert not any(text in row.entry for text in texts), "the log never holds what the customer redeems"
    assert all(not any(t in s.ciphertext for t in texts) for s in db.exec(select(VaultSecret)).all())
    assert len(db.exec(select(VaultSecret)).all()) == 3 and db.exec(select(Delivery)).one().kind == "voucher"


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"amount": "-10.00"}, "/amount"),
        ({"amount": "1000000000"}, "/amount"),
        ({"amount": "10.001"}, "/amount"),
        ({"amount": "9.99"}, "/amount"),
        ({"currency": "XYZ"}, "/currency"),
        ({"currency": "GBP"}, "/currency"),
        ({"kind": "cash"}, "/kind"),
        ({"kind": "gift"}, "/kind"),
        ({"redemption": "  "}, "/redemption"),
        ({"surprise": 1}, "/surprise"),
    ],
)
def test_a_delivery_that_is_not_what_was_declared_is_refused(
    change: dict[str, Any], pointer: str, client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    refused = side.deliver(**(VOUCHER | change))
    assert refused.status_code == 422, refused.text
    assert pointer in [e["pointer"] for e in refused.json()["errors"]]
    assert side.obligations()[0]["state"] == "owed"


def test_value_is_one_brands_and_one_customers_business(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, customer: str
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    theirs = bearer(brand_token(client, rival))
    assert client.post(f"/v1/grants/{side.grant_id}/value", json=VOUCHER, headers=theirs).status_code == 404
    assert client.get(f"/v1/grants/{side.grant_id}/value", headers=theirs).status_code == 404
    obligation = side.deliver(**VOUCHER).json()["id"]
    assert side.deliver(**VOUCHER, obligation_id=obligation).status_code == 409, "a one-off is delivered once"
    assert side.deliver(**VOUCHER).status_code == 409
    stranger = bearer(sign_up(client, "eve@example.org"))
    url = f"/v1/me/value/{obligation}"
    assert client.post(f"{url}/confirm", headers=stranger).status_code == 404
    assert client.post(f"{url}/dispute", json={"reason": "x"}, headers=stranger).status_code == 404
    me = bearer(log_in(client, "ada@example.org"))
    assert client.post(f"{url}/dispute", json={}, headers=me).status_code == 422
    assert client.post(f"{url}/dispute", json={"reason": ""}, headers=me).status_code == 422


def test_auditors_see_each_brands_record(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock, runtime: Any, db: Session
) -> None:
    paid = Brand(client, brand, value_offer(client, brand, when="within_days", days=1))
    assert paid.read().status_code == 200
    clock.advance(days=3)
    _, token = runtime.auditors.create(db, "Audit")
    db.commit()
    report = client.get("/v1/audit/reports/value", headers=bearer(token))
    assert report.status_code == 200, report.text
    (row,) = report.json()["brands"]
    assert (row["brand"], row["obligations"], row["overdue"], row["delivered"]) == ("Green Grocer", 1, 1, 0)
    assert row["oldest_overdue_days"] == 2.0
    assert row["totals"][0]["overdue"] == "10.00"
    assert client.get("/v1/audit/reports/value", headers=bearer(customer)).status_code == 401


def test_the_export_holds_grants_value_with_redemption_and_the_access_log(
    client: TestClient, brand: BrandCredentials, customer: str
) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    assert side.read().status_code == 200
    assert side.deliver(**VOUCHER).status_code == 201
    document = client.get("/v1/me/export", headers=bearer(log_in(client, "ada@example.org"))).json()
    assert document["format"] == "consentry-export/4"
    (grant,) = document["grants"]
    assert grant["id"] == side.grant_id and grant["brand"] == "Green Grocer" and grant["status"] == "active"
    (owed,) = document["value"]
    assert owed["state"] == "delivered" and owed["delivery"]["redemption"] == "GROCER-10-QZX"
    kinds = [entry["kind"] for entry in document["access_log"]]
    assert kinds == ["grant.created", "value.created", "profile.read", "value.delivered"]
    assert all("subject" in entry and entry["grant"] == side.grant_id for entry in document["access_log"])
    (receipt,) = document["receipts"]
    assert receipt["event"] == "given" and receipt["grant_id"] == side.grant_id
    assert receipt["jws"].count(".") == 2 and receipt["signing_key"]["kty"] == "OKP"
