"""Every change to a grant is told to the notice subscribers in its own transaction, and the
lifecycle sweep records expiries that no request touched."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.core import FakeClock, bearer
from support.lifecycle import Recorder, grant_of
from support.oauth import BrandCredentials, brand_token

from broker.audit.entries import Actor, decode
from broker.audit.models import AuditEntry
from broker.consent.models import Grant, GrantStatus
from broker.consent.notices import Notice, NoticeType
from broker.runtime import Runtime


@pytest.fixture
def told(runtime: Runtime) -> Recorder:
    recorder = Recorder()
    runtime.notices.subscribers.append(recorder)
    return recorder


def test_each_grant_change_is_told_once_with_its_terms(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    told: Recorder,
) -> None:
    grant = grant_of(client, brand, offer, db)
    runtime.grants.narrow_for_customer(
        db, grant.customer_id, grant.id, fields=["email", "dietary"], expires_at=None
    )
    runtime.grants.suspend(db, grant, reason="value-overdue")
    runtime.grants.resume(db, grant, reason="value-delivered")
    runtime.grants.revoke(db, grant, by=Actor.CUSTOMER)
    db.commit()
    assert [n.type for n in told.seen] == [
        NoticeType.GRANT_CREATED,
        NoticeType.GRANT_AMENDED,
        NoticeType.GRANT_SUSPENDED,
        NoticeType.GRANT_RESUMED,
        NoticeType.GRANT_REVOKED,
    ]
    assert {(n.grant_id, n.brand_id, n.customer_id) for n in told.seen} == {
        (grant.id, grant.brand_id, grant.customer_id)
    }
    created, amended, suspended = told.seen[0], told.seen[1], told.seen[2]
    assert created.actor is Actor.CUSTOMER and len(created.data["fields"]) > 2  # type: ignore[arg-type]
    assert amended.data["fields"] == ["email", "dietary"]
    assert amended.data["expires_at"] == grant.expires_at.isoformat()
    assert suspended.data["reason"] == "value-overdue" and suspended.actor is Actor.BROKER
    assert told.seen[-1].actor is Actor.CUSTOMER


def test_a_dispute_is_told_with_its_obligation(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    told: Recorder,
) -> None:
    grant = grant_of(client, brand, offer, db)
    token = brand_token(client, brand)
    delivered = client.post(
        f"/v1/grants/{grant.id}/value",
        json={"kind": "voucher", "amount": "10.00", "currency": "EUR", "redemption": "CODE-1"},
        headers=bearer(token),
    )
    assert delivered.status_code == 201, delivered.text
    obligation = delivered.json()["id"]
    disputed = client.post(
        f"/v1/me/value/{obligation}/dispute",
        json={"reason": "the code does not work"},
        headers=bearer(customer),
    )
    assert disputed.status_code == 200, disputed.text
    assert told.seen[-1].type is NoticeType.VALUE_DISPUTED
    assert told.seen[-1].data == {"obligation": obligation} and told.seen[-1].grant_id == grant.id


def test_the_sweep_expires_lapsed_grants_once_and_tells(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    told: Recorder,
) -> None:
    grant = grant_of(client, brand, offer, db)
    assert runtime.lifecycle.sweep(runtime.sessions) == 0
    clock.advance(days=offer["grant_duration_days"], seconds=1)
    assert runtime.lifecycle.sweep(runtime.sessions) == 1
    assert runtime.lifecycle.sweep(runtime.sessions) == 0
    db.expire_all()
    stored = db.get(Grant, grant.id)
    assert stored is not None and stored.status is GrantStatus.EXPIRED
    assert stored.status_changed_at == stored.expires_at
    expired = db.exec(select(AuditEntry).where(AuditEntry.kind == "grant.expired")).all()
    assert [decode(e.entry)["grant"] for e in expired] == [str(grant.id)]
    assert [n.type for n in told.seen].count(NoticeType.GRANT_EXPIRED) == 1
    families = db.exec(select(AuditEntry).where(col(AuditEntry.kind) == "token_family.revoked")).all()
    assert families, "the expired grant's refresh tokens are revoked with it"


def test_a_rolled_back_change_leaves_what_subscribers_wrote_behind_with_it(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
) -> None:
    class Writer:
        def notice(self, session: Session, notice: Notice) -> None:
            session.add(AuditEntry(index=10_000, entry=b"{}", leaf_hash=b"0" * 32, created_at=notice.at))

    grant = grant_of(client, brand, offer, db)
    runtime.notices.subscribers.append(Writer())
    runtime.grants.revoke(db, grant, by=Actor.CUSTOMER)
    db.flush()
    db.rollback()
    assert db.get(AuditEntry, 10_000) is None
    assert db.get(Grant, grant.id).status is GrantStatus.ACTIVE  # type: ignore[union-attr]
