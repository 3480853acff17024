"""Contacts brands report: judged against the preferences in force when they were made, shown to the
customer (the breaking ones flagged), counted per brand for auditors, and refused when they cannot be
judged fairly."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import FakeClock, bearer, log_in
from support.lifecycle import BrandSide, entries_about
from support.oauth import BrandCredentials, brand_token, publish_offer
from support.problems import assert_problem

from broker.runtime import Runtime

MINE = "/v1/me/preferences"
# London is at UTC+0 in December: 22:00 UTC is inside 21:00-08:00 there, 12:00 UTC outside.
STRICT: dict[str, Any] = {
    "channels": ["email"],
    "quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "Europe/London"},
    "max_contacts_per_month": 2,
    "avoid_topics": ["gambling"],
}


@pytest.fixture
def side(client: TestClient, brand: BrandCredentials, customer: str) -> BrandSide:
    return BrandSide(client, brand, publish_offer(client, brand_token(client, brand), optional_fields=[]))


def _report(client: TestClient, brand: BrandCredentials, grant_id: str, at: datetime, **contact: Any) -> Any:
    body = {"channel": "email", "purpose": "marketing", "contacted_at": at.isoformat(), **contact}
    return client.post(
        f"/v1/grants/{grant_id}/contacts", json=body, headers=bearer(brand_token(client, brand))
    )


def test_each_broken_preference_is_flagged_to_the_customer(
    client: TestClient, brand: BrandCredentials, customer: str, side: BrandSide, clock: FakeClock, db: Session
) -> None:
    assert client.put(MINE, json=STRICT, headers=bearer(customer)).status_code == 200
    clock.now = datetime(2026, 12, 2, 12, 0, tzinfo=clock.now.tzinfo)
    noon = clock.now - timedelta(hours=1)
    fine = _report(client, brand, side.grant_id, noon)
    assert fine.status_code == 201, fine.text
    assert fine.json()["breaches"] == []
    by_sms = _report(client, brand, side.grant_id, noon, channel="sms")
    assert by_sms.json()["breaches"] == ["channel"], "the second contact of the month: within the cap"
    late = _report(client, brand, side.grant_id, datetime(2026, 12, 1, 22, 30, tzinfo=noon.tzinfo))
    assert "quiet_hours" in late.json()["breaches"] and "over_cap" in late.json()["breaches"]
    betting = _report(client, brand, side.grant_id, noon, topics=["gambling", "alcohol"])
    body = betting.json()
    assert set(body["breaches"]) == {"over_cap", "topic"}
    assert "about a topic you asked never to hear about" in body["breaches_in_words"]
    customer = log_in(client, "ada@example.org")  # the old session went idle meanwhile
    listed = client.get("/v1/me/contacts", headers=bearer(customer)).json()["items"]
    assert len(listed) == 4 and listed[0]["contacted_at"] >= listed[-1]["contacted_at"]
    flagged = client.get("/v1/me/contacts", params={"flagged": "true"}, headers=bearer(customer)).json()
    assert len(flagged["items"]) == 3 and all(item["breaches"] for item in flagged["items"])
    logged = entries_about(db, side.grant_id, "contact.reported")
    assert len(logged) == 4 and all(set(e) <= {"v", "kind", "at", "actor", "brand", "subject", "grant",
                                                "request_id"} for e in logged)  # fmt: skip


def test_a_contact_is_judged_by_the_preferences_of_its_day(
    client: TestClient, brand: BrandCredentials, customer: str, side: BrandSide, clock: FakeClock
) -> None:
    clock.advance(minutes=1)
    before = clock.now
    clock.advance(minutes=1)
    assert client.put(MINE, json={"channels": []}, headers=bearer(customer)).status_code == 200
    clock.advance(minutes=1)
    assert client.put(MINE, json={"channels": ["sms"]}, headers=bearer(customer)).status_code == 200
    then = _report(client, brand, side.grant_id, before, channel="email").json()
    assert then["breaches"] == [] and then["preferences_version"] == 0, "before any preference"
    between = _report(client, brand, side.grant_id, before + timedelta(seconds=90), channel="sms").json()
    assert between["breaches"] == ["channel"] and between["preferences_version"] == 1, "no contact at all"
    now = _report(client, brand, side.grant_id, clock.now, channel="sms").json()
    assert now["breaches"] == [] and now["preferences_version"] == 2


def test_a_report_that_cannot_be_judged_fairly_is_refused(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    customer: str,
    side: BrandSide,
    clock: FakeClock,
) -> None:
    clock.advance(days=40)
    for at, words in (
        (clock.now + timedelta(hours=1), "in the future"),
        (clock.now - timedelta(days=31), "within 30 days"),
        (clock.now - timedelta(days=45), "before the grant began"),
    ):
        refused = _report(client, brand, side.grant_id, at)
        assert_problem(refused, 422, "validation", "/contacted_at")
        assert words in refused.json()["detail"]
    naive = _report(client, brand, side.grant_id, clock.now.replace(tzinfo=None))
    assert_problem(naive, 422, "validation", "/contacted_at")
    assert_problem(
        _report(client, brand, side.grant_id, clock.now, purpose="spying"), 422, "validation", "/purpose"
    )
    assert_problem(
        _report(client, brand, side.grant_id, clock.now, channel="fax"), 422, "validation", "/channel"
    )
    assert_problem(_report(client, rival, side.grant_id, clock.now), 404, "not-found")
    read_only = client.post(
        f"/v1/grants/{side.grant_id}/contacts",
        json={"channel": "email", "purpose": "marketing", "contacted_at": clock.now.isoformat()},
        headers=bearer(brand_token(client, brand, scope="grants:read")),
    )
    assert_problem(read_only, 403, "insufficient-scope")
    mine = client.get("/v1/me/contacts", headers=bearer(log_in(client, "ada@example.org")))
    assert mine.json()["items"] == []


def test_auditors_see_the_counts_per_brand_and_no_customer(
    client: TestClient,
    runtime: Runtime,
    db: Session,
    brand: BrandCredentials,
    customer: str,
    side: BrandSide,
    clock: FakeClock,
) -> None:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    assert client.put(MINE, json=STRICT, headers=bearer(customer)).status_code == 200
    clock.advance(hours=2)
    _report(client, brand, side.grant_id, clock.now - timedelta(hours=1))
    _report(client, brand, side.grant_id, clock.now - timedelta(hours=1), channel="post", topics=["gambling"])
    assert_problem(client.get("/v1/audit/reports/contacts"), 401, "unauthenticated")
    report = client.get("/v1/audit/reports/contacts", headers=bearer(token))
    assert report.status_code == 200, report.text
    (row,) = report.json()["brands"]
    assert (row["brand"], row["reported"], row["breaking"], row["channel"], row["topic"]) == (
        "Green Grocer",
        2,
        1,
        1,
        1,
    )
    assert side.grant_id not in report.text and "subject" not in report.text


def test_the_grant_page_shows_each_contact_flagged_in_words(
    client: TestClient, brand: BrandCredentials, customer: str, side: BrandSide, clock: FakeClock
) -> None:
    assert client.put(MINE, json=STRICT, headers=bearer(customer)).status_code == 200
    clock.advance(minutes=2)
    _report(
        client, brand, side.grant_id, clock.now - timedelta(minutes=1), channel="sms", purpose="marketing"
    )
    page = client.get(f"/portal/grants/{side.grant_id}")
    assert page.status_code == 200
    assert "Text message (SMS), for Marketing" in page.text
    assert "against your preferences</strong>: by a way you ruled out" in page.text


def test_a_contact_after_the_grant_ended_is_the_breach_and_tells_the_brand_nothing_more(
    client: TestClient, brand: BrandCredentials, customer: str, side: BrandSide, clock: FakeClock
) -> None:
    assert client.put(MINE, json=STRICT, headers=bearer(customer)).status_code == 200
    clock.advance(minutes=1)
    before_end = clock.now
    clock.advance(minutes=1)
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(customer)).status_code == 204
    clock.advance(minutes=1)
    after = _report(client, brand, side.grant_id, clock.now, channel="sms", topics=["gambling"]).json()
    assert after["breaches"] == ["after_end"], "nothing of the preferences is judged, nor told"
    during = _report(client, brand, side.grant_id, before_end, channel="sms").json()
    assert during["breaches"] == ["channel"], "a contact made while the grant was live is judged as ever"
    doubled = _report(client, brand, side.grant_id, before_end, topics=["gambling", "gambling"])
    assert_problem(doubled, 422, "validation", "/topics")
