"""Disputes that end in a decision: either party escalates once the brand had its say, the customer
agrees to show the file, one auditor decides; upheld means deliver again or lose access, rejected
means the value counts as delivered. Time is the injected clock."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table
from sqlmodel import Session, SQLModel, col, select
from support.core import FakeClock, bearer, log_in, sign_up
from support.mail import last_message, text_of
from support.oauth import BrandCredentials, authorize_params, brand_token, parse_form, pkce, portal_login
from support.problems import assert_problem
from support.value import VOUCHER, Brand, logged, value_offer

from broker.accounts.models import Auditor
from broker.accounts.models import Brand as BrandRow
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from broker.value.models import Delivery, Escalation
from broker.webhooks.models import WebhookMessage
from broker.webhooks.schemas import WebhookCreate
from clients.auditor.receipt import verify_receipt
from clients.auditor.tlog import parse_verifier_key

REASON, ANSWER = "the code was refused at the till", "it works now, please try again"
REASONS = "The brand's voucher was refused twice; it offered nothing else."


class Dispute:
    """One delivered, disputed obligation of Ada's grant with Green Grocer, and the calls on it."""

    def __init__(self, client: TestClient, brand: BrandCredentials, customer: str) -> None:
        self.client, self.brand = client, brand
        self.side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
        self.obligation = self.side.deliver(**VOUCHER).json()["id"]
        disputed = client.post(
            f"/v1/me/value/{self.obligation}/dispute", json={"reason": REASON}, headers=self.me
        )
        assert disputed.status_code == 200, disputed.text

    @property
    def me(self) -> dict[str, str]:
        """A fresh session: the clock walks past a session's idle timeout."""
        return bearer(log_in(self.client, "ada@example.org"))

    @property
    def at_brand(self) -> str:
        return f"/v1/grants/{self.side.grant_id}/value/{self.obligation}"

    def answer(self) -> None:
        token = brand_token(self.client, self.brand)
        answer = self.client.post(f"{self.at_brand}/answer", json={"answer": ANSWER}, headers=bearer(token))
        assert answer.status_code == 200, answer.text

    def brand_escalates(self) -> Any:
        return self.client.post(
            f"{self.at_brand}/escalation", headers=bearer(brand_token(self.client, self.brand))
        )

    def customer_escalates(self, share: object = True) -> Any:
        body = {"share_file_with_auditors": share}
        return self.client.post(f"/v1/me/value/{self.obligation}/escalation", json=body, headers=self.me)

    def decline(self) -> Any:
        return self.client.delete(f"/v1/me/value/{self.obligation}/escalation", headers=self.me)

    def mine(self) -> dict[str, Any]:
        items = self.client.get("/v1/me/value", headers=self.me).json()["items"]
        found: dict[str, Any] = next(item for item in items if item["id"] == self.obligation)
        return found


@pytest.fixture
def dispute(client: TestClient, brand: BrandCredentials, customer: str) -> Dispute:
    return Dispute(client, brand, customer)


@pytest.fixture
def auditor(runtime: Runtime, db: Session) -> dict[str, str]:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return bearer(token)


def stored(db: Session) -> bytes:
    """Every value in every table, as bytes: what someone with the database files could read."""
    found: list[bytes] = []
    for table in SQLModel.metadata.sorted_tables:
        assert isinstance(table, Table)
        for row in db.connection().execute(table.select()):
            found += [v if isinstance(v, bytes) else str(v).encode() for v in row]
    return b"\n".join(found)


def decide(
    client: TestClient, auditor: dict[str, str], escalation: str, outcome: str, reasons: str = REASONS
) -> Any:
    body = {"outcome": outcome, "reasons": reasons}
    return client.post(f"/v1/audit/disputes/{escalation}/decision", json=body, headers=auditor)


def test_the_customer_escalates_once_the_brand_had_a_week_to_answer(
    client: TestClient, dispute: Dispute, clock: FakeClock, db: Session
) -> None:
    clock.advance(days=6, hours=23)
    early = dispute.customer_escalates()
    assert_problem(early, 409, "dispute-not-ready")
    assert "has until 2026-11-30T09:00:00+00:00 to answer" in early.json()["detail"]
    clock.advance(hours=1)
    made = dispute.customer_escalates()
    assert made.status_code == 201, made.text
    escalation = made.json()
    assert escalation | {"status": "open", "escalated_by": "customer", "decision": None} == escalation
    again = dispute.customer_escalates()
    assert again.status_code == 200 and again.json()["id"] == escalation["id"], (
        "escalating twice is one escalation"
    )
    assert dispute.mine()["escalation"]["id"] == escalation["id"]
    assert [e["kind"] for e in logged(db, "dispute.")] == ["dispute.escalated"]
    assert logged(db, "dispute.")[0]["shared"] is True


def test_escalating_needs_the_customers_agreement_to_share_the_file(
    dispute: Dispute, clock: FakeClock
) -> None:
    clock.advance(days=8)
    for share in (False, None, "yes"):
        refused = dispute.customer_escalates(share)
        assert_problem(refused, 422, "validation")
        assert refused.json()["errors"][0]["pointer"] == "/share_file_with_auditors"


def test_escalating_an_answered_dispute_rejects_the_answer(dispute: Dispute, db: Session) -> None:
    dispute.answer()
    made = dispute.customer_escalates()
    assert made.status_code == 201, made.text
    assert dispute.mine()["dispute"]["answer_rejected_at"] is not None
    kinds = [e["kind"] for e in logged(db, "value.answer") + logged(db, "dispute.")]
    assert kinds == ["value.answer_rejected", "dispute.escalated"]


def test_only_a_dispute_can_be_escalated(client: TestClient, brand: BrandCredentials, customer: str) -> None:
    side = Brand(client, brand, value_offer(client, brand, when="within_days", days=7))
    obligation = side.deliver(**VOUCHER).json()["id"]
    body = {"share_file_with_auditors": True}
    refused = client.post(f"/v1/me/value/{obligation}/escalation", json=body, headers=bearer(customer))
    assert_problem(refused, 409, "dispute-not-ready")
    assert "delivered, not disputed" in refused.json()["detail"]


def test_nobody_escalates_someone_elses_dispute(
    client: TestClient, dispute: Dispute, runtime: Runtime, db: Session, clock: FakeClock
) -> None:
    clock.advance(days=8)
    other = register_brand(
        db, name="Other Shop", redirect_uris=["https://other.example/cb"], public=False, clock=runtime.clock
    )
    db.commit()
    token = brand_token(client, BrandCredentials(other.brand.client_id, other.client_secret))
    assert_problem(client.post(f"{dispute.at_brand}/escalation", headers=bearer(token)), 404, "not-found")
    eve = bearer(sign_up(client, "eve@example.org"))
    body = {"share_file_with_auditors": True}
    stolen = client.post(f"/v1/me/value/{dispute.obligation}/escalation", json=body, headers=eve)
    assert_problem(stolen, 404, "not-found")
    assert_problem(
        client.delete(f"/v1/me/value/{dispute.obligation}/escalation", headers=eve), 404, "not-found"
    )
    assert db.exec(select(Escalation)).all() == []


def test_the_brand_escalates_once_its_answer_is_rejected_and_the_customer_agrees(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], runtime: Runtime, db: Session
) -> None:
    dispute.answer()
    assert_problem(dispute.brand_escalates(), 409, "dispute-not-ready")  # they may still accept it
    rejected = client.post(f"/v1/me/value/{dispute.obligation}/answer-rejection", headers=dispute.me)
    assert rejected.status_code == 200 and rejected.json()["dispute"]["answer_rejected_at"]
    made = dispute.brand_escalates()
    assert made.status_code == 201, made.text
    escalation = made.json()["id"]
    assert made.json()["status"] == "awaiting_customer" and made.json()["shared_at"] is None
    assert dispute.brand_escalates().status_code == 200
    assert client.get("/v1/audit/disputes", headers=auditor).json()["items"] == [], "not open until agreed"
    waiting = client.get("/v1/audit/disputes?status=awaiting_customer", headers=auditor).json()["items"]
    assert [item["id"] for item in waiting] == [escalation]
    before = client.get(f"/v1/audit/disputes/{escalation}", headers=auditor).json()
    assert before["file"] is None, "the auditors see nothing before the customer agrees"
    assert_problem(decide(client, auditor, escalation, "upheld"), 409, "dispute-not-ready")
    mail = last_message(runtime, "ada@example.org")
    assert "asks an auditor to decide" in str(mail["Subject"]) and "Agree or decline" in text_of(mail)
    agreed = dispute.customer_escalates()
    assert (
        agreed.status_code == 200 and agreed.json()["status"] == "open" and agreed.json()["id"] == escalation
    )
    seen = client.get(f"/v1/audit/disputes/{escalation}", headers=auditor).json()
    file = seen["file"]
    assert file["dispute"]["reason"] == REASON and file["answer"]["answer"] == ANSWER
    token = bearer(brand_token(client, dispute.brand))
    later = client.post(f"{dispute.at_brand}/answer", json={"answer": "A new code: GROCER-11"}, headers=token)
    assert later.status_code == 200
    seen = client.get(f"/v1/audit/disputes/{escalation}", headers=auditor).json()
    assert seen["file"]["answer"]["answer"] == "A new code: GROCER-11", "the auditors see the latest answer"
    assert file["deliveries"][0]["redemption"] == VOUCHER["redemption"]
    assert file["obligation"]["declared"]["kind"] == "voucher" and file["answer_rejected_at"]
    kinds = [e["kind"] for e in logged(db, "dispute.")]
    assert kinds == ["dispute.escalated", "dispute.shared", "dispute.file_read", "dispute.file_read"]
    timeline = client.get("/v1/me/access-log", headers=dispute.me).json()["items"]
    assert "dispute.file_read" in [item["kind"] for item in timeline]


def test_a_customer_who_declines_keeps_the_file_from_the_auditors(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(days=8)
    escalation = dispute.brand_escalates().json()["id"]
    declined = dispute.decline()
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert dispute.decline().status_code == 200, "declining twice is one answer"
    assert client.get(f"/v1/audit/disputes/{escalation}", headers=auditor).json()["file"] is None
    assert_problem(decide(client, auditor, escalation, "rejected"), 409, "dispute-decided")
    assert_problem(dispute.brand_escalates(), 409, "dispute-decided")
    brought = dispute.customer_escalates()
    assert brought.status_code == 201 and brought.json()["escalated_by"] == "customer", (
        "they may still bring it"
    )
    assert_problem(dispute.decline(), 409, "dispute-decided")


def test_an_upheld_dispute_must_be_delivered_again_or_reads_stop(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock, db: Session
) -> None:
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    decided = decide(client, auditor, escalation, "upheld")
    assert decided.status_code == 201, decided.text
    decision = decided.json()["decision"]
    assert decision["redeliver_by"].startswith("2026-12-08T09:00")
    assert decision["reasons"] == REASONS
    assert decision["reasons_sha256"] == hashlib.sha256(REASONS.encode()).hexdigest()
    mine = dispute.mine()
    assert mine["state"] == "owed" and mine["due_at"] == decision["redeliver_by"]
    assert mine["escalation"]["decision"]["outcome"] == "upheld"
    assert dispute.side.read().status_code == 200, "the brand has a week"
    clock.advance(days=7)
    refused = dispute.side.read()
    assert_problem(refused, 403, "value-overdue")
    assert dispute.side.grant_status() == "suspended"
    again = dispute.side.deliver(**{**VOUCHER, "redemption": "GROCER-10-NEW"})
    assert again.status_code == 201, again.text
    assert dispute.side.read().status_code == 200 and dispute.side.grant_status() == "active"
    assert dispute.mine()["delivery"]["redemption"] == "GROCER-10-NEW", "the latest delivery counts"
    assert len(db.exec(select(Delivery)).all()) == 2
    upheld = logged(db, "dispute.decided")[0]
    assert (upheld["outcome"], upheld["actor"], upheld["redeliver_by"]) == (
        "upheld",
        "auditor",
        "2026-12-08T09:00:00.000000Z",
    )


def test_a_rejected_dispute_counts_as_delivered_for_good(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    decided = decide(client, auditor, escalation, "rejected")
    assert decided.status_code == 201 and decided.json()["decision"]["redeliver_by"] is None
    assert dispute.mine()["state"] == "confirmed"
    again = client.post(
        f"/v1/me/value/{dispute.obligation}/dispute", json={"reason": "still"}, headers=dispute.me
    )
    assert_problem(again, 409, "conflict")
    assert_problem(dispute.customer_escalates(), 409, "dispute-not-ready")


def test_a_decision_is_idempotent_final_and_for_auditors_only(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], runtime: Runtime, db: Session,
    customer: str, brand: BrandCredentials, clock: FakeClock,
) -> None:  # fmt: skip
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    for headers in (bearer(customer), bearer(brand_token(client, brand)), {}):
        assert_problem(
            client.post(f"/v1/audit/disputes/{escalation}/decision", json={}, headers=headers),
            401,
            "unauthenticated",
        )
    for body, pointer in (
        ({"outcome": "upheld"}, "/reasons"),
        ({"outcome": "upheld", "reasons": "   too short  "}, "/reasons"),
        ({"outcome": "maybe", "reasons": REASONS}, "/outcome"),
        ({"reasons": REASONS}, "/outcome"),
    ):
        refused = client.post(f"/v1/audit/disputes/{escalation}/decision", json=body, headers=auditor)
        assert_problem(refused, 422, "validation")
        assert refused.json()["errors"][0]["pointer"] == pointer
    assert decide(client, auditor, escalation, "upheld").status_code == 201
    same = decide(client, auditor, escalation, "upheld")
    assert same.status_code == 200 and same.json()["decision"]["outcome"] == "upheld"
    assert_problem(decide(client, auditor, escalation, "rejected"), 409, "dispute-decided")
    assert_problem(decide(client, auditor, escalation, "upheld", REASONS + " More."), 409, "dispute-decided")
    _, other = runtime.auditors.create(db, "Second Opinion LLP")
    db.commit()
    assert_problem(decide(client, bearer(other), escalation, "upheld"), 409, "dispute-decided")
    assert_problem(
        decide(client, auditor, "00000000-0000-4000-8000-000000000000", "upheld"), 404, "not-found"
    )
    assert len(logged(db, "dispute.decided")) == 1


def test_ending_the_dispute_withdraws_its_escalation(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    confirmed = client.post(f"/v1/me/value/{dispute.obligation}/confirm", headers=dispute.me)
    assert confirmed.status_code == 200 and confirmed.json()["escalation"]["status"] == "withdrawn"
    assert_problem(decide(client, auditor, escalation, "upheld"), 409, "dispute-decided")
    assert client.get("/v1/audit/disputes", headers=auditor).json()["items"] == []


def test_the_decision_is_a_signed_receipt_the_customer_verifies_offline(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock, db: Session
) -> None:
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    decision = decide(client, auditor, escalation, "upheld").json()["decision"]
    receipts = client.get(f"/v1/me/receipts?grant_id={dispute.side.grant_id}", headers=dispute.me).json()[
        "items"
    ]
    bundle = next(r for r in receipts if r["event"] == "dispute-decided")
    assert bundle["id"] == decision["receipt_id"]
    said = bundle["receipt"]["decision"]
    assert (
        said | {"escalation": escalation, "outcome": "upheld", "reasons_sha256": decision["reasons_sha256"]}
        == said
    )
    auditor_row = db.exec(select(Auditor)).one()
    assert said["decided_by"] == {
        "id": str(auditor_row.id),
        "name": "Independent Audit Ltd",
        "role": "auditor",
    }
    jwks = client.get("/.well-known/jwks.json").json()
    key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
    assert verify_receipt(bundle, log_key=key, jwks=jwks["keys"]).problems == []
    forged = {**bundle, "receipt": {**bundle["receipt"], "decision": {**said, "outcome": "rejected"}}}
    assert verify_receipt(forged, log_key=key, jwks=jwks["keys"]).problems, "a changed decision fails"
    assert hashlib.sha256(REASONS.encode()).hexdigest() == said["reasons_sha256"], (
        "the reasons are the signed ones"
    )
    shown = client.get(f"/v1/audit/disputes/{escalation}", headers=auditor).json()
    assert shown["receipt"]["id"] == bundle["id"]


def test_the_brand_hears_by_webhook_and_the_customer_by_mail(
    client: TestClient,
    dispute: Dispute,
    auditor: dict[str, str],
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    grocer = db.exec(select(BrandRow).where(BrandRow.client_id == dispute.brand.client_id)).one()
    hooks = replace(runtime.webhooks, allow_private=True)  # the endpoint is never called here
    hooks.register(db, grocer.id, WebhookCreate(url="http://127.0.0.1:9/hooks"))
    db.commit()
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    clock.advance(minutes=5)  # the auditor decides later: the two messages must not share a time
    decide(client, auditor, escalation, "rejected")
    types = [m.event_type for m in db.exec(select(WebhookMessage).order_by(col(WebhookMessage.created_at)))]
    assert types[-2:] == ["dispute.escalated", "dispute.decided"]
    mail = last_message(runtime, "ada@example.org")
    assert "decided your dispute" in str(mail["Subject"]) and "counts as delivered" in text_of(mail)


def test_nothing_of_the_dispute_file_is_plaintext_at_rest(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], db: Session
) -> None:
    dispute.answer()
    escalation = dispute.customer_escalates().json()["id"]
    assert decide(client, auditor, escalation, "upheld").status_code == 201
    assert (
        client.get(f"/v1/audit/disputes/{escalation}", headers=auditor).json()["file"]["dispute"]["reason"]
        == REASON
    )
    dumped = stored(db)
    assert escalation.encode() in dumped, "we looked at the real rows"
    for words in (REASON, ANSWER, VOUCHER["redemption"], REASONS):
        assert words.encode() not in dumped, f"{words!r} is stored in clear"


def test_the_value_report_and_the_record_count_what_was_upheld(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    decide(client, auditor, escalation, "upheld")
    (row,) = client.get("/v1/audit/reports/value", headers=auditor).json()["brands"]
    assert row["record"] == {"fell_due": 0, "on_time": 0, "on_time_percent": None, "disputes_upheld": 1}
    clock.advance(days=8)  # the re-delivery deadline passed with nothing delivered
    (row,) = client.get("/v1/audit/reports/value", headers=auditor).json()["brands"]
    assert row["record"] == {"fell_due": 1, "on_time": 0, "on_time_percent": 0, "disputes_upheld": 1}


def test_the_consent_screen_shows_the_brands_record_before_the_customer_agrees(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    def screen() -> str:
        assert portal_login(client, "ada@example.org").status_code == 303
        _, challenge = pkce()
        offer = value_offer(client, dispute.brand, when="within_days", days=7)
        page = client.get("/oauth/authorize", params=authorize_params(dispute.brand, offer["id"], challenge))
        assert page.status_code == 200, page.text[:300]
        return page.text

    before = screen()
    assert (
        "nothing it owed has fallen due yet; no dispute upheld against Green Grocer by an auditor" in before
    )
    clock.advance(days=8)
    escalation = dispute.customer_escalates().json()["id"]
    decide(client, auditor, escalation, "upheld")
    clock.advance(days=8)
    assert "0 of 1 values delivered on time (0%); 1 dispute upheld against Green Grocer" in screen()


def test_the_portal_walks_the_customer_through_a_dispute(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    assert portal_login(client, "ada@example.org").status_code == 303
    page = client.get(f"/portal/grants/{dispute.side.grant_id}").text
    assert "you can ask an auditor to decide" in page and "Ask an auditor to decide" not in page
    dispute.answer()
    assert portal_login(client, "ada@example.org").status_code == 303
    page = client.get(f"/portal/grants/{dispute.side.grant_id}")
    token = dict(parse_form(page.text).fields)["csrf_token"]
    unticked = client.post(f"/portal/value/{dispute.obligation}/escalation", data={"csrf_token": token})
    assert (
        unticked.status_code == 422 and "Tick the box to show the auditors the dispute file" in unticked.text
    )
    data = {"csrf_token": token, "share": "yes"}
    done = client.post(f"/portal/value/{dispute.obligation}/escalation", data=data, follow_redirects=False)
    assert done.status_code == 303
    assert "An auditor is deciding your dispute" in client.get(f"/portal/grants/{dispute.side.grant_id}").text


def test_a_new_dispute_after_a_new_delivery_is_a_new_escalation(
    client: TestClient, dispute: Dispute, auditor: dict[str, str], clock: FakeClock
) -> None:
    dispute.answer()
    first = dispute.customer_escalates().json()["id"]
    assert decide(client, auditor, first, "upheld").status_code == 201
    clock.advance(hours=1)
    assert dispute.side.deliver(**{**VOUCHER, "redemption": "GROCER-10-NEW"}).status_code == 201
    clock.advance(hours=1)
    again = client.post(
        f"/v1/me/value/{dispute.obligation}/dispute", json={"reason": "refused again"}, headers=dispute.me
    )
    assert again.status_code == 200, again.text
    assert_problem(
        dispute.brand_escalates(), 409, "dispute-not-ready"
    )  # the old rejection does not carry over
    assert_problem(dispute.customer_escalates(), 409, "dispute-not-ready")  # the brand may answer anew
    clock.advance(days=7)
    second = dispute.customer_escalates()
    assert second.status_code == 201 and second.json()["id"] != first
    assert decide(client, auditor, second.json()["id"], "rejected").status_code == 201
    assert dispute.mine()["state"] == "confirmed"
    assert_problem(decide(client, auditor, first, "rejected"), 409, "dispute-decided")
