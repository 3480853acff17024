"""The value ledger as tests drive it: a brand's side of one grant with its value calls, the
customer's ledger, and the log's entries of a kind."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from support.core import bearer, log_in
from support.lifecycle import BrandSide
from support.oauth import OFFER, BrandCredentials, brand_token, publish_offer

VOUCHER = {"kind": "voucher", "amount": "10.00", "currency": "EUR", "redemption": "GROCER-10-QZX"}


def value_offer(client: TestClient, brand: BrandCredentials, **due: Any) -> dict[str, Any]:
    return publish_offer(client, brand_token(client, brand), value={**OFFER["value"], "due": due})


class Brand(BrandSide):
    """The brand's side of one grant (tokens refreshed before each read) and its value calls."""

    def deliver(self, **body: Any) -> Any:
        token = brand_token(self.client, self.credentials)
        return self.client.post(f"/v1/grants/{self.grant_id}/value", json=body, headers=bearer(token))

    def obligations(self) -> list[dict[str, Any]]:
        token = brand_token(self.client, self.credentials)
        answer = self.client.get(f"/v1/grants/{self.grant_id}/value", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    def grant_status(self) -> str:
        token = brand_token(self.client, self.credentials)
        status: str = self.client.get(f"/v1/grants/{self.grant_id}", headers=bearer(token)).json()["status"]
        return status


def ledger(client: TestClient) -> dict[str, Any]:
    answer = client.get("/v1/me/value", headers=bearer(log_in(client, "ada@example.org")))
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def logged(db: Session, prefix: str) -> list[dict[str, Any]]:
    query = select(AuditEntry).where(col(AuditEntry.kind).startswith(prefix)).order_by(col(AuditEntry.index))
    return [decode(row.entry) for row in db.exec(query)]
