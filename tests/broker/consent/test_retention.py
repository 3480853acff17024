"""When a grant ends, deletion falls due at the end of the offer's retention: the brand attests it,
the sweep tells and logs an overdue one once, the customer sees where it stands and the auditor's
report counts it. Time is the injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, log_in, make_settings, new_database_url
from support.lifecycle import BrandSide, Recorder, entries_about
from support.oauth import OFFER, REDIRECT, BrandCredentials, brand_token

from broker.audit.entries import Actor
from broker.consent.models import Grant
from broker.consent.notices import NoticeType
from broker.consent.offer_schemas import OfferDraft
from broker.db import alembic_config
from broker.oauth.clients import register_brand
from broker.runtime import Runtime, build_runtime
from vault.models import VaultSecret

RETENTION = timedelta(days=30)  # OFFER's retention_days


@pytest.fixture
def told(runtime: Runtime) -> Recorder:
    recorder = Recorder()
    runtime.notices.subscribers.append(recorder)
    return recorder


@pytest.fixture
def auditor(runtime: Runtime, db: Session) -> dict[str, str]:
    _, token = runtime.auditors.create(db, "Audit")
    db.commit()
    return bearer(token)


def attest(client: TestClient, brand: BrandCredentials, grant_id: str, **body: Any) -> Any:
    return client.post(
        f"/v1/grants/{grant_id}/deletion",
        json={"outcome": "deleted", **body},
        headers=bearer(brand_token(client, brand)),
    )


def me(client: TestClient) -> dict[str, str]:
    """A fresh customer login (sessions last 8 hours; these tests walk days)."""
    return bearer(log_in(client, "ada@example.org"))


def my_grant(client: TestClient, grant_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/me/grants/{grant_id}", headers=me(client))
    assert answer.status_code == 200, answer.text
    grant: dict[str, Any] = answer.json()
    return grant


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_revoked_grant_falls_due_is_told_once_when_overdue_and_a_late_attestation_is_reported(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    told: Recorder,
    auditor: dict[str, str],
) -> None:
    side = BrandSide(client, brand, offer)
    live = my_grant(client, side.grant_id)
    assert live["deletion_due_at"] is None and live["deletion"]["status"] == "not-due"
    clock.advance(days=3)
    revoked_at = clock.now
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=me(client)).status_code == 204

    ended = my_grant(client, side.grant_id)
    assert at(ended["deletion_due_at"]) == revoked_at + RETENTION
    assert ended["deletion"] == {"status": "due", "attested_at": None, "outcome": None, "completed_at": None}
    runtime.lifecycle.sweep(runtime.sessions)
    assert NoticeType.DELETION_DUE not in [n.type for n in told.seen], "not overdue before its due date"

    clock.advance(days=30, seconds=1)
    assert runtime.lifecycle.sweep(runtime.sessions) == 1
    assert runtime.lifecycle.sweep(runtime.sessions) == 0
    (due,) = [n for n in told.seen if n.type is NoticeType.DELETION_DUE]
    assert due.grant_id == UUID(side.grant_id)
    assert at(str(due.data["deletion_due_at"])) == at(ended["deletion_due_at"])
    (overdue_entry,) = entries_about(db, side.grant_id, "deletion.overdue")
    assert overdue_entry["actor"] == "broker" and "subject" in overdue_entry
    assert my_grant(client, side.grant_id)["deletion"]["status"] == "overdue"

    report = client.get("/v1/audit/reports/deletion", headers=auditor).json()
    (row,) = report["brands"]
    assert (row["brand"], row["ended"], row["due"], row["overdue"]) == ("Green Grocer", 1, 0, 1)
    (late,) = report["overdue"]
    assert late["grant_id"] == side.grant_id and late["days_overdue"] == 0.0
    assert "customer" not in str(report) and "subject" not in str(report)

    clock.advance(days=2)
    completed = clock.now - timedelta(days=1)
    answer = attest(client, brand, side.grant_id, completed_at=completed.isoformat(), note="wiped CRM row 7")
    assert answer.status_code == 201, answer.text
    attestation = answer.json()
    assert attestation["on_time"] is False and attestation["outcome"] == "deleted"
    assert at(attestation["completed_at"]) == completed and at(attestation["attested_at"]) == clock.now
    assert attestation["deletion_due_at"] == ended["deletion_due_at"]

    seen = my_grant(client, side.grant_id)["deletion"]
    assert seen["status"] == "attested" and seen["outcome"] == "deleted"
    assert at(seen["completed_at"]) == completed
    report = client.get("/v1/audit/reports/deletion", headers=auditor).json()
    assert report["brands"][0]["attested_late"] == 1 and report["overdue"] == []
    (entry,) = entries_about(db, side.grant_id, "deletion.attested")
    assert (entry["outcome"], entry["actor"]) == ("deleted", "brand")
    assert "CRM" not in str(entry), "the note is not in the log"
    secret = db.exec(select(VaultSecret).where(VaultSecret.label == f"deletion-note:{side.grant_id}")).one()
    assert b"CRM" not in secret.ciphertext, "the note is sealed in the customer's vault"

    looked = client.get(f"/v1/grants/{side.grant_id}/deletion", headers=bearer(brand_token(client, brand)))
    assert looked.status_code == 200 and looked.json() == attestation
    again = attest(client, brand, side.grant_id, completed_at=completed.isoformat())
    assert again.status_code == 409
    assert again.json()["type"].endswith("/deletion-already-attested")


def test_an_expired_grant_attested_within_retention_is_on_time(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    clock: FakeClock,
    told: Recorder,
    auditor: dict[str, str],
) -> None:
    side = BrandSide(client, brand, offer)
    clock.advance(days=offer["grant_duration_days"], hours=1)
    runtime.lifecycle.sweep(runtime.sessions)
    ended = my_grant(client, side.grant_id)
    assert ended["status"] == "expired"
    assert at(ended["deletion_due_at"]) == at(ended["expires_at"]) + RETENTION
    clock.advance(days=5)
    completed = at(ended["expires_at"]).isoformat()
    answer = attest(client, brand, side.grant_id, outcome="de-identified", completed_at=completed)
    assert answer.status_code == 201, answer.text
    assert answer.json()["on_time"] is True and answer.json()["outcome"] == "de-identified"
    clock.advance(days=60)
    assert runtime.lifecycle.sweep(runtime.sessions) == 0, "an attested deletion is never overdue"
    assert NoticeType.DELETION_DUE not in [n.type for n in told.seen]
    (row,) = client.get("/v1/audit/reports/deletion", headers=auditor).json()["brands"]
    assert (row["ended"], row["attested_on_time"], row["attested_late"], row["overdue"]) == (1, 1, 0, 0)


def test_attesting_a_live_grant_is_409_saying_when_it_ends(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    side = BrandSide(client, brand, offer)
    answer = attest(client, brand, side.grant_id, completed_at=clock.now.isoformat())
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/grant-not-ended")
    assert problem["expires_at"] in problem["detail"]
    assert f"DELETE /v1/grants/{side.grant_id}" in problem["detail"]
    missing = client.get(f"/v1/grants/{side.grant_id}/deletion", headers=bearer(brand_token(client, brand)))
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/deletion-not-attested")
    assert missing.json()["deletion_due_at"] is None


def test_completed_at_in_the_future_or_before_the_end_and_bad_bodies_are_422(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    side = BrandSide(client, brand, offer)
    clock.advance(days=1)
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=me(client)).status_code == 204
    ended_at = clock.now
    clock.advance(days=1)
    for completed in (clock.now + timedelta(minutes=1), ended_at - timedelta(seconds=1)):
        answer = attest(client, brand, side.grant_id, completed_at=completed.isoformat())
        assert answer.status_code == 422, answer.text
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/completed_at"]
    now = clock.now.isoformat()
    for body in (
        {"outcome": "shredded", "completed_at": now},
        {"outcome": "deleted", "completed_at": "2026-11-24T09:00:00"},  # no offset
        {"outcome": "deleted", "completed_at": "yesterday"},
        {"outcome": "deleted", "completed_at": now, "note": "x" * 501},
        {"outcome": "deleted", "completed_at": now, "extra": 1},
    ):
        answer = client.post(
            f"/v1/grants/{side.grant_id}/deletion", json=body, headers=bearer(brand_token(client, brand))
        )
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    assert attest(client, brand, side.grant_id, completed_at=now).status_code == 201


def test_another_brands_grant_is_404_and_attesting_needs_grants_write(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    clock: FakeClock,
    db: Session,
) -> None:
    side = BrandSide(client, brand, offer)
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=me(client)).status_code == 204
    body = {"outcome": "deleted", "completed_at": clock.now.isoformat()}
    url = f"/v1/grants/{side.grant_id}/deletion"
    stranger = bearer(brand_token(client, rival))
    assert client.post(url, json=body, headers=stranger).status_code == 404
    assert client.get(url, headers=stranger).status_code == 404
    reader = bearer(brand_token(client, brand, scope="grants:read"))
    assert client.post(url, json=body, headers=reader).status_code == 403
    grant = db.get(Grant, UUID(side.grant_id))
    assert grant is not None and grant.deletion_attested_at is None


def test_the_deletion_report_is_for_auditors_and_pages_overdue_grants(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    clock: FakeClock,
    auditor: dict[str, str],
) -> None:
    sides = [BrandSide(client, brand, offer) for _ in range(3)]
    for side in sides:
        assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=me(client)).status_code == 204
        clock.advance(hours=1)
    clock.advance(days=31)
    first = client.get("/v1/audit/reports/deletion", params={"limit": 2}, headers=auditor).json()
    assert first["brands"][0]["overdue"] == 3 and len(first["overdue"]) == 2
    rest = client.get(
        "/v1/audit/reports/deletion", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auditor
    ).json()
    listed = [row["grant_id"] for row in first["overdue"] + rest["overdue"]]
    assert listed == [side.grant_id for side in reversed(sides)], "most recently due first, each once"
    assert rest["next_cursor"] is None
    assert client.get("/v1/audit/reports/deletion", headers=bearer(customer)).status_code == 401
    bad = client.get("/v1/audit/reports/deletion", params={"cursor": "nope"}, headers=auditor)
    assert bad.status_code == 422


def test_migration_0011_backfills_confirmation_and_deletion_dates_and_downgrades(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "head")
    built = build_runtime(make_settings(tmp_path / "var", url), clock=FakeClock())
    try:
        with built.sessions() as session:
            customer = built.accounts.sign_up(session, "ada@example.org", STRONG_PASSWORD)
            registered = register_brand(
                session, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=built.clock
            )
            offer = built.offers.create(session, registered.brand, OfferDraft.model_validate(OFFER))
            live = built.grants.create(session, customer_id=customer.id, offer=offer, fields=["email"])
            ended = built.grants.create(session, customer_id=customer.id, offer=offer, fields=["email"])
            built.grants.revoke(session, ended, by=Actor.BRAND)
            live_id, ended_id, created_at = live.id, ended.id, live.created_at
            session.commit()
        command.downgrade(config, "0008")
        command.upgrade(config, "head")
        with built.sessions() as session:
            stored = session.get(Grant, live_id)
            assert stored is not None and stored.last_confirmed_at == created_at
            assert stored.deletion_due_at is None and stored.deletion_attested_at is None
            stored = session.get(Grant, ended_id)
            assert stored is not None and stored.deletion_due_at == stored.status_changed_at + RETENTION
    finally:
        built.dispose()
