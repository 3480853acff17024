"""Webhooks: brands register endpoints and receive every grant and value event, signed per Standard
Webhooks, from a durable outbox written with the event, retried with backoff, logged for the brand.

These tests run with the development setting that allows a receiver on 127.0.0.1 (the SSRF
defences are in test_webhook_addresses.py)."""

from __future__ import annotations

import dataclasses
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from support.core import FakeClock, bearer, make_settings, sign_up
from support.oauth import REDIRECT, BrandCredentials, authorized, brand_token, portal_login, publish_offer
from support.webhooks import Receiver, hook_token, register, running_receiver, verifies

from broker.app import create_app
from broker.audit.entries import Actor
from broker.consent.models import Grant
from broker.db import SessionFactory
from broker.oauth.clients import register_brand
from broker.runtime import Runtime, build_runtime
from broker.settings import Settings
from broker.webhooks import delivery
from broker.webhooks.delivery import BATCH, LEASE, RETRY_DELAYS, WebhookDelivery
from broker.webhooks.models import MessageStatus, WebhookAttempt, WebhookEndpoint, WebhookMessage
from broker.webhooks.service import MAX_ENDPOINTS
from vault.sqltypes import utcnow


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url, webhooks_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def grant_of(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], db: Session
) -> tuple[Grant, str]:
    """Consent to `offer`; the grant and the pairwise `sub` the brand knows the customer by."""
    tokens = authorized(client, brand, offer)
    introspected = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth())
    grant = db.get(Grant, UUID(introspected.json()["grant_id"]))
    assert grant is not None
    return grant, introspected.json()["sub"]


def test_registering_shows_the_secret_once_and_the_endpoint_is_the_brands_alone(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, receiver: Receiver
) -> None:
    token, rival_token = hook_token(client, brand), hook_token(client, rival)
    created = register(client, token, receiver.base + "/hooks", events=["grant.revoked", "grant.created"])
    assert created["secret"].startswith("whsec_") and created["events"] == ["grant.revoked", "grant.created"]
    assert created["status"] == "enabled"
    one = client.get(f"/v1/webhooks/{created['id']}", headers=bearer(token))
    listed = client.get("/v1/webhooks", headers=bearer(token))
    assert one.status_code == 200 and "secret" not in one.json()
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]] and "secret" not in listed.text
    assert client.get("/v1/webhooks", headers=bearer(rival_token)).json()["items"] == []
    for method in ("GET", "DELETE"):
        theirs = client.request(method, f"/v1/webhooks/{created['id']}", headers=bearer(rival_token))
        assert theirs.status_code == 404 and theirs.headers["content-type"] == "application/problem+json"
    assert client.delete(f"/v1/webhooks/{created['id']}", headers=bearer(token)).status_code == 204
    assert client.get(f"/v1/webhooks/{created['id']}", headers=bearer(token)).status_code == 404


def test_a_brand_may_register_at_most_twenty_endpoints(
    client: TestClient, brand: BrandCredentials, receiver: Receiver
) -> None:
    token = hook_token(client, brand)
    for n in range(MAX_ENDPOINTS):
        register(client, token, f"{receiver.base}/{n}")
    refused = client.post("/v1/webhooks", json={"url": receiver.base}, headers=bearer(token))
    assert refused.status_code == 409 and "delete one first" in refused.json()["detail"]
    first = client.get("/v1/webhooks", params={"limit": 15}, headers=bearer(token)).json()
    rest = client.get("/v1/webhooks", params={"cursor": first["next_cursor"]}, headers=bearer(token)).json()
    assert len(first["items"]) + len(rest["items"]) == MAX_ENDPOINTS and rest["next_cursor"] is None


def test_managing_webhooks_needs_the_webhooks_scopes(
    client: TestClient, brand: BrandCredentials, receiver: Receiver
) -> None:
    narrow = brand_token(client, brand, scope="grants:read")
    refused = client.post("/v1/webhooks", json={"url": receiver.base}, headers=bearer(narrow))
    assert refused.status_code == 403 and refused.json()["type"].endswith("/insufficient-scope")
    assert client.get("/v1/webhooks", headers=bearer(narrow)).status_code == 403


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"url": "https://hooks.example", "events": ["grant.exploded"]}, "/events/0"),
        ({"url": "https://hooks.example", "events": []}, "/events"),
        ({"url": "https://hooks.example", "secret": "mine"}, "/secret"),
        ({"url": "ftp://hooks.example"}, "/url"),
        ({"url": ""}, "/url"),
    ],
)
def test_bad_registrations_are_422_naming_the_field(
    client: TestClient, brand: BrandCredentials, body: dict[str, Any], pointer: str
) -> None:
    response = client.post("/v1/webhooks", json=body, headers=bearer(hook_token(client, brand)))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert pointer in [e["pointer"] for e in response.json()["errors"]]


def test_every_grant_and_value_event_reaches_the_brand_signed_and_without_personal_data(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    receiver: Receiver,
) -> None:
    endpoint = register(client, hook_token(client, brand), receiver.base + "/all")
    grant, sub = grant_of(client, brand, offer, db)
    narrowed = client.patch(
        f"/v1/me/grants/{grant.id}", json={"fields": ["email", "dietary"]}, headers=bearer(customer)
    )
    assert narrowed.status_code == 200, narrowed.text
    db.refresh(grant)
    runtime.grants.suspend(db, grant, reason="value-overdue")
    runtime.grants.resume(db, grant, reason="value-delivered")
    db.commit()
    delivered = client.post(
        f"/v1/grants/{grant.id}/value",
        json={"kind": "voucher", "amount": "10.00", "currency": "EUR", "redemption": "CODE-SECRET-1"},
        headers=bearer(brand_token(client, brand)),
    )
    obligation = delivered.json()["id"]
    disputed = client.post(
        f"/v1/me/value/{obligation}/dispute",
        json={"reason": "the code does not work"},
        headers=bearer(customer),
    )
    assert disputed.status_code == 200, disputed.text
    assert client.delete(f"/v1/me/grants/{grant.id}", headers=bearer(customer)).status_code in (200, 204)

    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 6
    assert receiver.types() == [
        "grant.created", "grant.amended", "grant.suspended", "grant.resumed",
        "value.disputed", "grant.revoked",
    ]  # fmt: skip
    assert all(verifies(endpoint["secret"], r) for r in receiver.got)
    assert len({r.headers["webhook-id"] for r in receiver.got}) == 6
    events = {r.event["type"]: r.event for r in receiver.got}
    assert {e["data"]["grant_id"] for e in events.values()} == {str(grant.id)}
    assert {e["data"]["subject"] for e in events.values()} == {sub}
    assert events["grant.amended"]["data"]["fields"] == ["email", "dietary"]
    assert events["grant.suspended"]["data"]["reason"] == "value-overdue"
    assert events["value.disputed"]["data"]["obligation"] == obligation
    assert events["grant.revoked"]["data"]["actor"] == "customer"
    assert datetime.fromisoformat(events["grant.created"]["timestamp"]) == runtime.clock()
    everything = b"".join(r.body for r in receiver.got)
    for personal in (
        b"ada@example.org",
        b"vegan",
        b"Ada",
        b"CODE-SECRET-1",
        b"does not work",
        str(grant.customer_id).encode(),
    ):
        assert personal not in everything
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 0, "each message is delivered once"


def test_the_standard_webhooks_reference_library_verifies_what_we_send(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    receiver: Receiver,
) -> None:
    endpoint = register(client, hook_token(client, brand), receiver.base, events=["grant.created"])
    authorized(client, brand, offer)
    # The library checks webhook-timestamp against the real time, so this worker signs on the real clock.
    dataclasses.replace(runtime.webhook_delivery, clock=utcnow).deliver_due(runtime.sessions)
    [received] = receiver.got
    verified = Webhook(endpoint["secret"]).verify(received.body, received.headers)
    assert verified["type"] == "grant.created"
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(received.body.replace(b"created", b"revoked"), received.headers)


def test_every_send_shares_one_tls_context_which_still_checks_certificates(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Building a context costs 25-50 ms of CPU (httpx loads certifi's CAs): one per send was most of a
    # send's cost, and a fifth of a core in the soak (bench/soak.py).
    token = hook_token(client, brand)
    for path in ("/a", "/b"):
        register(client, token, receiver.base + path, events=["grant.created"])
    authorized(client, brand, offer)
    used: list[object] = []
    real = httpx.Client

    def recording(*args: Any, **kwargs: Any) -> httpx.Client:
        used.append(kwargs["verify"])
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery.httpx, "Client", recording)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 2
    assert len(used) == 2 and used[0] is used[1] and isinstance(used[0], ssl.SSLContext)
    assert used[0].verify_mode is ssl.CERT_REQUIRED and used[0].check_hostname


def test_one_run_sends_more_than_a_claimed_batch_but_no_more_than_its_limit(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    receiver: Receiver,
) -> None:
    token = hook_token(client, brand)
    for n in range(BATCH + 3):
        register(client, token, f"{receiver.base}/{n}", events=["grant.created"])
    authorized(client, brand, offer)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions, limit=2) == 2
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == BATCH + 1
    assert sorted(r.path for r in receiver.got) == sorted(f"/{n}" for n in range(BATCH + 3))


def test_an_expiry_found_by_the_sweep_is_delivered(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    register(client, hook_token(client, brand), receiver.base, events=["grant.expired"])
    grant, _ = grant_of(client, brand, offer, db)
    clock.advance(days=offer["grant_duration_days"], seconds=1)
    assert runtime.lifecycle.sweep(runtime.sessions) == 1
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    assert receiver.types() == ["grant.expired"]
    assert receiver.got[0].event["data"]["grant_id"] == str(grant.id)


def test_an_endpoint_gets_only_its_event_types_and_another_brand_gets_nothing(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    receiver: Receiver,
) -> None:
    register(client, hook_token(client, brand), receiver.base + "/revocations", events=["grant.revoked"])
    register(client, hook_token(client, rival), receiver.base + "/rival")
    grant, _ = grant_of(client, brand, offer, db)
    runtime.grants.revoke(db, grant, by=Actor.BRAND)
    db.commit()
    runtime.webhook_delivery.deliver_due(runtime.sessions)
    assert receiver.types("/revocations") == ["grant.revoked"]
    assert receiver.types("/rival") == []
    assert [r.path for r in receiver.got] == ["/revocations"]


def test_a_rolled_back_change_leaves_no_message(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    receiver: Receiver,
) -> None:
    register(client, hook_token(client, brand), receiver.base, events=["grant.revoked"])
    grant, _ = grant_of(client, brand, offer, db)
    runtime.grants.revoke(db, grant, by=Actor.CUSTOMER)
    db.flush()
    assert db.exec(select(WebhookMessage).where(WebhookMessage.event_type == "grant.revoked")).all()
    db.rollback()
    assert db.exec(select(WebhookMessage).where(WebhookMessage.event_type == "grant.revoked")).all() == []
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 0
    assert receiver.got == []


def test_a_failed_delivery_is_retried_after_the_backoff_with_the_same_id_and_logged(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    token = hook_token(client, brand)
    endpoint = register(client, token, receiver.base, events=["grant.created"])
    receiver.statuses = [500]
    grant_of(client, brand, offer, db)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 0, "not due again before the backoff"
    clock.advance(seconds=RETRY_DELAYS[0].total_seconds() * 1.1 + 1)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    first, second = receiver.got
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.body == second.body and verifies(endpoint["secret"], second)

    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(token))
    assert log.status_code == 200, log.text
    newest, oldest = log.json()["items"]
    assert (newest["attempt"], newest["status_code"], newest["next_attempt_at"]) == (2, 200, None)
    assert (oldest["attempt"], oldest["status_code"], oldest["error"]) == (1, 500, None)
    assert newest["message_id"] == oldest["message_id"] == first.headers["webhook-id"]
    retry_in = datetime.fromisoformat(oldest["next_attempt_at"]) - datetime.fromisoformat(oldest["at"])
    assert RETRY_DELAYS[0] * 0.9 <= retry_in <= RETRY_DELAYS[0] * 1.1
    theirs = client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(hook_token(client, rival))
    )
    assert theirs.status_code == 404


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "3600", timedelta(hours=1)),  # seconds: longer than the schedule's 5 s, so it wins
        (503, "Mon, 23 Nov 2026 13:00:00 GMT", timedelta(hours=4)),  # an HTTP date (the clock: 09:00)
        (429, "999999999", timedelta(hours=24)),  # capped: a receiver cannot park a message for good
        (503, "1", RETRY_DELAYS[0]),  # shorter than the schedule: the schedule stands
        (500, "3600", RETRY_DELAYS[0]),  # only 429 and 503 carry a Retry-After we honour
        (429, "soon", RETRY_DELAYS[0]),  # unreadable: ignored
    ],
)
def test_a_receiver_asking_to_wait_is_not_retried_sooner(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
    status: int,
    retry_after: str,
    wait: timedelta,
) -> None:
    assert clock.now == datetime(2026, 11, 23, 9, tzinfo=UTC)
    token = hook_token(client, brand)
    endpoint = register(client, token, receiver.base, events=["grant.created"])
    receiver.statuses, receiver.retry_after = [status], [retry_after]
    grant_of(client, brand, offer, db)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(token)).json()["items"]
    retry_in = datetime.fromisoformat(log[0]["next_attempt_at"]) - datetime.fromisoformat(log[0]["at"])
    low, high = (wait * 0.9, wait * 1.1) if wait == RETRY_DELAYS[0] else (wait, wait)
    assert low <= retry_in <= high, retry_in
    clock.advance(seconds=retry_in.total_seconds() - 1)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 0, "not before it asked"
    clock.advance(seconds=1)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1 and len(receiver.got) == 2


def test_delivered_and_failed_messages_are_pruned_after_the_retention_and_pending_ones_kept(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    token = hook_token(client, brand)
    endpoint = register(client, token, receiver.base, events=["grant.created"])
    receiver.statuses = [200, 500, 410]  # delivered; to be retried (pending); failed
    for _ in range(3):
        grant_of(client, brand, offer, db)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 3
    clock.advance(days=31)
    assert runtime.webhook_delivery.prune(runtime.sessions) == 2
    db.expire_all()
    kept = db.exec(select(WebhookMessage)).all()
    assert [m.status for m in kept] == [MessageStatus.PENDING], "a pending message is kept, however old"
    fresh = hook_token(client, brand)  # the first one expired meanwhile
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(fresh)).json()["items"]
    assert [(item["message_id"], item["status_code"]) for item in log] == [(kept[0].webhook_id, 500)]
    assert runtime.webhook_delivery.prune(runtime.sessions) == 0


def test_pruning_removes_exactly_what_is_past_the_retention(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    token = hook_token(client, brand)
    endpoint = register(client, token, receiver.base, events=["grant.created"])
    grant_of(client, brand, offer, db)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    clock.advance(days=30, seconds=-1)
    assert runtime.webhook_delivery.prune(runtime.sessions) == 0, "not a second early"
    clock.advance(seconds=2)
    assert runtime.webhook_delivery.prune(runtime.sessions) == 1
    fresh = hook_token(client, brand)  # the first one expired meanwhile
    log = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(fresh)).json()["items"]
    assert log == [] and db.exec(select(WebhookAttempt)).all() == []


def test_a_message_fails_when_the_schedule_runs_out_and_410_disables_the_endpoint(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    token = hook_token(client, brand)
    endpoint = register(client, token, receiver.base, events=["grant.created", "grant.revoked"])
    receiver.statuses = [503] * (len(RETRY_DELAYS) + 1)
    grant, _ = grant_of(client, brand, offer, db)
    for _ in range(len(RETRY_DELAYS) + 1):
        assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
        clock.advance(hours=27)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 0
    message = db.exec(select(WebhookMessage)).one()
    assert message.status is MessageStatus.FAILED and message.attempts == len(RETRY_DELAYS) + 1

    receiver.statuses = [410]
    runtime.grants.revoke(db, grant, by=Actor.CUSTOMER)
    db.commit()
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    fresh = hook_token(client, brand)  # the first token expired while the clock ran
    shown = client.get(f"/v1/webhooks/{endpoint['id']}", headers=bearer(fresh)).json()
    assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]


def test_an_unreachable_receiver_is_logged_as_an_error(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
) -> None:
    with running_receiver() as gone:
        closed = gone.base  # nothing listens here once the receiver stopped
    token = hook_token(client, brand)
    endpoint = register(client, token, closed, events=["grant.created"])
    grant_of(client, brand, offer, db)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    [attempt] = client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=bearer(token)).json()["items"]
    assert attempt["status_code"] is None and attempt["error"].startswith("connection failed")
    assert attempt["next_attempt_at"] is not None


def test_a_rotated_secret_signs_the_next_delivery_and_the_old_one_no_longer_does(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    receiver: Receiver,
) -> None:
    token = hook_token(client, brand)
    endpoint = register(client, token, receiver.base, events=["grant.created"])
    rotated = client.post(f"/v1/webhooks/{endpoint['id']}/secret", headers=bearer(token))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != endpoint["secret"]
    grant_of(client, brand, offer, db)
    runtime.webhook_delivery.deliver_due(runtime.sessions)
    [received] = receiver.got
    assert verifies(rotated.json()["secret"], received) and not verifies(endpoint["secret"], received)


def test_a_message_committed_before_the_server_died_is_delivered_after_restart(
    tmp_path: Path, fresh_database_url: str, receiver: Receiver
) -> None:
    settings = make_settings(tmp_path / "var", fresh_database_url, webhooks_allow_private=True)
    first = build_runtime(settings, clock=FakeClock())
    with first.sessions() as session:
        registered = register_brand(
            session, name="Grocer", redirect_uris=[REDIRECT], public=False, clock=first.clock
        )
        session.commit()
    brand = BrandCredentials(registered.brand.client_id, registered.client_secret)
    with TestClient(create_app(runtime=first), base_url="http://127.0.0.1:8000") as client:
        endpoint = register(client, hook_token(client, brand), receiver.base, events=["grant.created"])
        offer = publish_offer(client, brand_token(client, brand))
        sign_up(client, "ada@example.org")
        assert portal_login(client, "ada@example.org").status_code == 303
        authorized(client, brand, offer)
    first.dispose()  # the server dies: nothing was sent
    assert receiver.got == []

    second = build_runtime(settings, clock=FakeClock())
    try:
        assert second.webhook_delivery.deliver_due(second.sessions) == 1
    finally:
        second.dispose()
    assert receiver.types() == ["grant.created"] and verifies(endpoint["secret"], receiver.got[0])


def test_a_lease_lets_another_worker_retry_a_send_that_never_reported(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    receiver: Receiver,
) -> None:
    register(client, hook_token(client, brand), receiver.base, events=["grant.created"])
    grant_of(client, brand, offer, db)
    claimed = runtime.webhook_delivery.claim(runtime.sessions, 10)  # then the worker dies before sending
    assert len(claimed) == 1
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 0, "another worker leaves it alone"
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert runtime.webhook_delivery.deliver_due(runtime.sessions) == 1
    assert receiver.types() == ["grant.created"]


def test_two_workers_claiming_at_once_never_take_the_same_message(
    tmp_path: Path, fresh_database_url: str
) -> None:
    runtime = build_runtime(make_settings(tmp_path / "var", fresh_database_url), clock=FakeClock())
    try:
        with runtime.sessions() as session:
            brand = register_brand(
                session, name="G", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
            )
            endpoint = WebhookEndpoint(
                brand_id=brand.brand.id, url="https://hooks.example/", created_at=runtime.clock()
            )
            session.add(endpoint)
            session.flush()
            for _ in range(2 * BATCH):
                now = runtime.clock()
                message = WebhookMessage(
                    endpoint_id=endpoint.id,
                    event_type="grant.created",
                    body=b"{}",
                    created_at=now,
                    next_attempt_at=now,
                )
                session.add(message)
            session.commit()
        start = threading.Barrier(2)

        def worker() -> list[UUID]:
            start.wait()
            return [job.message_id for job in runtime.webhook_delivery.claim(runtime.sessions)]

        with ThreadPoolExecutor(2) as pool:
            first, second = [f.result() for f in [pool.submit(worker), pool.submit(worker)]]
        assert not set(first) & set(second)
        assert len(first) + len(second) == 2 * BATCH
    finally:
        runtime.dispose()


def test_the_worker_prunes_at_most_once_per_period_between_deliveries(runtime: Runtime) -> None:
    pruned: list[float] = []

    class Counting(WebhookDelivery):
        __slots__ = ()

        def prune(self, sessions: SessionFactory, batch: int = 1000) -> int:
            pruned.append(time.monotonic())
            return 0

    delivery = runtime.webhook_delivery
    worker = Counting(clock=delivery.clock, secrets=delivery.secrets, retention=delivery.retention)

    async def run_briefly() -> None:
        with anyio.move_on_after(0.5):
            await worker.deliver_periodically(runtime.sessions, interval=0.01)

    anyio.run(run_briefly)
    assert len(pruned) == 1, "dozens of delivery runs, one pruning (the next is due in an hour)"
