"""Token families follow their grant only as a notice subscriber that the composition root wires
(`broker.oauth.families.TokenFamilies`): consent revokes or extends no token itself. With the
subscriber left out, a grant that is narrowed, revoked, expires or is renewed touches no token; with
the runtime's wiring, its families are revoked (or its refresh tokens extended) as before."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.core import FakeClock
from support.lifecycle import BrandSide, entries_about
from support.oauth import BrandCredentials, brand_token, publish_offer

from broker.audit.entries import Actor
from broker.consent.grants import Grants
from broker.consent.models import Grant, GrantStatus
from broker.consent.notices import Notices
from broker.consent.renewal import Renewals
from broker.oauth.families import TokenFamilies
from broker.oauth.models import RefreshToken, TokenFamily
from broker.runtime import Runtime

pytestmark = pytest.mark.parametrize("wired", [True, False], ids=["runtime", "no-token-subscriber"])


def grants_for(runtime: Runtime, *, wired: bool) -> Grants:
    """The runtime's grants (every subscriber wired), or grants whose notices reach every subscriber of
    the runtime's but the token families."""
    if wired:
        return runtime.grants
    others = [s for s in runtime.grants.notices.subscribers if not isinstance(s, TokenFamilies)]
    return Grants(clock=runtime.clock, audit=runtime.audit, notices=Notices(others))


def families_of(db: Session, grant_id: UUID) -> list[TokenFamily]:
    db.expire_all()
    return list(db.exec(select(TokenFamily).where(col(TokenFamily.grant_id) == grant_id)))


def test_a_narrowed_then_revoked_grant_revokes_its_families_only_through_the_subscriber(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    wired: bool,
) -> None:
    side = BrandSide(client, brand, offer)
    grant_id, grants = UUID(side.grant_id), grants_for(runtime, wired=wired)
    grant = db.get(Grant, grant_id)
    assert grant is not None and families_of(db, grant_id)

    grants.narrow_for_customer(
        db, grant.customer_id, grant_id, fields=offer["required_fields"], expires_at=None
    )
    db.commit()
    assert all(f.revoked_at is None for f in families_of(db, grant_id)), "narrowing never revokes tokens"

    grant = db.get(Grant, grant_id)
    assert grant is not None
    grants.revoke(db, grant, by=Actor.CUSTOMER)
    db.commit()
    assert db.get(Grant, grant_id).status is GrantStatus.REVOKED  # type: ignore[union-attr]
    families = families_of(db, grant_id)
    if wired:
        assert {(f.revoked_reason, f.revoked_at is not None) for f in families} == {("grant-revoked", True)}
        assert [e["actor"] for e in entries_about(db, side.grant_id, "token_family.revoked")] == ["customer"]
    else:
        assert all(f.revoked_at is None for f in families)
        assert entries_about(db, side.grant_id, "token_family.revoked") == []


def test_an_expired_grant_revokes_its_families_only_through_the_subscriber(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    wired: bool,
) -> None:
    side = BrandSide(client, brand, offer)
    grant_id, grants = UUID(side.grant_id), grants_for(runtime, wired=wired)
    clock.advance(days=offer["grant_duration_days"], seconds=1)
    assert grants.settle_lapsed(db) == 1
    db.commit()
    assert db.get(Grant, grant_id).status is GrantStatus.EXPIRED  # type: ignore[union-attr]
    families = families_of(db, grant_id)
    if wired:
        assert {f.revoked_reason for f in families} == {"grant-expired"}
        assert [e["actor"] for e in entries_about(db, side.grant_id, "token_family.revoked")] == ["broker"]
    else:
        assert all(f.revoked_at is None for f in families)


def test_a_renewal_extends_the_refresh_tokens_only_through_the_subscriber(
    client: TestClient,
    brand: BrandCredentials,
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
    wired: bool,
) -> None:
    # A 20-day grant: the refresh token issued on day 0 is capped at day 20, its grant's expiry.
    offer = publish_offer(client, brand_token(client, brand), grant_duration_days=20)
    side = BrandSide(client, brand, offer)
    grant_id, old_expiry = UUID(side.grant_id), clock.now + timedelta(days=20)
    renewals = Renewals(
        clock=runtime.clock,
        grants=grants_for(runtime, wired=wired),
        offers=runtime.offers,
        window=timedelta(days=14),
    )
    clock.advance(days=10)
    grant = db.get(Grant, grant_id)
    assert grant is not None
    renewals.renew(db, grant.customer_id, grant_id)  # until day 30
    db.commit()
    db.expire_all()
    (token,) = db.exec(
        select(RefreshToken).join(TokenFamily).where(col(TokenFamily.grant_id) == grant_id)
    ).all()
    assert token.expires_at == (old_expiry + timedelta(days=10) if wired else old_expiry)
    clock.advance(days=15)  # day 25: past the old cap, before the new one
    refresh = {"grant_type": "refresh_token", "refresh_token": side.tokens["refresh_token"]}
    answer = client.post("/oauth/token", data=refresh, auth=brand.auth())
    assert answer.status_code == (200 if wired else 400), answer.text


def test_the_runtime_tells_receipts_webhooks_value_then_token_families(runtime: Runtime, wired: bool) -> None:
    """The order is the contract of `broker.consent.notices`: receipts and webhooks take the terms as
    they stand, then the value ledger and the token families react; dispute mail only reads."""
    kinds = [type(s).__name__ for s in runtime.grants.notices.subscribers]
    assert kinds == ["Receipts", "Webhooks", "ValueLedger", "TokenFamilies", "DisputeMail"]
    assert runtime.grants.notices is runtime.retention.grants.notices is runtime.renewals.grants.notices
