"""Everything we hold about a customer, in one document they can download (`GET /v1/me/export`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from broker.accounts.models import Customer
from broker.accounts.profiles import CustomerProfiles
from broker.accounts.signin import SignIn
from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant
from broker.receipts.service import Receipts
from broker.value.views import ValueViews
from broker.voice.models import ContactReport
from broker.voice.preferences import Preferences

__all__ = ["FORMAT", "CustomerExport"]

FORMAT = "consentry-export/4"  # 4: with the preferences


@dataclass(frozen=True, slots=True)
class CustomerExport:
    """The account, profile and sessions, the preferences (every version) and the contacts brands
    reported, every grant, what brands owe, every log
    entry about them, every consent receipt and the second factors set up."""

    profiles: CustomerProfiles
    grants: Grants
    value: ValueViews
    receipts: Receipts
    signin: SignIn
    preferences: Preferences

    def document(self, session: Session, customer: Customer) -> dict[str, Any]:
        """The whole export, decrypted, as JSON-ready data."""
        document = self.profiles.export(session, customer)
        now = self.grants.clock()
        rows = session.exec(
            select(Grant)
            .where(Grant.customer_id == customer.id)
            .order_by(col(Grant.created_at), col(Grant.id))
        ).all()
        document["format"] = FORMAT
        document["preferences"] = self.preferences.of(session, customer.id).model_dump(mode="json")
        document["preferences_history"] = [
            version.model_dump(mode="json") for version in self.preferences.history(session, customer.id)
        ]
        document["contacts"] = [
            row.model_dump(mode="json", exclude={"customer_id"})
            for row in session.exec(
                select(ContactReport)
                .where(col(ContactReport.customer_id) == customer.id)
                .order_by(col(ContactReport.contacted_at), col(ContactReport.id))
            )
        ]
        document["grants"] = [
            {
                "id": str(grant.id),
                "brand": brand.name,
                "brand_client_id": brand.client_id,
                "offer_id": str(grant.offer_id),
                "fields": grant.fields,
                "purpose": grant.purpose,
                "status": effective_status(grant, now).value,
                "created_at": grant.created_at.isoformat(),
                "expires_at": grant.expires_at.isoformat(),
                "ended_by": grant.ended_by,
            }
            for grant, brand in self.grants.with_brands(session, rows)
        ]
        document["value"] = [
            o.model_dump(mode="json") for o in self.value.everything_for(session, customer.id)
        ]
        entries = session.exec(
            select(AuditEntry.index, AuditEntry.entry)
            .where(AuditEntry.customer_id == customer.id)
            .order_by(col(AuditEntry.index))
        )
        document["access_log"] = [{"index": index, **decode(entry)} for index, entry in entries]
        document["receipts"] = self.receipts.everything_for(session, customer.id)
        document["second_factors"] = self._second_factors(session, customer)
        return document

    def _second_factors(self, session: Session, customer: Customer) -> dict[str, Any]:
        """Which sign-in methods are set up (never the TOTP secret or recovery codes themselves)."""
        totp = self.signin.totp.factor(session, customer.id)
        return {
            "passkeys": [
                {
                    "name": p.name,
                    "created_at": p.created_at.isoformat(),
                    "last_used_at": p.last_used_at.isoformat() if p.last_used_at else None,
                }
                for p in self.signin.passkeys.views(session, customer.id)
            ],
            "authenticator_app_since": totp.confirmed_at.isoformat() if totp and totp.confirmed_at else None,
            "recovery_codes_left": self.signin.recovery.remaining(session, customer.id),
        }
