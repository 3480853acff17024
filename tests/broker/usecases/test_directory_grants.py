"""Grants the customer starts in the directory: made as the consent screen makes them, told to the
brand by a `grant.created` webhook whose grant ticket it exchanges (RFC 8693) for that grant's tokens
only, declined by the brand within the window and before any read (nothing owed). Replayed, forged,
foreign and expired tickets are refused."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlmodel import Session, col, func, select
from support.core import FakeClock, bearer, make_settings
from support.oauth import BrandCredentials, brand_token, portal_login, publish_offer
from support.problems import assert_problem
from support.value import Brand, logged
from support.webhooks import hook_token, register

from broker.oauth.models import GrantTicketUse
from broker.runtime import Runtime
from broker.settings import Settings
from broker.webhooks.models import WebhookMessage

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TICKET = "urn:consentry:params:oauth:token-type:grant-ticket"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url, webhooks_allow_private=True)


@pytest.fixture
def listing(client: TestClient, brand: BrandCredentials) -> dict[str, Any]:
    register(client, hook_token(client, brand), "http://127.0.0.1:9/hook")
    return publish_offer(client, brand_token(client, brand), listed=True)


def accept(client: TestClient, customer: str, offer_id: str, **body: Any) -> Any:
    return client.post(f"/v1/directory/offers/{offer_id}/grant", json=body, headers=bearer(customer))


def started(client: TestClient, customer: str, offer_id: str) -> dict[str, Any]:
    answer = accept(client, customer, offer_id, fields=["household_size"], special_category_consent=True)
    assert answer.status_code == 201, answer.text
    grant: dict[str, Any] = answer.json()
    return grant


def hook_of(db: Session, grant_id: str, kind: str = "grant.created") -> dict[str, Any]:
    db.expire_all()
    rows = db.exec(select(WebhookMessage).where(col(WebhookMessage.event_type) == kind)).all()
    found = [json.loads(row.body) for row in rows if json.loads(row.body)["data"]["grant_id"] == grant_id]
    assert len(found) == 1, found
    return found[0]


def exchange(client: TestClient, brand: BrandCredentials, ticket: str, **extra: str) -> Any:
    form = {"grant_type": EXCHANGE, "subject_token": ticket, "subject_token_type": TICKET, **extra}
    return client.post("/oauth/token", data=form, auth=brand.auth())


def refused(answer: Any, error: str = "invalid_grant") -> None:
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == error, answer.text


def test_accepting_in_the_directory_makes_the_grant_the_consent_screen_would(
    client: TestClient, customer: str, listing: dict[str, Any], db: Session, clock: FakeClock
) -> None:
    answer = accept(client, customer, listing["id"], fields=["household_size"], special_category_consent=True)
    assert answer.status_code == 201, answer.text
    grant = answer.json()
    assert answer.headers["location"] == f"/v1/me/grants/{grant['id']}"
    assert grant["fields"] == ["email", "dietary", "household_size"] and grant["status"] == "active"
    assert grant["offer_id"] == listing["id"]
    assert grant["decline_by"] == (clock.now + timedelta(hours=72)).isoformat().replace("+00:00", "Z")

    created = [e for e in logged(db, "grant.created") if e["grant"] == grant["id"]]
    assert created and created[0]["actor"] == "customer"
    receipts = client.get("/v1/me/receipts", params={"grant_id": grant["id"]}, headers=bearer(customer))
    assert [r["event"] for r in receipts.json()["items"]] == ["given"]
    owed = client.get("/v1/me/value", headers=bearer(customer)).json()["items"]
    assert [(o["grant_id"], o["state"]) for o in owed] == [(grant["id"], "owed")]

    hook = hook_of(db, grant["id"])
    data = hook["data"]
    assert data["origin"] == "directory" and data["decline_by"] and data["grant_ticket"].count(".") == 2
    assert data["fields"] == grant["fields"] and len(data["subject"]) == 64
    # a word, not a substring: random ids and tokens may hold "ada" (hex digits, base64)
    assert not re.search(r"\bada\b", json.dumps(hook), re.IGNORECASE), "the webhook names nobody"


def test_the_consent_screens_rules_hold(
    client: TestClient, brand: BrandCredentials, customer: str, listing: dict[str, Any]
) -> None:
    offer = listing["id"]
    assert_problem(accept(client, customer, offer), 422, "validation", "/special_category_consent")
    stray = accept(client, customer, offer, fields=["postcode"], special_category_consent=True)
    assert_problem(stray, 422, "validation", "/fields")
    hostile = accept(
        client, customer, offer, fields=["<script>alert(1)</script>"], special_category_consent=True
    )
    assert_problem(hostile, 422, "validation", "/fields")
    assert "script" not in hostile.text and "household_size" in hostile.text, (
        "names the choices, echoes nothing"
    )
    too_long = accept(client, customer, offer, fields=["x" * 65], special_category_consent=True)
    assert_problem(too_long, 422, "validation")
    assert_problem(accept(client, customer, offer, extra=1), 422, "validation")
    assert_problem(accept(client, customer, offer, purposes=["marketing"]), 422, "validation", "/purposes")
    token = brand_token(client, brand)
    quiet = publish_offer(client, token)
    assert_problem(accept(client, customer, quiet["id"]), 404, "not-found")
    assert_problem(accept(client, customer, "00000000-0000-4000-8000-000000000000"), 404, "not-found")
    unknown = client.post(f"/v1/directory/offers/{offer}/grant", json={}, headers=bearer("cst_nobody"))
    assert_problem(unknown, 401, "unauthenticated")

    several = publish_offer(
        client,
        token,
        listed=True,
        purpose=None,
        purpose_explanation=None,
        purposes=[
            {"purpose": "personalised_offers", "explanation": "recipes", "fields": ["email", "dietary"]},
            {"purpose": "marketing", "explanation": "news", "fields": ["email", "household_size"]},
        ],
        optional_fields=["household_size"],
    )
    unpurposed = accept(client, customer, several["id"], special_category_consent=True)
    assert_problem(unpurposed, 422, "validation", "/purposes")
    marketing_only = accept(
        client, customer, several["id"], purposes=["marketing"], fields=["household_size"]
    )
    assert_problem(marketing_only, 422, "validation", "/purposes")  # dietary is required, for recipes only
    both = accept(
        client, customer, several["id"], purposes=["personalised_offers"], special_category_consent=True
    )
    assert both.status_code == 201, both.text
    assert both.json()["fields"] == ["email", "dietary"]


def test_the_ticket_gives_the_brand_tokens_for_that_grant_only(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    customer: str,
    listing: dict[str, Any],
    db: Session,
) -> None:
    grant = started(client, customer, listing["id"])
    ticket = hook_of(db, grant["id"])["data"]["grant_ticket"]

    refused(exchange(client, rival, ticket))  # issued to another client
    refused(
        exchange(client, brand, ticket, subject_token_type="urn:ietf:params:oauth:token-type:jwt"),
        "invalid_request",
    )
    refused(exchange(client, brand, ticket, scope="profile:postcode"), "invalid_request")
    tokens = exchange(client, brand, ticket)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["token_type"] == "Bearer" and body["refresh_token"].startswith("rt_")
    assert set(body["scope"].split()) == {"profile:email", "profile:dietary", "profile:household_size"}
    refused(exchange(client, brand, ticket))  # spent once

    profile = client.get("/v1/profile", headers=bearer(body["access_token"]))
    assert profile.status_code == 200, profile.text
    assert set(profile.json()["fields"]) - {"email_verified"} == {"email", "dietary", "household_size"}
    introspected = client.post("/oauth/introspect", data={"token": body["access_token"]}, auth=brand.auth())
    assert introspected.json()["grant_id"] == grant["id"]
    renewed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        auth=brand.auth(),
    )
    assert renewed.status_code == 200, renewed.text


def test_forged_and_other_tokens_are_not_tickets(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    listing: dict[str, Any],
    db: Session,
    runtime: Runtime,
) -> None:
    grant = started(client, customer, listing["id"])
    ticket = hook_of(db, grant["id"])["data"]["grant_ticket"]
    header, payload, signature = ticket.split(".")
    stranger = OKPKey.generate_key("Ed25519")
    real = json.loads(_b64(payload))
    forged = jwt.encode({"alg": "Ed25519", "typ": "grant-ticket+jwt"}, real, stranger, algorithms=["Ed25519"])
    refused(exchange(client, brand, forged))
    other_grant = {**real, "grant_id": "00000000-0000-4000-8000-000000000000"}
    refused(exchange(client, brand, f"{header}.{_b64e(other_grant)}.{signature}"))  # edited: bad signature
    access = brand_token(client, brand)  # one of our at+jwt tokens, not a ticket
    refused(exchange(client, brand, access))
    as_access = runtime.oauth.signing.sign(real)  # our key, but typed as an access token
    refused(exchange(client, brand, as_access))
    refused(exchange(client, brand, "not.a.jwt"))
    crit = {"alg": "Ed25519", "typ": "grant-ticket+jwt", "crit": 5}  # joserfc trips on this header
    refused(exchange(client, brand, f"{_b64e(crit)}.{payload}.{signature}"))
    as_bearer = client.get(
        "/v1/profile", headers=bearer(f"{_b64e({**crit, 'typ': 'at+jwt'})}.{payload}.{signature}")
    )
    assert_problem(as_bearer, 401, "unauthenticated")
    refused(exchange(client, brand, ""), "invalid_request")
    assert exchange(client, brand, ticket).status_code == 200, "the real one still works"


def test_spent_tickets_are_pruned_once_they_would_have_expired(
    client: TestClient, brand: BrandCredentials, customer: str, listing: dict[str, Any], db: Session,
    clock: FakeClock, runtime: Runtime,
) -> None:  # fmt: skip
    grant = started(client, customer, listing["id"])
    assert exchange(client, brand, hook_of(db, grant["id"])["data"]["grant_ticket"]).status_code == 200
    spent = select(func.count()).select_from(GrantTicketUse)
    runtime.lifecycle.sweep(runtime.sessions)
    assert db.exec(spent).one() == 1, "kept while the ticket could still be presented"
    clock.advance(days=7, seconds=1)
    runtime.lifecycle.sweep(runtime.sessions)
    db.expire_all()
    assert db.exec(spent).one() == 0


def test_a_ticket_expires_and_dies_with_its_grant(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    listing: dict[str, Any],
    db: Session,
    clock: FakeClock,
) -> None:
    first = started(client, customer, listing["id"])
    old = hook_of(db, first["id"])["data"]["grant_ticket"]
    second = started(client, customer, listing["id"])
    revoked = hook_of(db, second["id"])["data"]["grant_ticket"]
    assert client.delete(f"/v1/me/grants/{second['id']}", headers=bearer(customer)).status_code == 204
    refused(exchange(client, brand, revoked))
    clock.advance(days=7, seconds=1)
    refused(exchange(client, brand, old))
    fresh = client.post(f"/v1/grants/{first['id']}/ticket", headers=bearer(brand_token(client, brand)))
    assert fresh.status_code == 200, fresh.text
    assert exchange(client, brand, fresh.json()["grant_ticket"]).status_code == 200
    no_more = client.post(f"/v1/grants/{second['id']}/ticket", headers=bearer(brand_token(client, brand)))
    assert_problem(no_more, 409, "grant-state")


def test_the_brand_declines_within_the_window_before_reading_and_nothing_is_owed(
    client: TestClient, brand: BrandCredentials, customer: str, listing: dict[str, Any], db: Session
) -> None:
    grant = started(client, customer, listing["id"])
    tokens = exchange(client, brand, hook_of(db, grant["id"])["data"]["grant_ticket"]).json()
    token = brand_token(client, brand)
    declined = client.post(f"/v1/grants/{grant['id']}/decline", headers=bearer(token))
    assert declined.status_code == 200, declined.text
    body = declined.json()
    assert (body["status"], body["ended_by"]) == ("revoked", "brand") and body["declined_at"]
    again = client.post(f"/v1/grants/{grant['id']}/decline", headers=bearer(token))
    assert again.status_code == 200 and again.json()["declined_at"] == body["declined_at"]

    assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code in (401, 403)
    owed = client.get("/v1/me/value", headers=bearer(customer)).json()["items"]
    assert [o["state"] for o in owed] == ["cancelled"], "nothing is owed"
    receipts = client.get("/v1/me/receipts", params={"grant_id": grant["id"]}, headers=bearer(customer))
    assert [r["event"] for r in receipts.json()["items"]] == ["revoked", "given"]
    ended = hook_of(db, grant["id"], "grant.revoked")
    assert ended["data"]["reason"] == "declined-by-brand" and ended["data"]["actor"] == "brand"


def test_a_brand_cannot_decline_after_reading_after_the_window_or_an_ordinary_grant(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    customer: str,
    listing: dict[str, Any],
    db: Session,
    clock: FakeClock,
) -> None:
    token = brand_token(client, brand)
    read = started(client, customer, listing["id"])
    tokens = exchange(client, brand, hook_of(db, read["id"])["data"]["grant_ticket"]).json()
    assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
    assert_problem(
        client.post(f"/v1/grants/{read['id']}/decline", headers=bearer(token)), 409, "grant-not-declinable"
    )
    foreign = client.post(f"/v1/grants/{read['id']}/decline", headers=bearer(brand_token(client, rival)))
    assert_problem(foreign, 404, "not-found")

    late = started(client, customer, listing["id"])
    clock.advance(hours=72, seconds=1)
    token = brand_token(client, brand)
    assert_problem(
        client.post(f"/v1/grants/{late['id']}/decline", headers=bearer(token)), 409, "grant-not-declinable"
    )

    assert portal_login(client, "ada@example.org").status_code == 303  # the session idled out
    ordinary = Brand(client, brand, publish_offer(client, token))
    path = f"/v1/grants/{ordinary.grant_id}/decline"
    assert_problem(client.post(path, headers=bearer(brand_token(client, brand))), 409, "grant-not-declinable")
    ticket = client.post(f"/v1/grants/{ordinary.grant_id}/ticket", headers=bearer(brand_token(client, brand)))
    assert_problem(ticket, 409, "grant-state")


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()
