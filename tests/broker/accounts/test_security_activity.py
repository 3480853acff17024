"""The customer's own security activity: what is recorded, that it is theirs alone, not in the public
audit log, gone with the account, and pruned after the retention period."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import FakeClock, bearer, log_in, sign_up
from support.factors import (
    enrol_totp,
    reauthenticate_with_passkey,
    reauthenticate_with_totp,
    register_passkey,
)
from support.mail import deliver, sink_messages
from support.webauthn import SoftAuthenticator

from broker.accounts.activity import ActivityKind
from broker.accounts.models import Customer, SecurityEvent
from broker.audit.models import AuditEntry
from broker.runtime import Runtime

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def activity(client: TestClient, token: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/me/security-activity", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_sign_ins_are_recorded_and_a_new_device_is_called_out(client: TestClient, clock: FakeClock) -> None:
    sign_up(client, "ada@example.org")
    clock.advance(minutes=1)
    log_in(client, "ada@example.org", user_agent=FIREFOX)
    clock.advance(minutes=1)
    log_in(client, "ada@example.org", user_agent=FIREFOX)
    clock.advance(minutes=1)
    token = log_in(client, "ada@example.org", user_agent=IPHONE)
    seen = [(e["kind"], e["device"], e["detail"]) for e in activity(client, token)]
    assert seen == [
        ("sign_in.new_device", "Mobile Safari on iOS", "password"),
        ("sign_in", "Firefox on Linux", "password"),
        ("sign_in.new_device", "Firefox on Linux", "password"),
        ("sign_in", "Unknown device", "password"),
    ]


def test_the_first_sign_in_is_not_a_new_device(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    token = log_in(client, "ada@example.org")
    assert [e["kind"] for e in activity(client, token)] == ["sign_in", "sign_in"]


def test_ending_sessions_is_recorded_with_the_device_that_was_logged_out(
    client: TestClient, clock: FakeClock
) -> None:
    sign_up(client, "ada@example.org")
    log_in(client, "ada@example.org", user_agent=IPHONE)
    clock.advance(minutes=1)
    mine = log_in(client, "ada@example.org", user_agent=FIREFOX)
    assert (
        client.delete("/v1/me/sessions", params={"scope": "others"}, headers=bearer(mine)).status_code == 200
    )
    revoked = [e["device"] for e in activity(client, mine) if e["kind"] == "session.revoked"]
    assert sorted(revoked) == ["Mobile Safari on iOS", "Unknown device"]


def test_each_customer_sees_only_their_own_activity(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    sign_up(client, "bob@example.org")
    bob = log_in(client, "bob@example.org", user_agent=FIREFOX)
    ada = log_in(client, "ada@example.org")
    assert all(e["device"] != "Firefox on Linux" for e in activity(client, ada))
    assert len(activity(client, bob)) == 2
    assert client.get("/v1/me/security-activity").status_code == 401


def test_activity_is_paginated_newest_first(client: TestClient, clock: FakeClock) -> None:
    sign_up(client, "ada@example.org")
    for _ in range(4):
        clock.advance(seconds=1)
        token = log_in(client, "ada@example.org")
    first = client.get("/v1/me/security-activity", params={"limit": 3}, headers=bearer(token)).json()
    rest = activity(client, token, limit=3, cursor=first["next_cursor"])
    times = [e["at"] for e in first["items"] + rest]
    assert len(times) == 5 and times == sorted(times, reverse=True)


def test_security_activity_is_not_in_the_public_audit_log(client: TestClient, db: Session) -> None:
    sign_up(client, "ada@example.org")
    log_in(client, "ada@example.org", user_agent=FIREFOX)
    kinds = {entry.kind for entry in db.exec(select(AuditEntry)).all()}
    assert not any(kind.startswith(("sign_in", "session", "password")) for kind in kinds)


def test_other_parts_record_through_the_runtime(
    runtime: Runtime, client: TestClient, db: Session, clock: FakeClock
) -> None:
    token = sign_up(client, "ada@example.org")
    customer = db.exec(select(Customer)).one()
    clock.advance(seconds=1)
    runtime.activity.record(
        db, customer.id, ActivityKind.FACTOR_ADDED, device="Firefox on Linux", detail="totp"
    )
    db.commit()
    (latest, *_) = activity(client, token)
    assert (latest["kind"], latest["detail"]) == ("factor.added", "totp")


def test_activity_past_its_retention_is_pruned_by_the_sweep(
    client: TestClient, clock: FakeClock, runtime: Runtime, db: Session
) -> None:
    sign_up(client, "ada@example.org")
    clock.advance(days=runtime.settings.security_activity_retention_days)
    token = log_in(client, "ada@example.org")
    assert len(activity(client, token)) == 1, "older entries are no longer shown"
    runtime.lifecycle.sweep(runtime.sessions)
    db.expire_all()
    assert len(db.exec(select(SecurityEvent)).all()) == 1, "and are deleted by the sweep"


def test_deleting_the_account_deletes_its_activity(client: TestClient, db: Session) -> None:
    token = sign_up(client, "ada@example.org")
    customer_id: UUID = db.exec(select(Customer.id)).one()
    assert client.delete("/v1/me", headers=bearer(token)).status_code == 200
    db.expire_all()
    assert db.exec(select(SecurityEvent).where(SecurityEvent.customer_id == customer_id)).all() == []


def test_the_export_includes_the_activity_and_the_sessions_devices(client: TestClient) -> None:
    token = sign_up(client, "ada@example.org")
    document = client.get("/v1/me/export", headers=bearer(token)).json()
    assert [e["kind"] for e in document["security_activity"]] == ["sign_in"]
    assert [s["device"] for s in document["sessions"]] == ["Unknown device"]


def test_second_factors_added_and_removed_are_recorded_and_mailed(
    client: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    # A second factor quietly added (a thief's own passkey) or removed is what the owner must hear of.
    token = sign_up(client, "ada@example.org")
    clock.advance(minutes=1)
    authenticator = SoftAuthenticator()
    passkey = register_passkey(client, token, authenticator)
    clock.advance(minutes=1)
    reauthenticate_with_passkey(client, token, authenticator)
    secret, _ = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    assert client.delete(f"/v1/me/passkeys/{passkey['id']}", headers=bearer(token)).status_code == 204
    kinds = [(e["kind"], e["detail"]) for e in activity(client, token)][:3]
    assert kinds == [
        (ActivityKind.FACTOR_REMOVED, "passkey"),
        (ActivityKind.FACTOR_ADDED, "authenticator app"),
        (ActivityKind.FACTOR_ADDED, "passkey"),
    ]
    deliver(runtime)
    subjects = [str(m["Subject"]) for m in sink_messages(runtime.settings.data_dir, "ada@example.org")]
    assert subjects[-3:] == [
        "A sign-in method was added to your Consentry account",
        "A sign-in method was added to your Consentry account",
        "A sign-in method was removed from your Consentry account",
    ]
