"""Disputes that end in a decision: escalation to the auditors, and their ruling.

A disputed obligation can go before the auditors once the brand has had its say: when it has not
answered within `answer_window` of the dispute (setting `dispute_answer_days`), or when the customer
rejected its answer. Either party may escalate; the auditors only ever see what the customer agreed to
show them:

    customer escalates ──(agrees to share)──▶ open ──decide──▶ decided (upheld | rejected)
    brand escalates ──▶ awaiting_customer ──agree──▶ open
                              └──decline──▶ declined          (the customer may still escalate later)
    open | awaiting_customer ──the customer confirms or withdraws the dispute──▶ withdrawn

When the customer agrees, the dispute file (the obligation, every delivery with its redemption data,
the dispute, the answer, their times) is sealed under a vault key of the escalation's own (owner id:
the escalation's id), so the auditors can read it after the customer's own vault is gone, and nothing
of it is plaintext at rest. Each time an auditor opens it, the customer's log says so.

A decision needs one auditor and reasons. Upheld: the obligation is owed again, due by `redelivery`
from the decision (setting `dispute_redelivery_days`); missed, the grant is suspended on the next read
as for any overdue value (`broker.value.service`). Rejected: the value counts as delivered (confirmed).
The reasons are sealed with the file; the log entry and the signed receipt carry their SHA-256. A
decided escalation is final: repeating the same decision is answered as before, any other is 409, and
only a new dispute (after a new delivery) can be escalated again.

What upheld decisions do to a brand's record is `broker.value.record`'s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlmodel import Session, col, select

from broker.accounts.models import Auditor, Brand
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog, QueuedEntry
from broker.consent.models import Grant
from broker.consent.notices import Notice, NoticeType
from broker.errors import DisputeDecided, DisputeNotReady, NotFound
from broker.pagination import Page, page
from broker.value.amounts import from_minor
from broker.value.models import (
    Delivery,
    Escalation,
    EscalationStatus,
    Obligation,
    ObligationStatus,
    Outcome,
)
from broker.value.service import ValueLedger
from vault.profile import Vault

__all__ = [
    "FILE",
    "REASONS",
    "Disputes",
    "latest_escalations",
    "unsealed_reasons",
]

FILE, REASONS = "dispute-file", "reasons"  # the labels of the escalation's sealed secrets
_LIVE = (EscalationStatus.AWAITING_CUSTOMER, EscalationStatus.OPEN)


@dataclass(frozen=True, slots=True)
class Disputes:
    """Escalations and decisions; the clock is injected."""

    clock: Callable[[], datetime]
    audit: AuditLog
    vault: Vault
    ledger: ValueLedger
    answer_window: timedelta
    redelivery: timedelta

    # The customer

    def escalate_as_customer(
        self, session: Session, customer_id: UUID, obligation_id: UUID
    ) -> tuple[Escalation, bool]:
        """Put the dispute before the auditors, sharing its file (or agree to the brand's escalation).
        Returns the escalation and whether this call made it."""
        obligation = self.ledger.for_customer(session, customer_id, obligation_id)
        self._disputed(obligation)
        current = self._current(session, obligation)
        if current is not None and current.status is EscalationStatus.OPEN:
            return current, False  # said once already
        if current is not None and current.status is not EscalationStatus.DECLINED:
            if current.status is EscalationStatus.AWAITING_CUSTOMER:
                self._share(session, current, obligation, Kind.DISPUTE_SHARED)
                return current, False
            raise self._final(current)
        if obligation.answered_at is None:
            self._answer_window_passed(obligation)
        elif obligation.answer_rejected_at is None:
            self.ledger.reject_answer(session, customer_id, obligation.id)  # escalating says so
        if current is None:
            current = self._new(session, obligation, Actor.CUSTOMER, EscalationStatus.OPEN)
        else:  # declined the brand's escalation, now brings it themselves
            current.escalated_by, current.escalated_at = Actor.CUSTOMER.value, self.clock()
        self._share(session, current, obligation, Kind.DISPUTE_ESCALATED)
        self._publish(session, current, NoticeType.DISPUTE_ESCALATED, Actor.CUSTOMER)
        return current, True

    def decline(self, session: Session, customer_id: UUID, obligation_id: UUID) -> Escalation:
        """The customer will not show the file to the auditors: the brand's escalation ends there."""
        obligation = self.ledger.for_customer(session, customer_id, obligation_id)
        current = self._current(session, obligation)
        if current is None:
            raise NotFound(f"obligation '{obligation.id}' has no escalation waiting for your agreement")
        if current.status is EscalationStatus.DECLINED:
            return current
        if current.status is not EscalationStatus.AWAITING_CUSTOMER:
            raise DisputeDecided(
                f"escalation '{current.id}' is {current.status.value}: only one that waits for your "
                "agreement can be declined (to end an open one, confirm or withdraw the dispute)"
            )
        self._status(current, EscalationStatus.DECLINED)
        session.add(current)
        self._log(session, current, Kind.DISPUTE_DECLINED, Actor.CUSTOMER)
        return current

    # The brand

    def escalate_as_brand(
        self, session: Session, grant: Grant, obligation_id: UUID
    ) -> tuple[Escalation, bool]:
        """Ask for the auditors' decision; it waits for the customer's agreement to show the file."""
        obligation = self.ledger.of_grant(session, grant, obligation_id)
        self._disputed(obligation)
        current = self._current(session, obligation)
        if current is not None:
            if current.status in _LIVE:
                return current, False
            raise self._final(current)
        if obligation.answered_at is None:
            self._answer_window_passed(obligation)
        elif obligation.answer_rejected_at is None:
            raise DisputeNotReady(
                f"the customer has not rejected your answer to the dispute of obligation '{obligation.id}' "
                "and may still confirm it; escalate once they reject it"
            )
        escalation = self._new(session, obligation, Actor.BRAND, EscalationStatus.AWAITING_CUSTOMER)
        self._log(session, escalation, Kind.DISPUTE_ESCALATED, Actor.BRAND, shared=False)
        self._publish(session, escalation, NoticeType.DISPUTE_ESCALATED, Actor.BRAND)
        return escalation, True

    def answer(self, session: Session, grant: Grant, obligation_id: UUID, text: str) -> Obligation:
        """The brand answers the dispute (`ValueLedger.answer`); an open escalation's file is sealed
        again with the answer in it, so the auditors see what the customer sees."""
        obligation = self.ledger.answer(session, grant, obligation_id, text)
        current = self._current(session, obligation)
        if current is not None and current.status is EscalationStatus.OPEN:
            self._seal_file(session, current, obligation)
        return obligation

    # The auditors

    def page(
        self, session: Session, *, status: EscalationStatus | None, cursor: str | None, limit: int
    ) -> Page[Escalation]:
        """Escalations, newest first; only those in `status` when given."""
        query = select(Escalation)
        if status is not None:
            query = query.where(Escalation.status == status)
        return page(session, query, Escalation.escalated_at, Escalation.id, cursor=cursor, limit=limit)

    def get(self, session: Session, escalation_id: UUID) -> Escalation:
        """One escalation; NotFound names the list to look in."""
        escalation = session.get(Escalation, escalation_id)
        if escalation is None:
            raise NotFound(f"escalation '{escalation_id}' not found; list them at /v1/audit/disputes")
        return escalation

    def open_file(self, session: Session, auditor: Auditor, escalation: Escalation) -> dict[str, Any] | None:
        """The dispute file, for an auditor; None before the customer agreed. Each opening is logged:
        it is an access to the customer's data, and their timeline shows it."""
        sealed = self.vault.secrets(session, escalation.id, [FILE]) if escalation.shared_at else {}
        if FILE not in sealed:
            return None
        self._log(session, escalation, Kind.DISPUTE_FILE_READ, Actor.AUDITOR, auditor=auditor.id)
        file: dict[str, Any] = json.loads(sealed[FILE])
        return file

    def reasons(self, session: Session, escalations: Iterable[Escalation]) -> dict[UUID, str]:
        """The auditor's reasons of each decided escalation, unsealed."""
        return unsealed_reasons(session, self.vault, escalations)

    def decide(
        self, session: Session, auditor: Auditor, escalation_id: UUID, outcome: Outcome, reasons: str
    ) -> tuple[Escalation, bool]:
        """Decide an open escalation; the same decision again is answered as before (False)."""
        escalation = self._locked(session, escalation_id)
        digest = hashlib.sha256(reasons.encode()).hexdigest()
        if escalation.status is EscalationStatus.DECIDED:
            same = (escalation.decided_by, escalation.outcome, escalation.reasons_sha256)
            if same == (auditor.id, outcome, digest):
                return escalation, False
            raise self._final(escalation)
        if escalation.status is EscalationStatus.AWAITING_CUSTOMER:
            raise DisputeNotReady(
                f"escalation '{escalation.id}' waits for the customer's agreement to show the file; "
                "it cannot be decided before they agree"
            )
        if escalation.status is not EscalationStatus.OPEN:
            raise self._final(escalation)
        obligation = session.get(Obligation, escalation.obligation_id)
        assert obligation is not None and obligation.status is ObligationStatus.DISPUTED, "open: disputed"
        now = self.clock()
        self.vault.put_secret(session, escalation.id, REASONS, reasons)
        escalation.outcome, escalation.decided_at, escalation.decided_by = outcome, now, auditor.id
        escalation.reasons_sha256, escalation.receipt_id = digest, uuid4()
        self._status(escalation, EscalationStatus.DECIDED)
        details: dict[str, Any] = {
            "escalation": escalation.id,
            "outcome": outcome.value,
            "auditor": auditor.id,
            "reasons_sha256": digest,
        }
        if outcome is Outcome.UPHELD:
            escalation.redeliver_by = now + self.redelivery
            entry = self.ledger.uphold(session, obligation, escalation.redeliver_by, **details)
        else:
            entry = self.ledger.overrule(session, obligation, **details)
        session.add(escalation)
        self._publish(session, escalation, NoticeType.DISPUTE_DECIDED, Actor.AUDITOR, entry)
        return escalation, True

    # Internals

    def _disputed(self, obligation: Obligation) -> None:
        if obligation.status is not ObligationStatus.DISPUTED:
            raise DisputeNotReady(
                f"obligation '{obligation.id}' is {obligation.status.value}, not disputed: only a dispute "
                "can go to the auditors"
            )

    def _answer_window_passed(self, obligation: Obligation) -> None:
        assert obligation.disputed_at is not None, "a disputed obligation says since when"
        ready_at = obligation.disputed_at + self.answer_window
        if self.clock() < ready_at:
            raise DisputeNotReady(
                f"the brand has until {ready_at.isoformat()} to answer the dispute of obligation "
                f"'{obligation.id}'; escalate after that, or once you reject its answer"
            )

    def _current(self, session: Session, obligation: Obligation) -> Escalation | None:
        """The escalation of the obligation's current dispute, if there is one."""
        query = select(Escalation).where(
            Escalation.obligation_id == obligation.id, Escalation.disputed_at == obligation.disputed_at
        )
        return session.exec(query.with_for_update()).first()

    def _locked(self, session: Session, escalation_id: UUID) -> Escalation:
        escalation = session.exec(
            select(Escalation).where(Escalation.id == escalation_id).with_for_update()
        ).first()
        if escalation is None:
            raise NotFound(f"escalation '{escalation_id}' not found; list them at /v1/audit/disputes")
        session.refresh(escalation)  # another auditor may have decided while we waited for the lock
        return escalation

    def _new(
        self, session: Session, obligation: Obligation, by: Actor, status: EscalationStatus
    ) -> Escalation:
        assert obligation.disputed_at is not None
        now = self.clock()
        escalation = Escalation(
            obligation_id=obligation.id,
            grant_id=obligation.grant_id,
            brand_id=obligation.brand_id,
            customer_id=obligation.customer_id,
            disputed_at=obligation.disputed_at,
            escalated_by=by.value,
            escalated_at=now,
            status=status,
            status_changed_at=now,
        )
        session.add(escalation)
        session.flush()
        return escalation

    def _share(self, session: Session, escalation: Escalation, obligation: Obligation, kind: Kind) -> None:
        """The customer agreed: seal the file for the auditors, and the escalation is open."""
        escalation.shared_at = self.clock()
        self._status(escalation, EscalationStatus.OPEN)
        session.add(escalation)
        self._seal_file(session, escalation, obligation)
        self._log(session, escalation, kind, Actor.CUSTOMER, shared=True)

    def _seal_file(self, session: Session, escalation: Escalation, obligation: Obligation) -> None:
        if not self.vault.exists(session, escalation.id):
            self.vault.create(session, escalation.id)
        self.vault.put_secret(session, escalation.id, FILE, json.dumps(self._file(session, obligation)))

    def _file(self, session: Session, obligation: Obligation) -> dict[str, Any]:
        """What the auditors see: the obligation as declared, what was delivered, both statements."""
        deliveries = list(
            session.exec(
                select(Delivery)
                .where(Delivery.obligation_id == obligation.id)
                .order_by(col(Delivery.delivered_at))
            )
        )
        labels = [f"delivery:{d.id}" for d in deliveries] + [
            f"dispute:{obligation.id}",
            f"answer:{obligation.id}",
        ]
        words = self.vault.secrets(session, obligation.customer_id, labels)
        brand = session.get(Brand, obligation.brand_id)
        return {
            "obligation": {
                "id": str(obligation.id),
                "grant_id": str(obligation.grant_id),
                "brand": {"id": str(obligation.brand_id), "name": brand.name if brand else ""},
                "declared": obligation.declared,
                "due_at": obligation.due_at.isoformat(),
                "schedule": obligation.schedule.value,
                "period": obligation.period,
            },
            "deliveries": [
                {
                    "id": str(d.id),
                    "kind": d.kind,
                    "amount": from_minor(d.amount_minor),
                    "currency": d.currency,
                    "delivered_at": d.delivered_at.isoformat(),
                    "redemption": words.get(f"delivery:{d.id}"),
                }
                for d in deliveries
            ],
            "dispute": {
                "disputed_at": _iso(obligation.disputed_at),
                "reason": words.get(f"dispute:{obligation.id}"),
            },
            "answer": None
            if obligation.answered_at is None
            else {
                "answered_at": _iso(obligation.answered_at),
                "answer": words.get(f"answer:{obligation.id}"),
            },
            "answer_rejected_at": _iso(obligation.answer_rejected_at),
        }

    def _status(self, escalation: Escalation, status: EscalationStatus) -> None:
        escalation.status, escalation.status_changed_at = status, self.clock()

    def _final(self, escalation: Escalation) -> DisputeDecided:
        when = escalation.status_changed_at.isoformat()
        return DisputeDecided(
            f"escalation '{escalation.id}' was {escalation.status.value} on {when}: it cannot change; "
            "a new dispute (after a new delivery) can be escalated again"
        )

    def _log(
        self, session: Session, escalation: Escalation, kind: Kind, actor: Actor, **details: Any
    ) -> None:
        self.audit.record(
            session,
            kind,
            actor=actor,
            customer_id=escalation.customer_id,
            brand_id=escalation.brand_id,
            grant=escalation.grant_id,
            obligation=escalation.obligation_id,
            escalation=escalation.id,
            **details,
        )

    def _publish(
        self,
        session: Session,
        escalation: Escalation,
        type: NoticeType,
        actor: Actor,
        entry: QueuedEntry | None = None,
    ) -> None:
        """Tell the brand (webhook), the customer (mail) and, for a decision, issue the receipt."""
        data: dict[str, object] = {
            "obligation": str(escalation.obligation_id),
            "escalation": str(escalation.id),
        }
        if escalation.outcome is not None:
            data["outcome"] = escalation.outcome.value
            data["redeliver_by"] = _iso(escalation.redeliver_by)
            data["receipt"] = str(escalation.receipt_id)
        else:
            data["status"] = escalation.status.value
        self.ledger.grants.notices.publish(
            session,
            Notice(
                type=type,
                at=self.clock(),
                actor=actor,
                grant_id=escalation.grant_id,
                brand_id=escalation.brand_id,
                customer_id=escalation.customer_id,
                data=data,
                entry=entry,
            ),
        )


def latest_escalations(session: Session, obligation_ids: Iterable[UUID]) -> dict[UUID, Escalation]:
    """Each obligation's latest escalation, for those that have one."""
    ids = list(obligation_ids)
    if not ids:
        return {}
    query = select(Escalation).where(col(Escalation.obligation_id).in_(ids))
    return {e.obligation_id: e for e in session.exec(query.order_by(col(Escalation.escalated_at)))}


def unsealed_reasons(session: Session, vault: Vault, escalations: Iterable[Escalation]) -> dict[UUID, str]:
    """The auditor's reasons of each decided escalation, unsealed."""
    found: dict[UUID, str] = {}
    for escalation in escalations:
        if escalation.reasons_sha256 is not None and vault.exists(session, escalation.id):
            words = vault.secrets(session, escalation.id, [REASONS]).get(REASONS)
            if words is not None:
                found[escalation.id] = words
    return found


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
