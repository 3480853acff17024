"""Consent receipts: one signed receipt for each grant given, amended, withdrawn or expired, naming the
audit entry of the same event; shown to the customer and the grant's brand only."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlmodel import Session, select
from support.core import FakeClock, bearer, log_in, sign_up
from support.lifecycle import grant_of
from support.oauth import BrandCredentials, brand_token, portal_login

from broker.audit.entries import Actor, decode
from broker.audit.models import AuditEntry
from broker.receipts.models import Receipt
from broker.runtime import Runtime
from clients.auditor.tlog import leaf_hash, open_note, parse_checkpoint, parse_verifier_key, verify_inclusion


def my_receipts(client: TestClient, customer: str, **params: str) -> list[dict[str, Any]]:
    listed = client.get("/v1/me/receipts", params=params, headers=bearer(customer))
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def test_each_consent_event_gets_a_receipt_naming_its_own_audit_entry(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    grant = grant_of(client, brand, offer, db)
    clock.advance(minutes=1)
    narrowed = client.patch(
        f"/v1/me/grants/{grant.id}", json={"fields": ["email", "dietary"]}, headers=bearer(customer)
    )
    assert narrowed.status_code == 200, narrowed.text
    clock.advance(minutes=1)
    assert client.delete(f"/v1/me/grants/{grant.id}", headers=bearer(customer)).status_code == 204

    receipts = my_receipts(client, customer)
    assert [r["event"] for r in receipts] == ["withdrawn", "amended", "given"]  # newest first
    expected = {"given": "grant.created", "amended": "grant.amended", "withdrawn": "grant.revoked"}
    for item in receipts:
        claims = item["receipt"]
        entry = db.get(AuditEntry, claims["audit"]["index"])
        assert entry is not None
        event = decode(entry.entry)
        assert event["kind"] == expected[item["event"]] == item["audit_entry"]["kind"]
        assert event["grant"] == claims["record_id"] == str(grant.id)
        assert event["subject"] == claims["subject"] and event["at"] == claims["event_time"]
        assert base64.b64decode(claims["audit"]["leaf_hash"]) == entry.leaf_hash
        assert claims["version"] == "consentry-receipt/1"
        assert claims["controller"]["name"] == "Green Grocer"
    given, amended, withdrawn = receipts[2]["receipt"], receipts[1]["receipt"], receipts[0]["receipt"]
    assert given["state"] == "given" and given["state_dpv"] == "https://w3id.org/dpv#ConsentGiven"
    assert given["event_by"] == "customer"
    assert [p["dpv"] for p in given["purposes"]] == ["https://w3id.org/dpv#PersonalisedAdvertising"]
    assert {d["field"] for d in given["personal_data"]} >= {"email", "dietary"}
    assert given["retention_days"] == offer["retention_days"]
    assert given["declared_value"]["amount"] == "10.00"
    assert given["collection_method"]["method"] == "oauth-consent-screen"
    # dietary is special-category data: the consent screen asked for a separate, explicit tick
    assert given["collection_method"]["dpv"] == "https://w3id.org/dpv#ExplicitlyExpressedConsent"
    assert [d["field"] for d in amended["personal_data"]] == ["email", "dietary"]
    assert withdrawn["state"] == "withdrawn"
    assert withdrawn["state_dpv"] == "https://w3id.org/dpv#ConsentWithdrawn"


def test_expiry_gets_a_receipt_and_suspension_and_resumption_get_none(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    grant = grant_of(client, brand, offer, db)
    runtime.grants.suspend(db, grant, reason="value-overdue")
    runtime.grants.resume(db, grant, reason="value-delivered")
    db.commit()
    assert [r["event"] for r in my_receipts(client, customer)] == ["given"]
    clock.advance(days=offer["grant_duration_days"], seconds=1)
    assert runtime.lifecycle.sweep(runtime.sessions) == 1
    receipts = my_receipts(client, log_in(client, "ada@example.org"))  # the old session has ended
    assert [r["event"] for r in receipts] == ["expired", "given"]
    expired = receipts[0]["receipt"]
    assert expired["state"] == "expired" and expired["event_by"] == "broker"
    assert expired["state_dpv"] == "https://w3id.org/dpv#ConsentExpired"
    entry = db.get(AuditEntry, expired["audit"]["index"])
    assert entry is not None and decode(entry.entry)["kind"] == "grant.expired"


def test_a_brand_ending_the_grant_is_a_revocation(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant = grant_of(client, brand, offer, db)
    assert (
        client.delete(f"/v1/grants/{grant.id}", headers=bearer(brand_token(client, brand))).status_code == 204
    )
    latest = my_receipts(client, customer)[0]["receipt"]
    assert (latest["event"], latest["state"], latest["event_by"]) == ("revoked", "revoked", "brand")
    assert latest["state_dpv"] == "https://w3id.org/dpv#ConsentRevoked"


def test_the_receipt_jws_verifies_with_the_published_jwks_and_matches_its_payload(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant_of(client, brand, offer, db)
    [item] = my_receipts(client, customer)
    jwks = KeySet.import_key_set(client.get("/.well-known/jwks.json").json())
    decoded = jwt.decode(item["jws"], jwks, algorithms=["Ed25519"])
    assert decoded.header["typ"] == "consent-receipt+jwt"
    assert decoded.header["kid"] == item["signing_key"]["kid"]
    assert dict(decoded.claims) == item["receipt"]
    assert "d" not in item["signing_key"], "only the public key is shown"


def test_the_bundle_proves_the_entry_against_a_signed_checkpoint(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant_of(client, brand, offer, db)
    [item] = my_receipts(client, customer)
    key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
    checkpoint = parse_checkpoint(open_note(item["checkpoint"], [key]))
    logged = item["audit_entry"]
    entry = base64.b64decode(logged["entry"])
    assert leaf_hash(entry) == base64.b64decode(item["receipt"]["audit"]["leaf_hash"])
    proof = [base64.b64decode(node) for node in logged["inclusion_proof"]]
    assert verify_inclusion(leaf_hash(entry), logged["index"], checkpoint.size, proof, checkpoint.root_hash)


def test_a_receipt_is_not_an_access_token(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant_of(client, brand, offer, db)
    [item] = my_receipts(client, customer)
    read = client.get("/v1/profile", headers=bearer(item["jws"]))
    assert read.status_code == 401
    assert read.headers["content-type"].startswith("application/problem+json")


def test_another_customers_receipt_is_404_like_an_unknown_one(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant_of(client, brand, offer, db)
    [item] = my_receipts(client, customer)
    mine = client.get(f"/v1/me/receipts/{item['id']}", headers=bearer(customer))
    assert mine.status_code == 200 and mine.json()["receipt"] == item["receipt"]
    other = sign_up(client, "bob@example.org")
    theirs = client.get(f"/v1/me/receipts/{item['id']}", headers=bearer(other))
    unknown = client.get(f"/v1/me/receipts/{uuid4()}", headers=bearer(other))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.headers["content-type"].startswith("application/problem+json")
    assert theirs.json()["type"] == unknown.json()["type"] == "https://consentry.dev/problems/not-found"
    assert my_receipts(client, other) == []
    assert my_receipts(client, other, grant_id=item["grant_id"]) == []


def test_the_download_is_an_attachment_and_the_portal_cookie_works(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant_of(client, brand, offer, db)
    [item] = my_receipts(client, customer)
    assert portal_login(client, "ada@example.org").status_code == 303
    download = client.get(f"/v1/me/receipts/{item['id']}", params={"download": "true"})
    assert download.status_code == 200, download.text
    disposition = download.headers["content-disposition"]
    assert disposition == f'attachment; filename="consent-receipt-{item["id"]}.json"'
    assert json.loads(download.content)["jws"] == item["jws"]


def test_brands_see_their_grants_receipts_and_a_rival_gets_404(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
) -> None:
    grant = grant_of(client, brand, offer, db)
    seen = client.get(f"/v1/grants/{grant.id}/receipts", headers=bearer(brand_token(client, brand)))
    assert seen.status_code == 200, seen.text
    assert [r["event"] for r in seen.json()["items"]] == ["given"]
    assert (
        seen.json()["items"][0]["receipt"]["subject"]
        == decode(db.exec(select(AuditEntry.entry).where(AuditEntry.kind == "grant.created")).one())[
            "subject"
        ]
    )
    hidden = client.get(f"/v1/grants/{grant.id}/receipts", headers=bearer(brand_token(client, rival)))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    narrow = client.get(
        f"/v1/grants/{grant.id}/receipts", headers=bearer(brand_token(client, brand, scope="offers:read"))
    )
    assert narrow.status_code == 403


def test_receipts_page_newest_first_and_filter_by_grant(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    first = grant_of(client, brand, offer, db)  # all at one instant: log order decides
    second = grant_of(client, brand, offer, db)
    assert client.delete(f"/v1/me/grants/{first.id}", headers=bearer(customer)).status_code == 204
    page = client.get("/v1/me/receipts", params={"limit": 2}, headers=bearer(customer)).json()
    assert [(r["grant_id"], r["event"]) for r in page["items"]] == [
        (str(first.id), "withdrawn"),
        (str(second.id), "given"),
    ]
    rest = client.get(
        "/v1/me/receipts", params={"limit": 2, "cursor": page["next_cursor"]}, headers=bearer(customer)
    ).json()
    assert [(r["grant_id"], r["event"]) for r in rest["items"]] == [(str(first.id), "given")]
    assert rest["next_cursor"] is None
    only = my_receipts(client, customer, grant_id=str(second.id))
    assert [r["event"] for r in only] == ["given"]
    bad = client.get("/v1/me/receipts", params={"cursor": "nonsense"}, headers=bearer(customer))
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")


def test_a_rolled_back_change_leaves_neither_receipt_nor_entry(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
) -> None:
    grant = grant_of(client, brand, offer, db)
    before = len(db.exec(select(Receipt)).all()), len(db.exec(select(AuditEntry)).all())
    runtime.grants.revoke(db, grant, by=Actor.CUSTOMER)
    db.rollback()
    db.commit()  # nothing queued survives the rollback: this commit appends and issues nothing
    assert (len(db.exec(select(Receipt)).all()), len(db.exec(select(AuditEntry)).all())) == before


def test_a_failed_signature_fails_the_commit_and_leaves_no_entry(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grant = grant_of(client, brand, offer, db)
    before = len(db.exec(select(AuditEntry)).all())

    def refuse(*args: object, **kwargs: object) -> str:
        raise OSError("the key directory is gone")

    monkeypatch.setattr(runtime.oauth.signing, "sign", refuse)
    runtime.grants.revoke(db, grant, by=Actor.CUSTOMER)
    with pytest.raises(OSError, match="key directory"):
        db.commit()
    db.rollback()
    assert len(db.exec(select(AuditEntry)).all()) == before
    assert [r.event for r in db.exec(select(Receipt))] == ["given"]


def test_receipts_hold_no_personal_values(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant = grant_of(client, brand, offer, db)
    assert client.delete(f"/v1/me/grants/{grant.id}", headers=bearer(customer)).status_code == 204
    rows = list(db.exec(select(Receipt)))
    # Decoded forms only: base64 (signatures, hashes) could hold a short name like "Ada" by chance.
    stored = json.dumps([[r.event, r.signing_key, _payload(r.jws)] for r in rows])
    shown = json.dumps(
        [
            [item["receipt"], item["audit_entry"]["event"], item["event"]]
            for item in my_receipts(client, customer)
        ]
    )
    for text in (stored, shown):
        for value in ("ada@example.org", "Ada", "vegan", "nut_allergy", "1990-12-10", str(grant.customer_id)):
            assert value not in text


def _payload(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload


def test_deleting_the_account_keeps_its_receipts_and_issues_the_withdrawal(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    grant = grant_of(client, brand, offer, db)
    assert client.delete("/v1/me", headers=bearer(customer)).status_code == 200
    db.expire_all()
    kept = db.exec(select(Receipt).where(Receipt.grant_id == grant.id)).all()
    assert sorted(r.event for r in kept) == ["given", "withdrawn"]
