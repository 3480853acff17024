"""Every read and every consent event leaves exactly one audit entry, in the transaction that caused it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import rfc8785
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.core import FakeClock, bearer, log_in, make_settings
from support.oauth import OFFER, REDIRECT, BrandCredentials, authorized, brand_token

from broker.audit import tree
from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.consent.offer_schemas import OfferDraft
from broker.oauth.clients import register_brand
from broker.runtime import Runtime, build_runtime
from clients.auditor.tlog import leaf_hash


def logged(db: Session, *kinds: str) -> list[dict[str, Any]]:
    """The decoded entries of these kinds (all if none), in log order."""
    query = select(AuditEntry).order_by(col(AuditEntry.index))
    if kinds:
        query = query.where(col(AuditEntry.kind).in_(kinds))
    return [decode(row.entry) for row in db.exec(query)]


def kinds(db: Session) -> list[str]:
    return [entry["kind"] for entry in logged(db)]


def test_offers_published_revised_and_withdrawn_are_logged(
    client: TestClient, brand: BrandCredentials, db: Session
) -> None:
    token = brand_token(client, brand)
    first = client.post("/v1/offers", json=OFFER, headers=bearer(token)).json()
    second = client.put(f"/v1/offers/{first['id']}", json=OFFER, headers=bearer(token)).json()
    assert client.delete(f"/v1/offers/{second['id']}", headers=bearer(token)).status_code == 200
    published, revised, withdrawn = logged(db, "offer.published", "offer.withdrawn")
    assert published["offer"] == first["id"] and published["actor"] == "brand"
    assert published["fields"] == OFFER["required_fields"] + OFFER["optional_fields"]
    assert published["purpose"] == OFFER["purpose"] and "supersedes" not in published
    assert revised["offer"] == second["id"] and revised["supersedes"] == first["id"]
    assert withdrawn == withdrawn | {"kind": "offer.withdrawn", "offer": second["id"]}
    assert published["brand"] == revised["brand"] == withdrawn["brand"]


def test_a_grants_life_is_logged_in_order_with_its_terms(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    before = len(logged(db, "grant.created", "profile.read"))
    tokens = authorized(client, brand, offer)
    read = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()
    grant_id = read["grant_id"]
    narrowed = client.patch(
        f"/v1/me/grants/{grant_id}", json={"fields": ["email", "dietary"]}, headers=bearer(customer)
    )
    assert narrowed.status_code == 200, narrowed.text
    assert client.delete(f"/v1/me/grants/{grant_id}", headers=bearer(customer)).status_code == 204

    grant_kinds = ("grant.created", "profile.read", "grant.amended", "grant.revoked", "token_family.revoked")
    created, read_entry, amended, revoked, family = logged(db, *grant_kinds)[before:]
    assert [e["kind"] for e in (created, read_entry, amended, revoked, family)] == [
        "grant.created",
        "profile.read",
        "grant.amended",
        "grant.revoked",
        "token_family.revoked",
    ]
    assert {e["grant"] for e in (created, read_entry, amended, revoked, family)} == {grant_id}
    assert {e["subject"] for e in (created, read_entry, amended, revoked, family)} == {read["sub"]}
    assert created["offer"] == offer["id"] and created["purpose"] == offer["purpose"]
    assert created["actor"] == "customer" and created["expires_at"].endswith("Z")
    assert set(created["fields"]) == set(read["fields"]) - {"email_verified"} == set(read_entry["fields"])
    assert read_entry["actor"] == "brand"
    assert amended["fields"] == ["email", "dietary"] and amended["actor"] == "customer"
    assert revoked["actor"] == "customer" and family["reason"] == "grant-revoked"
    assert all(e["request_id"] for e in (created, read_entry, amended, revoked))


def test_brand_revocation_is_logged_as_the_brands(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    tokens = authorized(client, brand, offer)
    grant_id = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()["grant_id"]
    mine = brand_token(client, brand)
    assert client.delete(f"/v1/grants/{grant_id}", headers=bearer(mine)).status_code == 204
    (revoked,) = logged(db, "grant.revoked")
    assert revoked["actor"] == "brand" and revoked["grant"] == grant_id


def test_expiry_is_logged_by_the_broker_and_the_refused_read_is_not(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    tokens = authorized(client, brand, offer)
    reads_before = len(logged(db, "profile.read"))
    clock.advance(days=OFFER["grant_duration_days"])
    refused = client.get("/v1/profile", headers=bearer(tokens["access_token"]))
    assert refused.status_code in (401, 403)
    assert len(logged(db, "profile.read")) == reads_before, "a refused read must not be logged as a read"
    again = log_in(client, "ada@example.org")  # the old session has expired too
    listing = client.get("/v1/me/grants", headers=bearer(again)).json()
    assert listing["items"][0]["status"] == "expired"
    assert not logged(db, "grant.expired"), "the listing is a read: the sweep records the expiry"
    assert runtime.lifecycle.sweep(runtime.sessions) == 1
    (expired,) = logged(db, "grant.expired")
    assert expired["actor"] == "broker"


def test_refresh_token_reuse_is_logged_as_a_family_revocation(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    tokens = authorized(client, brand, offer)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert client.post("/oauth/token", data=refresh, auth=brand.auth()).status_code == 200
    assert client.post("/oauth/token", data=refresh, auth=brand.auth()).status_code == 400
    (family,) = logged(db, "token_family.revoked")
    assert family["reason"] == "refresh-reuse" and family["actor"] == "broker"


def test_account_deletion_revokes_grants_and_unlinks_the_account_from_the_log(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    authorized(client, brand, offer)
    assert client.delete("/v1/me", headers=bearer(customer)).status_code == 200
    assert kinds(db)[-4:] == ["grant.revoked", "value.cancelled", "token_family.revoked", "account.deleted"]
    assert db.exec(select(AuditEntry).where(col(AuditEntry.customer_id).is_not(None))).all() == []
    deleted = logged(db, "account.deleted")[-1]
    assert set(deleted) == {"v", "kind", "at", "actor", "request_id"}


def test_entries_are_canonical_and_hold_no_personal_values(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    runtime: Runtime,
) -> None:
    tokens = authorized(client, brand, offer)
    assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
    account = runtime.accounts.authenticate(db, customer).customer_id
    rows = db.exec(select(AuditEntry)).all()
    assert rows
    for row in rows:
        assert row.entry == rfc8785.dumps(json.loads(row.entry)), "entries are RFC 8785 canonical"
        assert row.leaf_hash == leaf_hash(row.entry)
        for secret in (b"ada@example.org", b"Ada", b"vegan", b"1990", str(account).encode(), account.bytes):
            assert secret not in row.entry


def test_a_rolled_back_event_leaves_no_entry(fresh_database_url: str, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path, fresh_database_url))
    try:
        with runtime.sessions() as session:
            registered = register_brand(
                session, name="Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
            )
            session.commit()
            runtime.offers.create(session, registered.brand, OfferDraft.model_validate(OFFER))
            session.rollback()
            session.commit()  # the session lives on: the rolled-back event must not reach the log now
            assert tree.size(session) == 0
            runtime.offers.create(session, registered.brand, OfferDraft.model_validate(OFFER))
            session.commit()
            assert tree.size(session) == 1
    finally:
        runtime.dispose()
