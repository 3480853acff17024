"""The customer's own view of their profile: read, replace, patch, export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from broker.accounts.models import Customer, CustomerSession, SecurityEvent
from broker.accounts.service import Accounts
from broker.errors import EmailChangeNeedsVerification, ValidationFailed
from vault.fields import DERIVED_FIELDS, JSONValue


def _email_required() -> ValidationFailed:
    message = "email is required: it is how you log in"
    return ValidationFailed(message, errors=[{"pointer": "/email", "detail": message}])


def _change_elsewhere() -> EmailChangeNeedsVerification:
    message = (
        "the email address changes through POST /v1/me/email, which confirms the new address by a code "
        "sent to it before it replaces this one; send the current address here, or leave it out of a PATCH"
    )
    return EmailChangeNeedsVerification(message, errors=[{"pointer": "/email", "detail": message}])


@dataclass(frozen=True, slots=True)
class CustomerProfiles:
    """Profile operations a logged-in customer performs on their own data."""

    accounts: Accounts

    def read(self, session: Session, customer: Customer) -> dict[str, dict[str, JSONValue]]:
        """Stored fields and the derived fields computed from them."""
        profile = self.accounts.vault.read(session, customer.id)
        return {
            "fields": {k: v for k, v in profile.items() if k not in DERIVED_FIELDS},
            "derived": {k: v for k, v in profile.items() if k in DERIVED_FIELDS},
        }

    def replace(
        self, session: Session, customer: Customer, values: Mapping[str, Any]
    ) -> dict[str, dict[str, JSONValue]]:
        """PUT semantics: the profile becomes exactly `values` (email included)."""
        if values.get("email") is None:
            raise _email_required()
        self._same_email(session, customer, values["email"])
        self.accounts.vault.write(session, customer.id, values, replace=True)
        return self.read(session, customer)

    def patch(
        self, session: Session, customer: Customer, values: Mapping[str, Any]
    ) -> dict[str, dict[str, JSONValue]]:
        """PATCH semantics (JSON merge patch): given fields change, null removes, others stay."""
        if "email" in values and values["email"] is None:
            raise _email_required()
        if "email" in values:
            self._same_email(session, customer, values["email"])
        self.accounts.vault.write(session, customer.id, values, replace=False)
        return self.read(session, customer)

    def _same_email(self, session: Session, customer: Customer, given: Any) -> None:
        """The profile may restate the address (in another case, say), never change it: a new address
        is confirmed first (`broker.usecases.verification`)."""
        if not isinstance(given, str):
            return  # the vault's validation answers with the field's rule
        email = self.accounts.normalise_email(given)
        if self.accounts.email_token(email) != customer.email_index:
            raise _change_elsewhere()

    def export(self, session: Session, customer: Customer) -> dict[str, Any]:
        """Everything we hold about the customer, decrypted, as one JSON-ready document."""
        sessions = session.exec(
            select(CustomerSession).where(CustomerSession.customer_id == customer.id)
        ).all()
        activity = session.exec(
            select(SecurityEvent)
            .where(SecurityEvent.customer_id == customer.id)
            .order_by(col(SecurityEvent.created_at))
        ).all()
        return {
            "format": "consentry-export/1",
            "generated_at": self.accounts.clock().isoformat(),
            "account": {
                "id": str(customer.id),
                "created_at": customer.created_at.isoformat(),
                "email_verified_at": customer.email_verified_at.isoformat()
                if customer.email_verified_at
                else None,
            },
            "profile": self.accounts.vault.export(session, customer.id),
            "sessions": [
                {
                    "created_at": s.created_at.isoformat(),
                    "last_seen_at": s.last_seen_at.isoformat(),
                    "expires_at": s.expires_at.isoformat(),
                    "ended_at": s.revoked_at.isoformat() if s.revoked_at else None,
                    "device": s.device,
                }
                for s in sessions
            ],
            "security_activity": [
                {"at": e.created_at.isoformat(), "kind": e.kind, "device": e.device, "detail": e.detail}
                for e in activity
            ],
        }
