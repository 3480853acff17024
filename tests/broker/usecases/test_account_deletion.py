"""Deleting an account destroys the customer, not what others are owed or must do.

A brand read, the customer revoked (deletion now due, 5 GBP still owed), then deleted the account: the
brand still sees its grant, its value, its receipts and can attest the deletion and deliver; the
auditor's reports still count the due deletion and the owed value, with the customer shown as
deleted; the log still verifies. The profile, its key, the email's blind index and the sessions go.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect
from sqlalchemy import table as sa_table
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, make_settings, new_database_url
from support.lifecycle import BrandSide
from support.oauth import OFFER, REDIRECT, BrandCredentials, brand_token, publish_offer
from support.webhooks import hook_token, register

from broker.accounts.models import AccountTombstone, Customer, CustomerSession, LoginThrottle
from broker.audit import verify as server
from broker.audit.models import AuditEntry
from broker.consent.models import Grant
from broker.consent.offer_schemas import OfferDraft
from broker.db import alembic_config, create_db_engine, migrate
from broker.oauth.clients import register_brand
from broker.receipts.models import Receipt
from broker.runtime import Runtime, build_runtime
from broker.settings import Settings
from broker.value.models import Obligation
from broker.webhooks.models import WebhookMessage
from clients.auditor import parse_verifier_key
from clients.auditor import verify as offline
from clients.auditor.api import AuditorClient
from vault.models import VaultField, VaultKey

FIVE_POUNDS = {"kind": "voucher", "amount": "5.00", "currency": "GBP", "description": "5 GBP voucher",
               "due": {"when": "within_days", "days": 7}}  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url, webhooks_allow_private=True)


@pytest.fixture
def auditor_token(runtime: Runtime, db: Session) -> str:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return token


@pytest.fixture
def auditor(client: TestClient, auditor_token: str) -> Iterator[AuditorClient]:
    """The offline auditor's client, talking to the app in-process."""
    token = auditor_token

    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.content
        )
        headers = list(answer.headers.items())
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    with AuditorClient("http://127.0.0.1:8000", token, transport=httpx.MockTransport(forward)) as http:
        yield http


def _as_auditor(client: TestClient, token: str, path: str) -> dict[str, Any]:
    answer = client.get(path, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _brand_report(report: dict[str, Any], name: str) -> dict[str, Any]:
    (row,) = [b for b in report["brands"] if b["brand"] == name]
    return row


def _customer_id(db: Session, runtime: Runtime) -> UUID:
    return db.exec(
        select(Customer.id).where(Customer.email_index == runtime.accounts.email_token("ada@example.org"))
    ).one()


def test_deleting_the_account_keeps_the_brands_grant_value_receipts_and_deletion_duty(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    auditor: AuditorClient,
    auditor_token: str,
) -> None:
    offer = publish_offer(client, brand_token(client, brand), value=FIVE_POUNDS)
    side = BrandSide(client, brand, offer)
    assert side.read().status_code == 200
    grant_id = side.grant_id
    assert client.delete(f"/v1/me/grants/{grant_id}", headers=bearer(customer)).status_code in (200, 204)
    customer_id = _customer_id(db, runtime)
    entries_before = len(db.exec(select(AuditEntry)).all())

    assert client.delete("/v1/me", headers=bearer(customer)).status_code == 200

    db.expire_all()
    assert db.get(Customer, customer_id) is None and db.get(VaultKey, customer_id) is None
    assert db.exec(select(VaultField).where(VaultField.customer_id == customer_id)).all() == []
    assert db.exec(select(CustomerSession).where(CustomerSession.customer_id == customer_id)).all() == []
    assert db.get(AccountTombstone, customer_id) is not None
    assert len(db.exec(select(AuditEntry)).all()) > entries_before  # entries stay; account.deleted added

    headers = bearer(brand_token(client, brand))
    grant = client.get(f"/v1/grants/{grant_id}", headers=headers)
    assert grant.status_code == 200, grant.text
    assert grant.json()["status"] == "revoked" and grant.json()["ended_by"] == "customer"
    assert grant.json()["account_deleted"] is True
    assert grant.json()["deletion"]["status"] == "due"
    listed = client.get("/v1/grants", headers=headers).json()["items"]
    assert [g["id"] for g in listed] == [grant_id] and listed[0]["account_deleted"] is True

    value = client.get(f"/v1/grants/{grant_id}/value", headers=headers)
    assert value.status_code == 200, value.text
    (owed,) = value.json()["items"]
    assert (owed["state"], owed["amount"], owed["currency"]) == ("owed", "5.00", "GBP")
    assert owed["account_deleted"] is True

    receipts = client.get(f"/v1/grants/{grant_id}/receipts", headers=headers)
    assert receipts.status_code == 200, receipts.text
    assert [r["event"] for r in receipts.json()["items"]] == ["withdrawn", "given"]

    deletions = _as_auditor(client, auditor_token, "/v1/audit/reports/deletion")
    row = _brand_report(deletions, "Green Grocer")
    assert (row["ended"], row["due"], row["of_deleted_accounts"]) == (1, 1, 1)
    values = _as_auditor(client, auditor_token, "/v1/audit/reports/value")
    row = _brand_report(values, "Green Grocer")
    assert (row["owed"], row["owed_to_deleted_accounts"]) == (1, 1)
    assert [t["owed"] for t in row["totals"] if t["currency"] == "GBP"] == ["5.00"]

    clock.advance(days=40)  # the deletion is overdue now: it is still reported
    deletions = _as_auditor(client, auditor_token, "/v1/audit/reports/deletion")
    (overdue,) = deletions["overdue"]
    assert overdue["grant_id"] == grant_id and overdue["account_deleted"] is True

    headers = bearer(brand_token(client, brand))

    delivered = client.post(
        f"/v1/grants/{grant_id}/value",
        json={"kind": "voucher", "amount": "5.00", "currency": "GBP", "redemption": "CODE-1"},
        headers=headers,
    )
    assert delivered.status_code == 201, delivered.text
    assert delivered.json()["state"] == "delivered"
    attested = client.post(
        f"/v1/grants/{grant_id}/deletion",
        json={"outcome": "deleted", "completed_at": clock.now.isoformat(), "note": "wiped the CRM row"},
        headers=headers,
    )
    assert attested.status_code == 201, attested.text
    assert attested.json()["on_time"] is False

    report = offline.verify_log(auditor, key=parse_verifier_key(runtime.checkpoints.verifier_key()))
    assert report.verified, report.problems
    checked = server.verify_log(db, runtime.checkpoints.verifier, origin=runtime.checkpoints.origin)
    assert checked.ok, checked.problems


def test_deleting_the_account_revokes_each_live_grant_with_its_receipt_and_webhook(
    client: TestClient, brand: BrandCredentials, customer: str, runtime: Runtime, db: Session
) -> None:
    register(client, hook_token(client, brand), "http://127.0.0.1:9/hooks")
    offer = publish_offer(client, brand_token(client, brand), value=FIVE_POUNDS)
    side = BrandSide(client, brand, offer)
    assert side.read().status_code == 200

    assert client.delete("/v1/me", headers=bearer(customer)).status_code == 200

    headers = bearer(brand_token(client, brand))
    grant = client.get(f"/v1/grants/{side.grant_id}", headers=headers).json()
    assert (grant["status"], grant["ended_by"], grant["account_deleted"]) == ("revoked", "customer", True)
    read = client.get("/v1/profile", headers=bearer(side.tokens["access_token"]))
    assert read.status_code in (401, 403)
    receipts = client.get(f"/v1/grants/{side.grant_id}/receipts", headers=headers).json()["items"]
    assert [r["event"] for r in receipts] == ["withdrawn", "given"]
    db.expire_all()
    queued = [m.event_type for m in db.exec(select(WebhookMessage))]
    assert queued.count("grant.revoked") == 1
    (owed,) = client.get(f"/v1/grants/{side.grant_id}/value", headers=headers).json()["items"]
    assert owed["state"] == "owed"  # the brand read: what it owes stays owed


def test_a_deleted_customer_cannot_log_in_and_no_blind_index_of_their_address_stays(
    client: TestClient, customer: str, runtime: Runtime, db: Session
) -> None:
    wrong = {"email": "ada@example.org", "password": "not-the-password-at-all"}
    assert client.post("/v1/sessions", json=wrong).status_code == 401  # a failure is counted by address
    email_index = runtime.accounts.email_token("ada@example.org")
    assert db.get(LoginThrottle, email_index) is not None
    assert client.delete("/v1/me", headers=bearer(customer)).status_code == 200
    db.expire_all()
    assert db.get(LoginThrottle, email_index) is None
    answer = client.post("/v1/sessions", json={"email": "ada@example.org", "password": "x" * 12})
    assert answer.status_code == 401
    db.expire_all()
    assert (
        db.exec(
            select(Customer).where(Customer.email_index == runtime.accounts.email_token("ada@example.org"))
        ).all()
        == []
    )


def test_migration_0012_drops_the_customer_cascade_and_downgrades(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    migrate(url)

    def customer_keys() -> list[str]:
        engine = create_db_engine(url)
        try:
            found = inspect(engine)
            return [
                table
                for table in ("consent_grant", "value_obligation", "consent_receipt")
                for fk in found.get_foreign_keys(table)
                if fk["referred_table"] == "customer"
            ]
        finally:
            engine.dispose()

    assert customer_keys() == []
    _a_deleted_customers_grant(tmp_path, url)
    command.downgrade(config, "0011")  # the deleted account's rows go, as the cascade had them go
    assert customer_keys() == ["consent_grant", "value_obligation", "consent_receipt"]
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            for table in ("consent_grant", "value_obligation", "consent_receipt"):
                assert connection.execute(select(func.count()).select_from(sa_table(table))).scalar() == 0
    finally:
        engine.dispose()
    command.upgrade(config, "head")
    assert customer_keys() == []


def _a_deleted_customers_grant(tmp_path: Path, url: str) -> None:
    """A grant (with its obligation and receipt) whose customer then deleted the account."""
    runtime = build_runtime(make_settings(tmp_path / "var", url))
    try:
        with runtime.sessions() as session:
            brand = register_brand(
                session, name="Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
            ).brand
            offer = runtime.offers.create(session, brand, OfferDraft.model_validate(OFFER))
            customer = runtime.accounts.sign_up(session, "ada@example.org", STRONG_PASSWORD)
            runtime.grants.create(session, customer_id=customer.id, offer=offer, fields=["email", "dietary"])
            session.commit()
            runtime.account_deletion.delete(session, customer)
            session.commit()
            kept = [len(session.exec(select(table)).all()) for table in (Grant, Obligation, Receipt)]
            assert kept == [1, 1, 2]  # the receipts of the consent and of its withdrawal
    finally:
        runtime.dispose()
