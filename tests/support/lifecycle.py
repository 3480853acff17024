"""Test support for grant lifecycles over time: a notice recorder, a grant made through the consent
flow, a brand reading under it, and the audit entries about one grant."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.consent.models import Grant
from broker.consent.notices import Notice
from support.core import FakeClock, bearer
from support.oauth import BrandCredentials, authorized, grant_id_of


class Recorder:
    """A notice subscriber that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[Notice] = []

    def notice(self, session: Session, notice: Notice) -> None:
        self.seen.append(notice)


def grant_of(client: TestClient, brand: BrandCredentials, offer: dict[str, Any], db: Session) -> Grant:
    """Run the consent flow for the logged-in customer; the grant it made."""
    grant = db.get(Grant, UUID(grant_id_of(client, brand, authorized(client, brand, offer))))
    assert grant is not None
    return grant


class BrandSide:
    """The brand's side of one grant: its tokens, refreshed before each read."""

    def __init__(self, client: TestClient, credentials: BrandCredentials, offer: dict[str, Any]) -> None:
        self.client, self.credentials = client, credentials
        self.tokens = authorized(client, credentials, offer)
        self.grant_id: str = grant_id_of(client, credentials, self.tokens)

    def refresh(self) -> None:
        """Trade the refresh token (it lasts 30 days) for new tokens."""
        refresh = {"grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"]}
        renewed = self.client.post("/oauth/token", data=refresh, auth=self.credentials.auth())
        assert renewed.status_code == 200, renewed.text
        self.tokens = renewed.json()

    def read(self) -> Any:
        """Refresh the tokens, then read the profile."""
        self.refresh()
        return self.client.get("/v1/profile", headers=bearer(self.tokens["access_token"]))

    def wait(self, clock: FakeClock, **duration: float) -> None:
        """Let time pass, refreshing the tokens at least every 15 days as a brand would."""
        end = clock.now + timedelta(**duration)
        while clock.now + timedelta(days=15) < end:
            clock.advance(days=15)
            self.refresh()
        clock.now = end


def entries_about(db: Session, grant_id: str, kind: str) -> list[dict[str, Any]]:
    """The decoded audit entries of one kind about one grant, in log order."""
    rows = db.exec(
        select(AuditEntry)
        .where(AuditEntry.kind == kind, AuditEntry.grant_id == UUID(grant_id))
        .order_by(col(AuditEntry.index))
    ).all()
    return [decode(row.entry) for row in rows]
