"""The customer's preferences: set and read by the customer, sealed in the vault, read by a brand with
a live grant (an audited access) and by no one else, and announced to those brands by webhook."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, col, select
from support.core import STRONG_PASSWORD, bearer, make_settings
from support.lifecycle import BrandSide, entries_about
from support.oauth import BrandCredentials, brand_token, form_token, publish_offer
from support.problems import assert_problem
from support.webhooks import hook_token, register

from broker.settings import Settings
from broker.webhooks.models import WebhookMessage
from clients.auditor.receipt import verify_receipt
from clients.auditor.tlog import parse_verifier_key

MINE = "/v1/me/preferences"
ZONE = "/quiet_hours/time_zone"
CAREFUL: dict[str, Any] = {
    "channels": ["email", "post"],
    "quiet_hours": {"start": "21:00", "end": "08:30", "time_zone": "Europe/London"},
    "max_contacts_per_month": 2,
    "avoid_topics": ["gambling", "alcohol"],
    "do_not_sell_or_share": True,
}


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url, webhooks_allow_private=True)


def test_the_defaults_ask_nothing_until_the_customer_sets_them(client: TestClient, customer: str) -> None:
    first = client.get(MINE, headers=bearer(customer))
    assert first.status_code == 200
    assert first.json() == {
        "channels": ["email", "sms", "phone", "post", "push", "in_app"], "quiet_hours": None,
        "max_contacts_per_month": None, "avoid_topics": [], "do_not_sell_or_share": False,
        "version": 0, "updated_at": None,
    }  # fmt: skip
    made = client.put(MINE, json=CAREFUL, headers=bearer(customer))
    assert made.status_code == 200, made.text
    assert made.json() | {"updated_at": None} == CAREFUL | {"version": 1, "updated_at": None}
    again = client.put(MINE, json={**CAREFUL, "channels": []}, headers=bearer(customer)).json()
    assert again["version"] == 2 and again["channels"] == []
    assert client.get(MINE, headers=bearer(customer)).json() == again


def test_preferences_are_sealed_in_the_vault(client: TestClient, customer: str, db: Session) -> None:
    assert client.put(MINE, json=CAREFUL, headers=bearer(customer)).status_code == 200
    for table in ("vault_secret", "audit_entry", "webhook_message"):
        dumped = json.dumps([list(map(str, row)) for row in db.execute(text(f"SELECT * FROM {table}"))])  # noqa: S608
        for canary in ("Europe/London", "gambling", "21:00"):
            assert canary not in dumped, (table, canary)


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"channels": ["fax"]}, "/channels/0"),
        ({"channels": ["email", "email"]}, "/channels"),
        ({"avoid_topics": ["cats"]}, "/avoid_topics/0"),
        ({"avoid_topics": ["x" * 10_000]}, "/avoid_topics/0"),
        ({"max_contacts_per_month": 101}, "/max_contacts_per_month"),
        ({"max_contacts_per_month": -1}, "/max_contacts_per_month"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00", "time_zone": "UTC"}}, "/quiet_hours/start"),
        (
            {"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "Mars/Olympus"}},
            "/quiet_hours/time_zone",
        ),
        ({"quiet_hours": {"start": "21:00", "end": "21:00", "time_zone": "UTC"}}, "/quiet_hours"),
        (
            {"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "../../etc/passwd"}},
            "/quiet_hours/time_zone",
        ),
        ({"quiet_hours": {"start": "21:00", "end": "08:00", "time_zone": "localtime"}}, ZONE),
        ({"do_not_sell": True}, "/do_not_sell"),
    ],
)
def test_bad_preferences_are_422_saying_where(
    client: TestClient, customer: str, change: dict[str, Any], pointer: str
) -> None:
    answer = client.put(MINE, json={**CAREFUL, **change}, headers=bearer(customer))
    assert_problem(answer, 422, "validation", pointer or None)
    assert client.get(MINE, headers=bearer(customer)).json()["version"] == 0, "nothing was stored"


def test_a_brand_reads_them_under_a_live_grant_and_not_without(
    client: TestClient, customer: str, brand: BrandCredentials, rival: BrandCredentials, db: Session
) -> None:
    side = BrandSide(client, brand, publish_offer(client, brand_token(client, brand), optional_fields=[]))
    assert client.put(MINE, json=CAREFUL, headers=bearer(customer)).status_code == 200
    read = client.get("/v1/preferences", headers=bearer(side.tokens["access_token"]))
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["grant_id"] == side.grant_id and body["preferences"]["avoid_topics"] == [
        "gambling",
        "alcohol",
    ]
    assert body["sub"] != customer and body["sub"] == side.tokens.get("sub", body["sub"])
    logged = entries_about(db, side.grant_id, "preferences.read")
    assert len(logged) == 1 and set(logged[0]) >= {"brand", "subject", "grant"} and "fields" not in logged[0]
    brand_only = client.get("/v1/preferences", headers=bearer(brand_token(client, brand)))
    assert_problem(brand_only, 403, "insufficient-scope")
    assert_problem(client.get("/v1/preferences", headers=bearer("not-a-token")), 401, "unauthenticated")
    assert client.delete(f"/v1/me/grants/{side.grant_id}", headers=bearer(customer)).status_code == 204
    ended = client.get("/v1/preferences", headers=bearer(side.tokens["access_token"]))
    assert ended.status_code in (401, 403), ended.text
    assert len(entries_about(db, side.grant_id, "preferences.read")) == 1, "a refused read is no access"


def test_brands_with_live_grants_are_told_that_they_changed_never_how(
    client: TestClient, customer: str, brand: BrandCredentials, rival: BrandCredentials, db: Session
) -> None:
    register(client, hook_token(client, brand), "http://127.0.0.1:9/hooks")
    register(client, hook_token(client, rival), "http://127.0.0.1:9/hooks")
    live = BrandSide(client, brand, publish_offer(client, brand_token(client, brand), optional_fields=[]))
    ended = BrandSide(client, rival, publish_offer(client, brand_token(client, rival), optional_fields=[]))
    assert client.delete(f"/v1/me/grants/{ended.grant_id}", headers=bearer(customer)).status_code == 204
    assert client.put(MINE, json=CAREFUL, headers=bearer(customer)).status_code == 200
    told = db.exec(
        select(WebhookMessage).where(col(WebhookMessage.event_type) == "preferences.changed")
    ).all()
    assert len(told) == 1, "only the brand whose grant is live"
    body = json.loads(told[0].body)
    assert body["data"]["grant_id"] == live.grant_id and body["data"].get("version") == 1, body
    assert "gambling" not in json.dumps(body)
    assert len(entries_about(db, live.grant_id, "preferences.changed")) == 1
    assert entries_about(db, ended.grant_id, "preferences.changed") == []


def test_preferences_are_the_customers_own(client: TestClient, customer: str) -> None:
    client.cookies.clear()
    assert client.get(MINE).status_code == 401
    assert client.put(MINE, json=CAREFUL).status_code == 401


def test_the_portal_edits_them_in_plain_words(client: TestClient, customer: str) -> None:
    page = client.get("/portal/preferences")
    assert page.status_code == 200 and "You have not set any yet" in page.text
    token = form_token(client, "/portal/preferences")
    form: dict[str, Any] = {
        "channels": ["email", "post"],
        "avoid_topics": ["gambling"],
        "cap": "3",
        "quiet": "yes",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "time_zone": "Europe/Paris",
    }
    assert client.post("/portal/preferences", data=form).status_code == 403, "no CSRF token"
    form["csrf_token"] = token
    superscript = client.post("/portal/preferences", data={**form, "cap": "²"})
    assert superscript.status_code == 422 and "A whole number" in superscript.text
    wrong = client.post("/portal/preferences", data={**form, "time_zone": "Paris", "cap": "lots"})
    assert wrong.status_code == 422 and "Europe/London" in wrong.text and "A whole number" in wrong.text
    assert 'value="Paris"' in wrong.text, "what was typed is kept"
    saved = client.post("/portal/preferences", data=form)
    assert saved.status_code == 200 and "Saved." in saved.text
    mine = client.get(MINE, headers=bearer(customer)).json()
    assert mine["channels"] == ["email", "post"] and mine["max_contacts_per_month"] == 3
    assert mine["quiet_hours"] == {"start": "21:00", "end": "08:00", "time_zone": "Europe/Paris"}
    assert mine["avoid_topics"] == ["gambling"] and mine["do_not_sell_or_share"] is False
    assert client.get("/portal/").text.count('href="/portal/preferences"') == 1


def test_the_export_holds_them(client: TestClient, customer: str) -> None:
    assert client.put(MINE, json=CAREFUL, headers=bearer(customer)).status_code == 200
    reauthenticated = client.post(
        "/v1/sessions/current/reauthenticate", json={"password": STRONG_PASSWORD}, headers=bearer(customer)
    )
    assert reauthenticated.status_code in (200, 204), reauthenticated.text
    document = client.get("/v1/me/export", headers=bearer(customer)).json()
    assert document["format"] == "consentry-export/4"
    assert document["preferences"]["avoid_topics"] == ["gambling", "alcohol"]
    assert [v["version"] for v in document["preferences_history"]] == [1]
    assert document["contacts"] == []


def test_receipts_after_a_change_bind_the_preferences_and_their_owner_can_check_them(
    client: TestClient, customer: str, brand: BrandCredentials
) -> None:
    assert client.put(MINE, json=CAREFUL, headers=bearer(customer)).status_code == 200
    side = BrandSide(client, brand, publish_offer(client, brand_token(client, brand), optional_fields=[]))
    mine = client.get("/v1/me/receipts", params={"grant_id": side.grant_id}, headers=bearer(customer))
    (bundle,) = mine.json()["items"]
    bound = bundle["receipt"]["preferences"]
    assert bound["version"] == 1 and set(bound) == {"version", "set_at", "sha256"}, (
        "a digest, never the record"
    )
    assert bundle["preferences"]["avoid_topics"] == ["gambling", "alcohol"], "the owner's copy opens it"
    unsalted = json.dumps(bundle["preferences"], sort_keys=True, separators=(",", ":")).encode()
    guessed = base64.urlsafe_b64encode(hashlib.sha256(unsalted).digest()).rstrip(b"=").decode()
    assert bundle["preferences_salt"] and guessed != bound["sha256"], "a guess without the salt fails"
    jwks = client.get("/.well-known/jwks.json").json()["keys"]
    key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
    assert verify_receipt(bundle, log_key=key, jwks=jwks).problems == []
    edited = {**bundle, "preferences": {**bundle["preferences"], "avoid_topics": []}}
    assert verify_receipt(edited, log_key=key, jwks=jwks).problems == [
        "the preferences in the bundle are not the ones the receipt binds"
    ]
    brands = client.get(f"/v1/grants/{side.grant_id}/receipts", headers=bearer(brand_token(client, brand)))
    assert brands.json()["items"][0]["preferences"] is None, "the brand's copy carries the digest only"
    assert "gambling" not in brands.text
