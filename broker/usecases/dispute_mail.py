"""Dispute mail: the customer hears by mail when the brand puts their dispute before the auditors (an
auditor can decide only once they agree to show the file) and when an auditor decided it. The brand
hears of both by webhook (`dispute.escalated`, `dispute.decided`). A notice subscriber: the message is
queued in the transaction that records the step, so it exists exactly when the step committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.accounts.models import Brand
from broker.audit.entries import Actor
from broker.consent.notices import Notice, NoticeType
from broker.mail.outbox import Mail
from broker.value.models import Escalation, Obligation, Outcome
from vault.profile import Vault

__all__ = ["DisputeMail"]


@dataclass(frozen=True, slots=True)
class DisputeMail:
    """Queues the customer's message for a brand's escalation and for a decision."""

    vault: Vault
    mail: Mail

    def notice(self, session: Session, notice: Notice) -> None:
        """Queue the message `notice` calls for, if any (the customer's own escalation needs none)."""
        if notice.type is NoticeType.DISPUTE_ESCALATED and notice.actor is Actor.BRAND:
            template = "dispute_escalated"
        elif notice.type is NoticeType.DISPUTE_DECIDED:
            template = "dispute_decided"
        else:
            return
        email = self.vault.read_stored(session, notice.customer_id, ["email"]).get("email")
        if not isinstance(email, str):
            return  # the account was deleted: nobody to tell
        escalation = session.get(Escalation, UUID(str(notice.data["escalation"])))
        obligation = session.get(Obligation, UUID(str(notice.data["obligation"])))
        brand = session.get(Brand, notice.brand_id)
        assert escalation is not None and obligation is not None and brand is not None
        by = escalation.redeliver_by
        context: dict[str, Any] = {
            "brand": brand.name,
            "what": obligation.declared.get("description") or obligation.declared["kind"],
            "grant_id": str(notice.grant_id),
            "upheld": escalation.outcome is Outcome.UPHELD,
            "redeliver_by": "" if by is None else f"{by:%Y-%m-%d %H:%M} UTC",
        }
        self.mail.enqueue(session, notice.customer_id, to=email, template=template, context=context)
