"""Customers and brands see the audit entries about them, each with a proof anyone can check offline."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from support.core import FakeClock, bearer, sign_up
from support.oauth import (
    BrandCredentials,
    authorized,
    brand_token,
    grant_id_of,
    portal_login,
    publish_offer,
)

from broker.audit.entries import Actor, Kind
from broker.consent.models import Grant
from broker.runtime import Runtime
from clients.auditor import leaf_hash, open_note, parse_checkpoint, parse_verifier_key, verify_inclusion


def verified(page: dict[str, Any], runtime: Runtime) -> list[dict[str, Any]]:
    """Check the page as a customer's own tool would, against the key pinned out of band."""
    assert page["verifier_key"] == runtime.checkpoints.verifier_key()
    key = parse_verifier_key(runtime.checkpoints.verifier_key())
    checkpoint = parse_checkpoint(open_note(page["checkpoint"], [key]))
    assert checkpoint.size == page["tree_size"]
    for item in page["items"]:
        leaf = leaf_hash(base64.b64decode(item["entry"]))
        assert base64.b64decode(item["leaf_hash"]) == leaf
        proof = [base64.b64decode(node) for node in item["inclusion_proof"]]
        assert verify_inclusion(leaf, item["index"], checkpoint.size, proof, checkpoint.root_hash)
    return list(page["items"])


def test_customer_sees_every_access_and_consent_event_newest_first_with_proofs(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
) -> None:
    tokens = authorized(client, brand, offer)
    for _ in range(2):
        assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
    page = client.get("/v1/me/access-log", headers=bearer(customer))
    assert page.status_code == 200, page.text
    items = verified(page.json(), runtime)
    assert [i["kind"] for i in items] == ["profile.read", "profile.read", "value.created", "grant.created"]
    assert [i["index"] for i in items] == sorted((i["index"] for i in items), reverse=True)
    assert {i["brand_name"] for i in items} == {"Green Grocer"}
    assert items[0]["event"]["fields"] and items[0]["event"]["purpose"] == offer["purpose"]


def test_pages_walk_back_without_overlap_and_bad_cursors_are_refused(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, runtime: Runtime
) -> None:
    tokens = authorized(client, brand, offer)
    for _ in range(4):
        client.get("/v1/profile", headers=bearer(tokens["access_token"]))
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/me/access-log", params=params, headers=bearer(customer)).json()
        seen += [i["index"] for i in verified(page, runtime)]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6 and seen == sorted(set(seen), reverse=True)
    for bad in ("nonsense", base64.urlsafe_b64encode(b"i-1").decode(), "aQ"):
        refused = client.get("/v1/me/access-log", params={"cursor": bad}, headers=bearer(customer))
        assert refused.status_code == 422 and refused.json()["errors"][0]["pointer"] == "/cursor"


def test_a_customer_never_sees_another_customers_entries(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    authorized(client, brand, offer)
    stranger = sign_up(client, "grace@example.org")
    page = client.get("/v1/me/access-log", headers=bearer(stranger)).json()
    assert page["items"] == [] and page["next_cursor"] is None
    assert client.get("/v1/me/access-log").status_code == 401


def test_brand_sees_its_own_entries_and_a_rival_sees_none(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
) -> None:
    tokens = authorized(client, brand, offer)
    read = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()
    page = client.get("/v1/access-log", headers=bearer(brand_token(client, brand)))
    assert page.status_code == 200, page.text
    items = verified(page.json(), runtime)
    assert [i["kind"] for i in items] == ["profile.read", "value.created", "grant.created", "offer.published"]
    assert items[0]["event"]["subject"] == read["sub"], "the brand recognises its customer by its own sub"
    assert client.get("/v1/access-log", headers=bearer(brand_token(client, rival))).json()["items"] == []


@pytest.mark.parametrize("who", ["consent-token", "customer"])
def test_the_brand_log_needs_a_brand_token_with_grants_read(
    who: str, client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    token = authorized(client, brand, offer)["access_token"] if who == "consent-token" else customer
    assert client.get("/v1/access-log", headers=bearer(token)).status_code in (401, 403)


def test_one_grants_entries_alone_for_its_customer_and_its_brand(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
) -> None:
    ours = authorized(client, brand, offer)
    theirs = authorized(client, rival, publish_offer(client, brand_token(client, rival)))
    for tokens in (ours, theirs, ours):
        assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
    grant_id = client.post(
        "/oauth/introspect", data={"token": ours["access_token"]}, auth=brand.auth()
    ).json()["grant_id"]
    page = client.get("/v1/me/access-log", params={"grant_id": grant_id}, headers=bearer(customer)).json()
    items = verified(page, runtime)
    assert [i["kind"] for i in items] == ["profile.read", "profile.read", "value.created", "grant.created"]
    assert {i["event"]["grant"] for i in items} == {grant_id}
    as_brand = client.get(
        "/v1/access-log", params={"grant_id": grant_id}, headers=bearer(brand_token(client, brand))
    ).json()
    assert [i["index"] for i in verified(as_brand, runtime)] == [i["index"] for i in items]
    as_rival = client.get(
        "/v1/access-log", params={"grant_id": grant_id}, headers=bearer(brand_token(client, rival))
    )
    assert as_rival.status_code == 200 and as_rival.json()["items"] == []
    bad = client.get("/v1/me/access-log", params={"grant_id": "nope"}, headers=bearer(customer))
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"


def test_reads_per_day_counts_each_utc_day_of_one_grant_from_midnight_to_midnight(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    tokens = authorized(client, brand, offer)
    grant_id = UUID(grant_id_of(client, brand, tokens))
    with runtime.sessions() as db:
        grant = db.get(Grant, grant_id)
        assert grant is not None
        customer_id, brand_id = grant.customer_id, grant.brand_id
    today = (clock.now + timedelta(days=40)).date()
    first = today - timedelta(days=29)
    midnight = datetime.combine(first, time(), tzinfo=UTC)
    tick = timedelta(microseconds=1)

    def logged(at: datetime, kind: Kind = Kind.PROFILE_READ, about: UUID = grant_id) -> None:
        clock.now = at
        with runtime.sessions() as db:
            runtime.audit.record(
                db, kind, actor=Actor.BRAND, customer_id=customer_id, brand_id=brand_id, grant=about,
                fields=["email"], purpose="x",
            )  # fmt: skip
            db.commit()

    logged(midnight - tick)  # the day before the first: not counted
    logged(midnight)  # the first day, from its first instant
    logged(midnight + timedelta(days=5, hours=12))
    logged(midnight + timedelta(days=5, hours=13), Kind.GRANT_AMENDED)  # not a read
    logged(midnight + timedelta(days=5, hours=14), about=uuid4())  # another grant's read
    logged(midnight + timedelta(days=29) - tick)  # the last instant of yesterday
    logged(midnight + timedelta(days=29))  # today
    logged(midnight + timedelta(days=29, hours=23, minutes=59))
    logged(midnight + timedelta(days=30))  # tomorrow: not counted
    with runtime.sessions() as db:
        per_day = runtime.access_log.reads_per_day(db, customer_id, grant_id, first, 30)
    expected = [0] * 30
    expected[0], expected[5], expected[28], expected[29] = 1, 1, 1, 2
    assert per_day == expected
    with runtime.sessions() as db:
        assert runtime.access_log.reads_per_day(db, uuid4(), grant_id, first, 30) == [0] * 30  # not theirs
        assert runtime.access_log.reads_per_day(db, customer_id, grant_id, today, 1) == [2]
        with pytest.raises(ValueError, match="days must be"):
            runtime.access_log.reads_per_day(db, customer_id, grant_id, first, 0)
    clock.now = midnight + timedelta(days=29, hours=23, minutes=59, seconds=30)
    assert portal_login(client, "ada@example.org").status_code == 303  # the first session has ended
    page = client.get(f"/portal/grants/{grant_id}")
    assert f"5 reads in the last 30 days; most on {today.isoformat()} (2)" in page.text
