"""The auditors' view of escalated disputes: the list, one escalation with its file (each opening
logged) and, once decided, the decision's signed receipt as a bundle an auditor verifies offline.

The file and the reasons come unsealed from `broker.value.disputes`; the receipt from
`broker.receipts`: this use case only puts them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from pydantic import Field
from sqlmodel import Session

from broker.accounts.brands import brand_names
from broker.accounts.models import Auditor
from broker.receipts.schemas import ReceiptPublic
from broker.receipts.service import Receipts
from broker.value.disputes import Disputes
from broker.value.models import Escalation, EscalationStatus, Outcome
from broker.value.schemas import EscalationPage, EscalationPublic

__all__ = ["AuditedEscalation", "DisputeViews", "StatusFilter"]

StatusFilter = Literal["awaiting_customer", "open", "decided", "declined", "withdrawn", "all"]


class AuditedEscalation(EscalationPublic):
    """An escalation as the auditors see it: with the dispute file and the decision's receipt."""

    file: dict[str, Any] | None = Field(
        description="the dispute file the customer agreed to show: the obligation as declared, every "
        "delivery with its redemption data, the dispute, the answer and their times; null before they agreed"
    )
    receipt: ReceiptPublic | None = Field(
        description="the decision's signed receipt, as a bundle `consentry-audit receipt verify` checks"
    )


@dataclass(frozen=True, slots=True)
class DisputeViews:
    """Escalations for the auditors, with their files and receipts."""

    disputes: Disputes
    receipts: Receipts

    def page(
        self, session: Session, *, status: StatusFilter, cursor: str | None, limit: int
    ) -> EscalationPage:
        """Escalations in `status` (all of them for "all"), newest first."""
        wanted = None if status == "all" else EscalationStatus(status)
        result = self.disputes.page(session, status=wanted, cursor=cursor, limit=limit)
        return EscalationPage(items=self._public(session, result.items), next_cursor=result.next_cursor)

    def show(self, session: Session, auditor: Auditor, escalation_id: UUID) -> AuditedEscalation:
        """One escalation with its file (the opening is logged for the customer to see)."""
        return self._audited(session, self.disputes.get(session, escalation_id), auditor)

    def decide(
        self, session: Session, auditor: Auditor, escalation_id: UUID, outcome: Outcome, reasons: str
    ) -> tuple[EscalationPublic, bool]:
        """Decide; the public escalation, and whether this call decided it (False: the same decision
        was made before). The receipt is signed as the transaction commits: `show` returns it."""
        escalation, decided = self.disputes.decide(session, auditor, escalation_id, outcome, reasons)
        return self._public(session, [escalation])[0], decided

    def public(self, session: Session, escalation: Escalation) -> EscalationPublic:
        """One escalation as its customer and brand see it (the reasons, no file)."""
        return self._public(session, [escalation])[0]

    def _audited(self, session: Session, escalation: Escalation, auditor: Auditor) -> AuditedEscalation:
        public = self._public(session, [escalation])[0]
        receipt = None if escalation.receipt_id is None else self.receipts.one(session, escalation.receipt_id)
        file = self.disputes.open_file(session, auditor, escalation)
        return AuditedEscalation(**public.model_dump(), file=file, receipt=receipt)

    def _public(self, session: Session, escalations: list[Escalation]) -> list[EscalationPublic]:
        reasons = self.disputes.reasons(session, escalations)
        names = brand_names(session, {e.brand_id for e in escalations})
        return [
            EscalationPublic.of(e, brand=names.get(e.brand_id, ""), reasons=reasons.get(e.id))
            for e in escalations
        ]
