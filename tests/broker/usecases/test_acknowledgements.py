"""Withdrawal acknowledged by the brand: whoever ends a grant, its brand states within 72 hours that
it stopped processing and when deletion follows; a webhook reminds it at half the window; the
statement (signed with a registered key, or bound to the client's token) becomes a receipt the
customer verifies offline; late and missing ones, and reads tried after the end, are on the
auditor's deletion report. Time is the injected clock."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import ECKey
from sqlmodel import Session, select
from support.core import FakeClock, bearer, log_in
from support.oauth import ISSUER, BrandCredentials, brand_token, portal_login, publish_offer
from support.problems import assert_problem
from support.value import Brand

from broker.accounts.models import Brand as BrandRow
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from broker.webhooks.models import WebhookMessage
from broker.webhooks.schemas import WebhookCreate
from clients.auditor.receipt import ReceiptReport, check_brand_statement, verify_receipt
from clients.auditor.tlog import parse_verifier_key

ACK = "grant-end-ack+jwt"


def iso(at: datetime) -> str:
    return at.isoformat()


class Ended:
    """A grant of Ada's with the brand, ended by Ada, and the brand's calls about its end."""

    def __init__(self, client: TestClient, brand: BrandCredentials, clock: FakeClock) -> None:
        self.client, self.brand, self.clock = client, brand, clock
        assert portal_login(client, "ada@example.org").status_code == 303  # the clock may have moved
        self.side = Brand(client, brand, publish_offer(client, brand_token(client, brand)))
        self.ended_at = clock.now
        me = bearer(log_in(client, "ada@example.org"))
        assert client.delete(f"/v1/me/grants/{self.side.grant_id}", headers=me).status_code == 204

    def acknowledge(self, **body: Any) -> Any:
        token = brand_token(self.client, self.brand)
        path = f"/v1/grants/{self.side.grant_id}/acknowledgement"
        return self.client.post(path, json=body, headers=bearer(token))

    def plainly(self, *, stopped: datetime | None = None, deletion: datetime | None = None) -> Any:
        return self.acknowledge(
            stopped_processing_at=iso(stopped or self.ended_at),
            deletion_by=iso(deletion or self.ended_at + timedelta(days=7)),
        )

    def grant(self) -> dict[str, Any]:
        token = brand_token(self.client, self.brand)
        found: dict[str, Any] = self.client.get(
            f"/v1/grants/{self.side.grant_id}", headers=bearer(token)
        ).json()
        return found


@pytest.fixture
def ended(client: TestClient, brand: BrandCredentials, customer: str, clock: FakeClock) -> Ended:
    return Ended(client, brand, clock)


@pytest.fixture
def auditor(runtime: Runtime, db: Session) -> dict[str, str]:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return bearer(token)


def hooked(runtime: Runtime, db: Session, brand: BrandCredentials) -> None:
    """Give the brand a webhook endpoint (never called here: the outbox is what is checked)."""
    row = db.exec(select(BrandRow).where(BrandRow.client_id == brand.client_id)).one()
    replace(runtime.webhooks, allow_private=True).register(
        db, row.id, WebhookCreate(url="http://127.0.0.1:9/h")
    )
    db.commit()


def reminders(db: Session) -> list[str]:
    rows = db.exec(select(WebhookMessage).where(WebhookMessage.event_type == "grant.acknowledgement_due"))
    return [m.event_type for m in rows]


def test_the_brand_acknowledges_within_the_window_after_one_reminder(
    client: TestClient, ended: Ended, runtime: Runtime, db: Session, clock: FakeClock, auditor: dict[str, str]
) -> None:
    hooked(runtime, db, ended.brand)
    state = ended.grant()["acknowledgement"]
    assert state == {
        "status": "awaiting",
        "acknowledge_by": iso(ended.ended_at + timedelta(hours=72)).replace("+00:00", "Z"),
        "acknowledged_at": None,
    }
    clock.advance(hours=35, minutes=59)
    runtime.lifecycle.sweep(runtime.sessions)
    assert reminders(db) == [], "not before half the window"
    clock.advance(minutes=1)
    runtime.lifecycle.sweep(runtime.sessions)
    runtime.lifecycle.sweep(runtime.sessions)
    assert reminders(db) == ["grant.acknowledgement_due"], "one reminder, at half the window"
    made = ended.plainly()
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["on_time"] is True and body["method"] == "client-authentication" and body["statement"] is None
    assert ended.grant()["acknowledgement"]["status"] == "acknowledged"
    report = client.get("/v1/audit/reports/deletion", headers=auditor).json()["brands"][0]
    assert (report["ends_acknowledged_on_time"], report["ends_unacknowledged"]) == (1, 0)


def test_a_late_or_missing_acknowledgement_is_on_the_report_and_the_portal(
    client: TestClient, ended: Ended, clock: FakeClock, auditor: dict[str, str]
) -> None:
    clock.advance(hours=72)
    assert ended.grant()["acknowledgement"]["status"] == "awaiting", "on time to the second"
    clock.advance(seconds=1)
    assert ended.grant()["acknowledgement"]["status"] == "overdue"
    report = client.get("/v1/audit/reports/deletion", headers=auditor).json()["brands"][0]
    assert report["ends_unacknowledged"] == 1
    assert portal_login(client, "ada@example.org").status_code == 303
    page = client.get(f"/portal/grants/{ended.side.grant_id}").text
    assert "Green Grocer has not confirmed it stopped" in page
    late = ended.plainly()
    assert late.status_code == 201 and late.json()["on_time"] is False
    report = client.get("/v1/audit/reports/deletion", headers=auditor).json()["brands"][0]
    assert (report["ends_acknowledged_late"], report["ends_unacknowledged"]) == (1, 0)
    page = client.get(f"/portal/grants/{ended.side.grant_id}").text
    assert "Green Grocer confirmed" in page and "it stopped using your data" in page


def test_reads_tried_after_the_end_are_refused_and_counted(
    client: TestClient, ended: Ended, auditor: dict[str, str]
) -> None:
    for _ in range(2):
        refused = client.get("/v1/profile", headers=bearer(ended.side.tokens["access_token"]))
        assert_problem(refused, 403, "grant-revoked")
    report = client.get("/v1/audit/reports/deletion", headers=auditor).json()["brands"][0]
    assert report["reads_after_end"] == 2


def test_bad_acknowledgements_are_refused_with_what_to_fix(
    client: TestClient, ended: Ended, brand: BrandCredentials, runtime: Runtime, db: Session, clock: FakeClock
) -> None:
    clock.advance(hours=1)
    now, end = clock.now, ended.ended_at

    def times(stopped: object, deletion: object) -> dict[str, object]:
        return {"stopped_processing_at": stopped, "deletion_by": deletion}

    cases = [
        (times(iso(end - timedelta(minutes=1)), iso(now)), "/stopped_processing_at"),  # before the end
        (times(iso(now + timedelta(minutes=5)), iso(now + timedelta(days=1))), "/stopped_processing_at"),
        (times(iso(now), iso(now - timedelta(minutes=1))), "/deletion_by"),  # deleting before stopping
        (times(iso(now), iso(end + timedelta(days=31))), "/deletion_by"),  # past the 30-day retention
        ({"stopped_processing_at": iso(now)}, "/deletion_by"),
        ({"statement": "a.b.c"}, "/statement"),  # no keys registered: nothing to sign with
        (times("2026-11-23T09:00:00", iso(now)), "/stopped_processing_at"),  # no offset
    ]
    for body, pointer in cases:
        assert_problem(ended.acknowledge(**body), 422, "validation", pointer)
    assert ended.plainly().status_code == 201
    assert_problem(ended.plainly(), 409, "end-already-acknowledged")
    assert portal_login(client, "ada@example.org").status_code == 303
    live = Brand(client, brand, publish_offer(client, brand_token(client, brand), title="Another"))
    token = bearer(brand_token(client, brand))
    body = {"stopped_processing_at": iso(clock.now), "deletion_by": iso(clock.now)}
    assert_problem(
        client.post(f"/v1/grants/{live.grant_id}/acknowledgement", json=body, headers=token),
        409,
        "grant-not-ended",
    )
    other = register_brand(
        db, name="Other Shop", redirect_uris=["https://o.example/cb"], public=False, clock=runtime.clock
    )
    db.commit()
    stranger = bearer(brand_token(client, BrandCredentials(other.brand.client_id, other.client_secret)))
    path = f"/v1/grants/{ended.side.grant_id}/acknowledgement"
    assert_problem(client.post(path, json=body, headers=stranger), 404, "not-found")
    assert_problem(client.get(path, headers=stranger), 404, "not-found")


def statement(
    key: Any, client_id: str, grant_id: str, ended_at: datetime, typ: str = ACK, **changes: Any
) -> str:
    """The brand's acknowledgement, signed as a brand would with its own JOSE library."""
    claims = {
        "iss": client_id, "aud": ISSUER, "iat": int(time.time()), "grant_id": grant_id,
        "stopped_processing_at": iso(ended_at), "deletion_by": iso(ended_at + timedelta(days=3)), **changes,
    }  # fmt: skip
    header = {"alg": "ES256", "kid": key.kid, "typ": typ}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key, algorithms=["ES256"])


def test_a_brand_with_keys_must_sign_and_its_signature_verifies_offline(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    clock.now = datetime.now(clock.now.tzinfo)  # statements carry the real time (iat)
    key = ECKey.generate_key("P-256", parameters={"kid": "grocer-1"})
    row = db.exec(select(BrandRow).where(BrandRow.client_id == brand.client_id)).one()
    row.jwks = {"keys": [key.as_dict(private=False)]}
    db.add(row)
    db.commit()
    ended = Ended(client, brand, clock)
    clock.advance(seconds=1)
    gid, cid = ended.side.grant_id, brand.client_id
    assert_problem(ended.plainly(), 422, "validation", "/statement")  # keys registered: sign it
    stranger = ECKey.generate_key("P-256", parameters={"kid": "grocer-1"})
    for bad in (
        statement(stranger, cid, gid, ended.ended_at),
        statement(key, cid, "00000000-0000-4000-8000-000000000000", ended.ended_at),
        statement(key, "brd_someone_else", gid, ended.ended_at),
        statement(key, cid, gid, ended.ended_at, iat=int(time.time()) - 3600),
        statement(key, cid, gid, ended.ended_at, stopped_processing_at="yesterday"),
        statement(key, cid, gid, ended.ended_at, deletion_by=iso(ended.ended_at + timedelta(days=90))),
        statement(key, cid, gid, ended.ended_at, typ="JWT"),
    ):
        assert_problem(ended.acknowledge(statement=bad), 422, "validation", "/statement")
    good = statement(key, cid, gid, ended.ended_at)
    made = ended.acknowledge(statement=good)
    assert made.status_code == 201, made.text
    assert made.json()["method"] == "signed" and made.json()["statement"] == good
    receipts = client.get(
        f"/v1/me/receipts?grant_id={gid}", headers=bearer(log_in(client, "ada@example.org"))
    ).json()["items"]
    assert [r["event"] for r in receipts][:2] == ["end-acknowledged", "withdrawn"]
    bundle = receipts[0]
    said = bundle["receipt"]["acknowledgement"]
    assert said["statement"] == good and said["brand_key"]["kid"] == "grocer-1" and said["on_time"] is True
    jwks = client.get("/.well-known/jwks.json").json()["keys"]
    log_key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
    assert verify_receipt(bundle, log_key=log_key, jwks=jwks).problems == []
    # Had the broker named a key that did not sign the statement, the check would say so.
    other_key = ECKey.generate_key("P-256", parameters={"kid": "grocer-1"}).as_dict(private=False)
    mismatch = ReceiptReport()
    check_brand_statement(
        {**bundle["receipt"], "acknowledgement": {**said, "brand_key": other_key}}, mismatch
    )
    assert mismatch.problems == [
        "the brand's signed statement does not verify with the key the receipt names"
    ]


def test_every_way_a_grant_ends_calls_for_an_acknowledgement(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    token = lambda: bearer(brand_token(client, brand))  # noqa: E731
    by_brand = Brand(client, brand, publish_offer(client, brand_token(client, brand), title="Ended by us"))
    assert client.delete(f"/v1/grants/{by_brand.grant_id}", headers=token()).status_code == 204
    expiring = Brand(client, brand, publish_offer(client, brand_token(client, brand), grant_duration_days=1))
    deleted = Brand(client, brand, publish_offer(client, brand_token(client, brand), title="Until deleted"))
    state = client.get(f"/v1/grants/{by_brand.grant_id}", headers=token()).json()["acknowledgement"]
    assert state["status"] == "awaiting"
    clock.advance(days=1)  # the one-day grant lapsed: due 72 hours after its expiry, swept or not
    lapsed = client.get(f"/v1/grants/{expiring.grant_id}", headers=token()).json()
    assert lapsed["status"] == "expired" and lapsed["acknowledgement"]["status"] == "awaiting"
    assert instant(lapsed["acknowledgement"]["acknowledge_by"]) == instant(lapsed["expires_at"]) + timedelta(
        hours=72
    )
    runtime.lifecycle.sweep(runtime.sessions)
    swept = client.get(f"/v1/grants/{expiring.grant_id}", headers=token()).json()["acknowledgement"]
    assert swept == lapsed["acknowledgement"]
    assert client.delete("/v1/me", headers=bearer(log_in(client, "ada@example.org"))).status_code == 200
    gone = client.get(f"/v1/grants/{deleted.grant_id}", headers=token()).json()
    assert gone["account_deleted"] and gone["acknowledgement"]["status"] == "awaiting"


def instant(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def test_a_brand_with_only_an_encryption_key_acknowledges_plainly(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session, clock: FakeClock
) -> None:
    """A key to receive self-custody grants (use enc) is not one to sign with: the brand acknowledges
    with its client authentication, as a brand without keys does."""
    key = ECKey.generate_key("P-256", parameters={"kid": "grocer-enc", "use": "enc"})
    row = db.exec(select(BrandRow).where(BrandRow.client_id == brand.client_id)).one()
    row.jwks = {"keys": [key.as_dict(private=False)]}
    db.add(row)
    db.commit()
    ended = Ended(client, brand, clock)
    made = ended.plainly()
    assert made.status_code == 201, made.text
    assert made.json()["method"] == "client-authentication"
