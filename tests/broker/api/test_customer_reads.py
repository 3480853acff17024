"""The customer's lists are reads: `GET /v1/me/grants`, `GET /v1/me/grants/{id}` and the portal's
dashboard run in a read-only transaction, so they take no lock a writer needs and cannot write.

What they used to write moved out of the request: a lapsed grant's expiry is computed by the view and
recorded by the lifecycle sweep, and the session's last-seen time is written in its own short
transaction, at most once a minute. Authentication still refuses an ended session on every request.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select
from support.core import PG_URL, FakeClock, bearer, make_settings, sign_up
from support.oauth import REDIRECT, BrandCredentials, authorized, brand_token, portal_login, publish_offer

from broker.accounts.models import CustomerSession
from broker.api.grant_schemas import GrantPage
from broker.app import create_app
from broker.audit.models import AuditEntry
from broker.consent.models import Grant, GrantStatus
from broker.db import create_db_engine
from broker.digests import secret_digest
from broker.oauth.clients import register_brand
from broker.runtime import Runtime, build_runtime

READ_ROUTES = ("/v1/me/grants", "/portal/")
TIMEOUT_SECONDS = 1.0


def _lapse_the_grant(client: TestClient, customer: str, clock: FakeClock) -> dict[str, Any]:
    grant = client.get("/v1/me/grants", headers=bearer(customer)).json()["items"][0]
    expiry = (clock.now + timedelta(seconds=60)).isoformat()
    changed = client.patch(
        f"/v1/me/grants/{grant['id']}", json={"expires_at": expiry}, headers=bearer(customer)
    )
    assert changed.status_code == 200, changed.text
    clock.advance(seconds=61)
    view: dict[str, Any] = changed.json()
    return view


def _expired_entries(db: Session) -> int:
    return len(db.exec(select(AuditEntry).where(col(AuditEntry.kind) == "grant.expired")).all())


def test_a_lapsed_grant_is_listed_as_expired_without_any_write(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    authorized(client, brand, offer)
    before = _lapse_the_grant(client, customer, clock)
    fresh = customer
    listed = client.get("/v1/me/grants", headers=bearer(fresh)).json()["items"][0]
    one = client.get(f"/v1/me/grants/{before['id']}", headers=bearer(fresh)).json()
    assert listed == one
    assert listed["status"] == "expired" and listed["status_changed_at"] == before["expires_at"]
    assert listed["deletion"]["status"] == "due" and listed["deletion_due_at"] is not None
    assert "expired" in client.get("/portal/").text
    db.expire_all()
    stored = db.get(Grant, UUID(before["id"]))
    assert stored is not None and stored.status is GrantStatus.ACTIVE, "a view wrote the expiry"
    assert _expired_entries(db) == 0
    # The sweep records the expiry; the views show exactly what they showed before it.
    assert runtime.lifecycle.sweep(runtime.sessions) == 1
    assert _expired_entries(db) == 1
    assert client.get("/v1/me/grants", headers=bearer(fresh)).json()["items"][0] == listed
    assert client.get(f"/v1/me/grants/{before['id']}", headers=bearer(fresh)).json() == one


def test_a_revoked_session_is_refused_by_every_list(client: TestClient, customer: str) -> None:
    for path in READ_ROUTES:
        assert client.get(path, headers=bearer(customer), follow_redirects=False).status_code == 200, path
    assert client.delete("/v1/sessions/current", headers=bearer(customer)).status_code == 204
    refused = client.get("/v1/me/grants", headers=bearer(customer))
    assert refused.status_code == 401 and refused.json()["type"].endswith("/unauthenticated")
    assert refused.headers["content-type"].startswith("application/problem+json")
    client.cookies.clear()
    client.cookies.set("consentry_session", customer)
    page = client.get("/portal/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/portal/login")


def test_an_idle_session_is_refused_by_every_list(
    client: TestClient, customer: str, runtime: Runtime, clock: FakeClock
) -> None:
    clock.advance(seconds=runtime.settings.session_idle_seconds)
    assert client.get("/v1/me/grants", headers=bearer(customer)).status_code == 401
    assert client.get("/portal/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", READ_ROUTES)
def test_last_seen_still_advances_at_most_once_a_minute(
    client: TestClient, clock: FakeClock, db: Session, path: str
) -> None:
    sign_up(client, "ada@example.org")
    assert portal_login(client, "ada@example.org").status_code == 303  # the cookie authenticates both
    digest = secret_digest(client.cookies["consentry_session"])
    row = db.exec(select(CustomerSession).where(CustomerSession.token_hash == digest)).one()
    opened = row.last_seen_at
    clock.advance(seconds=59)
    assert client.get(path, follow_redirects=False).status_code == 200
    db.expire_all()
    assert db.get(CustomerSession, row.id).last_seen_at == opened, "no write within the minute"  # type: ignore[union-attr]
    clock.advance(seconds=1)
    assert client.get(path, follow_redirects=False).status_code == 200
    db.expire_all()
    assert db.get(CustomerSession, row.id).last_seen_at == opened + timedelta(seconds=60)  # type: ignore[union-attr]


@pytest.fixture
def served(tmp_path: Path, fresh_database_url: str) -> Iterator[tuple[TestClient, str]]:
    """The app on a database the test commits to, with a customer who has one grant."""
    engine: Engine = create_db_engine(fresh_database_url, timeout=TIMEOUT_SECONDS)
    settings = make_settings(tmp_path / "var", fresh_database_url, database_timeout_seconds=TIMEOUT_SECONDS)
    runtime = build_runtime(settings, engine=engine)
    with runtime.sessions() as db:
        registered = register_brand(db, name="Green Grocer", redirect_uris=[REDIRECT],
                                    public=False, clock=runtime.clock)  # fmt: skip
        db.commit()
    try:
        with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as http:
            brand = BrandCredentials(registered.brand.client_id, registered.client_secret)
            offer = publish_offer(http, brand_token(http, brand))
            token = sign_up(http, "ada@example.org")
            assert portal_login(http, "ada@example.org").status_code == 303
            authorized(http, brand, offer)
            yield http, token
    finally:
        engine.dispose()


@pytest.mark.skipif(PG_URL is not None, reason="SQLite's database-wide write lock")
def test_the_lists_answer_while_another_connection_holds_the_write_lock(
    served: tuple[TestClient, str], fresh_database_url: str
) -> None:
    http, token = served
    holder = sqlite3.connect(make_url(fresh_database_url).database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a writer (another process, a backup) holds the lock
        for path in READ_ROUTES:
            started = time.monotonic()
            answer = http.get(path, headers=bearer(token), follow_redirects=False)
            assert answer.status_code == 200, (path, answer.text)
            assert time.monotonic() - started < TIMEOUT_SECONDS, f"{path} waited for the write lock"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.skipif(PG_URL is not None, reason="SQLite's database-wide write lock")
def test_a_held_write_lock_delays_last_seen_but_not_the_list(
    served: tuple[TestClient, str], fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    http, token = served
    db_path = make_url(fresh_database_url).database or ""
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)  # due again, not yet idle
    stale = two_minutes_ago.strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLite stores it (naive UTC)
    with sqlite3.connect(db_path, isolation_level=None) as setter:
        setter.execute("UPDATE customer_session SET last_seen_at = ?", (stale,))
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        answer = http.get("/v1/me/grants", headers=bearer(token))
        assert answer.status_code == 200, answer.text  # the read answered; the bookkeeping waits
        assert "last-seen time was not written" in caplog.text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert http.get("/v1/me/grants", headers=bearer(token)).status_code == 200  # due still: written now
    with sqlite3.connect(db_path) as reader:
        seen = [at for (at,) in reader.execute("SELECT last_seen_at FROM customer_session")]
    assert seen.count(stale) == len(seen) - 1  # the bearer's session moved on (the portal's did not ask)


def test_the_public_shape_built_without_validation_is_the_validated_one(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
) -> None:
    authorized(client, brand, offer)
    (grant,) = db.exec(select(Grant)).all()
    page = runtime.grant_views.customer_page(
        db, grant.customer_id, status=None, brand_client_id=None, cursor=None, limit=50
    )
    built = GrantPage.of(page)
    validated = GrantPage.model_validate(built.model_dump())
    assert built == validated and built.model_dump_json() == validated.model_dump_json()
    assert (
        client.get("/v1/me/grants", headers=bearer(customer)).content == validated.model_dump_json().encode()
    )
