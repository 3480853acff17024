"""A customer renews a grant in its last weeks, on the terms of the offer they accepted; grants longer
than 90 days need a reconfirmation every 90 days, without which reads stop. Time is the injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.core import FakeClock, bearer, log_in, sign_up
from support.lifecycle import BrandSide, Recorder, entries_about
from support.oauth import OFFER, BrandCredentials, brand_token, publish_offer

from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.consent.models import Grant, GrantStatus
from broker.consent.notices import NoticeType
from broker.runtime import Runtime
from clients.auditor import check_reads

# The value falls due after the grant's end, so reads are never held up by value owed.
LATE_VALUE = {**OFFER["value"], "due": {"when": "within_days", "days": 365}}


@pytest.fixture
def told(runtime: Runtime) -> Recorder:
    recorder = Recorder()
    runtime.notices.subscribers.append(recorder)
    return recorder


def me(client: TestClient) -> dict[str, str]:
    """A fresh customer login (sessions last 8 hours; these tests walk days)."""
    return bearer(log_in(client, "ada@example.org"))


def my_grant(client: TestClient, grant_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/me/grants/{grant_id}", headers=me(client))
    assert answer.status_code == 200, answer.text
    grant: dict[str, Any] = answer.json()
    return grant


def renew(client: TestClient, grant_id: str) -> Any:
    return client.post(f"/v1/me/grants/{grant_id}/renewal", headers=me(client))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_renewal_opens_14_days_before_expiry_and_runs_the_offers_duration_from_then(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    clock: FakeClock,
    db: Session,
    told: Recorder,
) -> None:
    offer = publish_offer(client, brand_token(client, brand), grant_duration_days=60)
    side = BrandSide(client, brand, offer)
    created = clock.now
    clock.advance(days=10)
    early = renew(client, side.grant_id)
    assert early.status_code == 409
    assert early.json()["type"].endswith("/renewal-not-open")
    assert at(early.json()["window_opens_at"]) == created + timedelta(days=46)
    renewal = my_grant(client, side.grant_id)["renewal"]
    assert at(renewal.pop("window_opens_at")) == created + timedelta(days=46)
    assert renewal == {"reconfirm_by": None, "can_renew": False, "prompt": False}

    clock.advance(days=36)  # day 46: the window opens
    assert my_grant(client, side.grant_id)["renewal"]["prompt"] is True
    renewed = renew(client, side.grant_id)
    assert renewed.status_code == 200, renewed.text
    assert at(renewed.json()["expires_at"]) == clock.now + timedelta(days=60)
    assert renewed.json()["renewal"]["prompt"] is False and renewed.json()["status"] == "active"
    brand_view = client.get(f"/v1/grants/{side.grant_id}", headers=bearer(brand_token(client, brand)))
    assert brand_view.json()["expires_at"] == renewed.json()["expires_at"]
    (entry,) = entries_about(db, side.grant_id, "grant.renewed")
    assert entry["actor"] == "customer" and at(entry["expires_at"]) == clock.now + timedelta(days=60)
    assert entry["fields"] and entry["purpose"] == OFFER["purpose"]
    (notice,) = [n for n in told.seen if n.type is NoticeType.GRANT_RENEWED]
    assert notice.grant_id == UUID(side.grant_id)
    assert at(str(notice.data["expires_at"])) == at(entry["expires_at"])
    assert renew(client, side.grant_id).status_code == 409, "the window closed again with the new expiry"


def test_a_withdrawn_offer_cannot_be_renewed(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    offer = publish_offer(client, brand_token(client, brand), grant_duration_days=30)
    side = BrandSide(client, brand, offer)
    token = bearer(brand_token(client, brand))
    assert client.delete(f"/v1/offers/{offer['id']}", headers=token).status_code == 200
    clock.advance(days=20)
    renewal = my_grant(client, side.grant_id)["renewal"]
    assert (renewal["prompt"], renewal["can_renew"]) == (True, False)
    refused = renew(client, side.grant_id)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/offer-withdrawn")
    assert "withdrawn" in refused.json()["detail"]


def test_a_superseded_offer_cannot_be_renewed_the_customer_accepts_the_new_one(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    offer = publish_offer(client, brand_token(client, brand), grant_duration_days=30)
    side = BrandSide(client, brand, offer)
    revised = client.put(
        f"/v1/offers/{offer['id']}",
        json={**OFFER, "grant_duration_days": 90},
        headers=bearer(brand_token(client, brand)),
    )
    assert revised.status_code == 201, revised.text
    clock.advance(days=20)
    refused = renew(client, side.grant_id)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"].endswith("/offer-superseded") and problem["latest_id"] == revised.json()["id"]
    assert "accept the new offer instead" in problem["detail"] and revised.json()["id"] in problem["detail"]


def test_an_ended_grant_cannot_be_renewed(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    side, other = BrandSide(client, brand, offer), BrandSide(client, brand, offer)
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=me(client)).status_code == 204
    refused = renew(client, side.grant_id)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/grant-ended")
    renewal = my_grant(client, side.grant_id)["renewal"]
    assert renewal == {"window_opens_at": None, "reconfirm_by": None, "can_renew": False, "prompt": False}
    clock.advance(days=offer["grant_duration_days"], seconds=1)
    assert renew(client, other.grant_id).status_code == 409, "expired, even before the sweep stored it"


def test_a_stranger_cannot_renew_someone_elses_grant(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    side = BrandSide(client, brand, offer)
    eve = bearer(sign_up(client, "eve@example.org"))
    assert client.post(f"/v1/me/grants/{side.grant_id}/renewal", headers=eve).status_code == 404


def test_reads_stop_at_the_90_day_reconfirmation_until_the_customer_renews(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    clock: FakeClock,
    db: Session,
    told: Recorder,
) -> None:
    offer = publish_offer(client, brand_token(client, brand), value=LATE_VALUE)  # 180 days
    side = BrandSide(client, brand, offer)
    created = clock.now
    grant = my_grant(client, side.grant_id)
    assert at(grant["renewal"]["reconfirm_by"]) == created + timedelta(days=90)
    assert at(grant["renewal"]["window_opens_at"]) == created + timedelta(days=76)
    clock.advance(days=10)
    assert renew(client, side.grant_id).status_code == 409, "neither expiry nor reconfirmation is near"

    side.wait(clock, days=79, hours=23)  # day 89, 23:00
    assert side.read().status_code == 200
    assert my_grant(client, side.grant_id)["renewal"]["can_renew"] is True
    clock.advance(hours=1)  # day 90
    refused = side.read()
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["type"].endswith("/grant-reconfirmation-due")
    assert side.grant_id in problem["detail"] and "portal" in problem["detail"]
    assert at(problem["reconfirm_by"]) == created + timedelta(days=90)
    db.expire_all()
    stored = db.get(Grant, UUID(side.grant_id))
    assert stored is not None and stored.status is GrantStatus.ACTIVE, "the grant's state is untouched"
    assert my_grant(client, side.grant_id)["status"] == "active"
    assert [n.type for n in told.seen].count(NoticeType.GRANT_SUSPENDED) == 0

    renewed = renew(client, side.grant_id)
    assert renewed.status_code == 200, renewed.text
    assert at(renewed.json()["renewal"]["reconfirm_by"]) == clock.now + timedelta(days=90)
    assert at(renewed.json()["expires_at"]) == clock.now + timedelta(days=180)
    assert side.read().status_code == 200
    side.wait(clock, days=100)  # past the original expiry, before the renewed one; reconfirmation due again
    assert side.read().status_code == 403
    assert renew(client, side.grant_id).status_code == 200
    assert side.read().status_code == 200

    rows = db.exec(select(AuditEntry).order_by(col(AuditEntry.index))).all()
    report = check_reads((row.index, decode(row.entry)) for row in rows)
    assert report.violations == [], "the offline auditor follows renewals"
    assert report.kinds["grant.renewed"] == 2


def test_a_grant_of_90_days_or_less_needs_no_reconfirmation(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    offer = publish_offer(client, brand_token(client, brand), grant_duration_days=90, value=LATE_VALUE)
    side = BrandSide(client, brand, offer)
    assert my_grant(client, side.grant_id)["renewal"]["reconfirm_by"] is None
    side.wait(clock, days=89, hours=23)
    assert side.read().status_code == 200


def test_a_renewed_grant_keeps_owing_its_monthly_value_past_the_old_expiry(
    client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock
) -> None:
    monthly = {**OFFER["value"], "due": {"when": "monthly"}}
    offer = publish_offer(client, brand_token(client, brand), grant_duration_days=60, value=monthly)
    side = BrandSide(client, brand, offer)
    voucher = {"kind": "voucher", "amount": "10.00", "currency": "EUR", "redemption": "CODE"}
    url = f"/v1/grants/{side.grant_id}/value"
    assert client.post(url, json=voucher, headers=bearer(brand_token(client, brand))).status_code == 201
    side.wait(clock, days=31)  # month 1 started; it ends after the grant's first expiry
    assert side.read().status_code == 200
    assert client.post(url, json=voucher, headers=bearer(brand_token(client, brand))).status_code == 201
    side.wait(clock, days=19)  # day 50: in the window
    assert renew(client, side.grant_id).status_code == 200
    side.wait(clock, days=42)  # day 92: month 2 (made possible by the renewal) ended unpaid
    refused = side.read()
    assert refused.status_code == 403 and refused.json()["type"].endswith("/value-overdue")
