"""The value ledger: the offer's declared value becomes obligations the broker enforces.

An obligation moves owed → delivered → confirmed, through disputes, or is cancelled, only as the table
in `broker.value.states` allows. A grant's obligations are made when it is created: one for a one-off
value (due at once for `before_first_read`, or N days later), or one per month for a monthly value
(month k due at the end of month k, made when month k starts: `broker.value.schedule`). Overdue is not
a state: an owed obligation past its due date.

Enforcement happens on the read path (`before_read`), so it holds with no background job: the
grant carries `value_check_at`, the next moment anything can fall due, and a read before it costs
nothing more. At or after it, the read catches up (makes the months that started), and if something
is overdue the grant is suspended and the read refused with `value-overdue`, naming what and since
when. The delivery that settles the last overdue obligation resumes the grant.

When a grant ends (revoked or expired), what was owed stays owed if the brand read any data under
it; if it never read, its owed obligations are cancelled. Narrowing a grant changes nothing owed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlmodel import Session, col, select

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog, QueuedEntry
from broker.consent.grants import Grants
from broker.consent.models import Grant, GrantStatus, Offer
from broker.consent.notices import Notice, NoticeType
from broker.errors import Conflict, NotFound, ValueOverdue, ValueSettled
from broker.value import schedule
from broker.value.amounts import check_delivery, from_minor, to_minor
from broker.value.models import (
    Delivery,
    Escalation,
    EscalationStatus,
    Obligation,
    ObligationStatus,
    Schedule,
)
from broker.value.states import Event, move, target
from vault.profile import Vault

__all__ = ["ValueLedger"]

_LIFECYCLE = frozenset(
    {NoticeType.GRANT_CREATED, NoticeType.GRANT_RENEWED, NoticeType.GRANT_REVOKED, NoticeType.GRANT_EXPIRED}
)


@dataclass(frozen=True, slots=True)
class ValueLedger:
    """Obligations, deliveries, confirmations and disputes; the clock is injected."""

    clock: Callable[[], datetime]
    audit: AuditLog
    vault: Vault
    grants: Grants

    # Grant lifecycle (a notice subscriber, `broker.consent.notices`)

    def notice(self, session: Session, notice: Notice) -> None:
        """Follow the grant: obligations start with it, settle as it ends, and may grow as it is renewed."""
        if notice.type not in _LIFECYCLE:
            return
        grant = session.get(Grant, notice.grant_id)
        assert grant is not None, "a grant notice names a grant"
        if notice.type is NoticeType.GRANT_CREATED:
            offer = session.get(Offer, grant.offer_id)
            assert offer is not None  # grants keep their offer version
            self.grant_created(session, grant, offer)
        elif notice.type is NoticeType.GRANT_RENEWED:
            self.grant_renewed(session, grant)
        else:
            self.grant_ended(session, grant)

    def grant_created(self, session: Session, grant: Grant, offer: Offer) -> None:
        """Turn the offer's declared value into the grant's first obligation."""
        due, start = offer.value["due"], grant.created_at
        if due["when"] == "monthly":
            self._add(session, grant, offer.value, Schedule.MONTHLY, 0, schedule.month_due(start, 0))
        else:  # before_first_read has no days: due at once, so the first read needs it
            due_at = schedule.one_off_due(start, due.get("days"))
            self._add(session, grant, offer.value, Schedule.ONCE, 0, due_at)
        self._schedule(session, grant)

    def grant_ended(self, session: Session, grant: Grant) -> None:
        """Settle what is owed as the grant ends: kept if data was read under it, else cancelled."""
        self._catch_up(session, grant, min(self.clock(), grant.expires_at))
        if grant.first_read_at is None:
            for obligation in self._owed(session, grant.id):
                self._move(session, obligation, Event.CANCEL, Kind.VALUE_CANCELLED, Actor.BROKER)
        grant.value_check_at = None
        session.add(grant)

    def grant_renewed(self, session: Session, grant: Grant) -> None:
        """A later expiry may bring months that were past the old one: look again when one starts."""
        self._schedule(session, grant)

    # The read path

    def before_read(self, session: Session, grant: Grant) -> None:
        """Refuse the read (and suspend the grant) while value is overdue; resume it once it is not.

        The caller holds the grant's row lock, and calls this only for a grant that has not ended."""
        now = self.clock()
        if grant.value_check_at is None or now < grant.value_check_at:
            return  # the common case: nothing can have fallen due since the last look
        overdue = self._refresh(session, grant, now)
        if overdue is not None:
            raise self._refusal(grant, overdue)

    def read_served(self, session: Session, grant: Grant) -> None:
        """Remember the first read: from then on, what the grant owes stays owed if it ends."""
        if grant.first_read_at is None:
            grant.first_read_at = self.clock()
            session.add(grant)

    def _refresh(self, session: Session, grant: Grant, now: datetime) -> Obligation | None:
        """Catch up on months started, suspend or resume the grant, reschedule; the oldest overdue."""
        self._catch_up(session, grant, now)
        overdue = next((o for o in self._owed(session, grant.id) if o.overdue(now)), None)
        if overdue is not None:
            if overdue.overdue_noticed_at is None:
                overdue.overdue_noticed_at = now
                session.add(overdue)
                self._event(session, overdue, Kind.VALUE_OVERDUE, Actor.BROKER, due_at=overdue.due_at)
            if grant.status is GrantStatus.ACTIVE and now < grant.expires_at:
                self.grants.suspend(session, grant, reason="value-overdue")
        elif grant.status is GrantStatus.SUSPENDED and now < grant.expires_at:
            self.grants.resume(session, grant, reason="value-delivered")
        self._schedule(session, grant)
        return overdue

    def _refusal(self, grant: Grant, overdue: Obligation) -> ValueOverdue:
        what = overdue.declared.get("description", overdue.declared["kind"])
        month = f" (month {overdue.period + 1})" if overdue.schedule is Schedule.MONTHLY else ""
        return ValueOverdue(
            f"the brand has not delivered '{what}'{month}, due {overdue.due_at.isoformat()}: reads of grant "
            f"'{grant.id}' are suspended until it is delivered (POST /v1/grants/{grant.id}/value)",
            obligation_id=str(overdue.id),
            due_at=overdue.due_at.isoformat(),
            grant_id=str(grant.id),
        )

    # Brands

    def deliver(
        self,
        session: Session,
        grant: Grant,
        *,
        obligation_id: UUID | None,
        kind: str,
        amount: Decimal | None,
        currency: str | None,
        redemption: str,
    ) -> Obligation:
        """Record a delivery for an owed obligation of `grant` (the oldest when none is named)."""
        now = self.clock()
        self._catch_up(session, grant, min(now, grant.expires_at))
        obligation = self._target(session, grant, obligation_id)
        check_delivery(obligation.declared, kind=kind, amount=amount, currency=currency)
        delivery = Delivery(
            obligation_id=obligation.id,
            kind=kind,
            amount_minor=to_minor(amount),
            currency=currency,
            delivered_at=now,
        )
        session.add(delivery)
        session.flush()
        self._seal(session, grant.customer_id, f"delivery:{delivery.id}", redemption)
        self._move(
            session,
            obligation,
            Event.DELIVER,
            Kind.VALUE_DELIVERED,
            Actor.BRAND,
            delivery=delivery.id,
            value_kind=kind,
            amount=from_minor(delivery.amount_minor),
            currency=currency,
        )
        if grant.status is GrantStatus.SUSPENDED or grant.value_check_at is not None:
            self._refresh(session, grant, now)
        return obligation

    def answer(self, session: Session, grant: Grant, obligation_id: UUID, text: str) -> Obligation:
        """The brand's answer to a dispute, shown to the customer (a new answer replaces the last, and
        the customer may accept or reject it afresh)."""
        obligation = self.of_grant(session, grant, obligation_id)
        target(obligation, Event.ANSWER)  # refused before anything is sealed
        self._seal(session, grant.customer_id, f"answer:{obligation.id}", text)
        obligation.answered_at, obligation.answer_rejected_at = self.clock(), None
        self._move(session, obligation, Event.ANSWER, Kind.VALUE_DISPUTE_ANSWERED, Actor.BRAND)
        return obligation

    def _seal(self, session: Session, customer_id: UUID, label: str, text: str) -> None:
        """Seal a text for the customer; for a deleted account (its vault shredded) nobody could ever
        read it, so it is not kept: the delivery or answer itself is still recorded and logged."""
        if self.vault.exists(session, customer_id):
            self.vault.put_secret(session, customer_id, label, text)

    def for_grant(self, session: Session, grant: Grant) -> list[Obligation]:
        """The grant's obligations, oldest first, the months started so far included."""
        self._catch_up(session, grant, min(self.clock(), grant.expires_at))
        query = select(Obligation).where(Obligation.grant_id == grant.id)
        return list(session.exec(query.order_by(col(Obligation.period), col(Obligation.created_at))))

    # Customers

    def for_customer(self, session: Session, customer_id: UUID, obligation_id: UUID) -> Obligation:
        """One of the customer's obligations; anyone else's is NotFound."""
        obligation = session.get(Obligation, obligation_id)
        if obligation is None or obligation.customer_id != customer_id:
            raise NotFound(f"obligation '{obligation_id}' not found")
        return obligation

    def confirm(self, session: Session, customer_id: UUID, obligation_id: UUID) -> Obligation:
        """The customer received it (also ends a dispute, and any escalation of it)."""
        obligation = self.for_customer(session, customer_id, obligation_id)
        self._move(session, obligation, Event.CONFIRM, Kind.VALUE_CONFIRMED, Actor.CUSTOMER)
        self._end_escalation(session, obligation)
        return obligation

    def dispute(self, session: Session, customer_id: UUID, obligation_id: UUID, reason: str) -> Obligation:
        """The customer says the delivery is not what was declared; the reason is theirs, sealed."""
        obligation = self.for_customer(session, customer_id, obligation_id)
        target(obligation, Event.DISPUTE)  # refused before the reason is sealed
        self.vault.put_secret(session, customer_id, f"dispute:{obligation.id}", reason)
        obligation.disputed_at, obligation.answered_at, obligation.answer_rejected_at = (
            self.clock(),
            None,
            None,
        )
        self._move(session, obligation, Event.DISPUTE, Kind.VALUE_DISPUTED, Actor.CUSTOMER)
        self.grants.notices.publish(
            session,
            Notice(
                type=NoticeType.VALUE_DISPUTED,
                at=self.clock(),
                actor=Actor.CUSTOMER,
                grant_id=obligation.grant_id,
                brand_id=obligation.brand_id,
                customer_id=customer_id,
                data={"obligation": str(obligation.id)},
            ),
        )
        return obligation

    def withdraw_dispute(self, session: Session, customer_id: UUID, obligation_id: UUID) -> Obligation:
        """The customer takes the dispute back: the value is delivered, awaiting confirmation."""
        obligation = self.for_customer(session, customer_id, obligation_id)
        self._move(session, obligation, Event.WITHDRAW, Kind.VALUE_DISPUTE_WITHDRAWN, Actor.CUSTOMER)
        self._end_escalation(session, obligation)
        return obligation

    def reject_answer(self, session: Session, customer_id: UUID, obligation_id: UUID) -> Obligation:
        """The customer does not accept the brand's answer: either party may now escalate the dispute."""
        obligation = self.for_customer(session, customer_id, obligation_id)
        if obligation.status is ObligationStatus.DISPUTED and obligation.answered_at is None:
            raise Conflict(
                f"obligation '{obligation.id}' is disputed but not answered yet: nothing to reject"
            )
        if obligation.answer_rejected_at is not None and obligation.status is ObligationStatus.DISPUTED:
            return obligation  # said once already
        self._move(session, obligation, Event.REJECT_ANSWER, Kind.VALUE_ANSWER_REJECTED, Actor.CUSTOMER)
        obligation.answer_rejected_at = self.clock()
        return obligation

    # Auditors' decisions (`broker.value.disputes` checks who may decide, and when)

    def uphold(
        self, session: Session, obligation: Obligation, redeliver_by: datetime, **details: Any
    ) -> QueuedEntry:
        """An auditor found for the customer: the value is owed again, due by `redeliver_by`; past it,
        the next read suspends the grant as for any overdue value. Returns the decision's log entry."""
        target(obligation, Event.UPHOLD)  # refused before anything changes
        obligation.due_at, obligation.overdue_noticed_at = redeliver_by, None
        entry = self._move(
            session,
            obligation,
            Event.UPHOLD,
            Kind.DISPUTE_DECIDED,
            Actor.AUDITOR,
            redeliver_by=redeliver_by,
            **details,
        )
        grant = session.get(Grant, obligation.grant_id)
        assert grant is not None, "an obligation's grant outlives it"
        if grant.status in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED):
            self._schedule(session, grant)
        return entry

    def overrule(self, session: Session, obligation: Obligation, **details: Any) -> QueuedEntry:
        """An auditor found for the brand: the value counts as delivered, and that is final. Returns the
        decision's log entry."""
        return self._move(session, obligation, Event.OVERRULE, Kind.DISPUTE_DECIDED, Actor.AUDITOR, **details)

    def _end_escalation(self, session: Session, obligation: Obligation) -> None:
        """The dispute ended before a decision: an escalation of it that waits has nothing to decide."""
        live = (EscalationStatus.AWAITING_CUSTOMER, EscalationStatus.OPEN)
        query = select(Escalation).where(
            Escalation.obligation_id == obligation.id, col(Escalation.status).in_(live)
        )
        for escalation in session.exec(query):
            escalation.status, escalation.status_changed_at = EscalationStatus.WITHDRAWN, self.clock()
            session.add(escalation)

    def secrets_for(
        self, session: Session, obligations: Sequence[Obligation], deliveries: dict[UUID, Delivery]
    ) -> dict[str, str]:
        """The redemption, dispute and answer texts of these obligations (all one customer's); none
        once the customer deleted their account."""
        if not obligations or not self.vault.exists(session, obligations[0].customer_id):
            return {}  # none yet, or the account was deleted and its vault shredded
        labels = [f"delivery:{d.id}" for d in deliveries.values()]
        labels += [f"{what}:{o.id}" for o in obligations for what in ("dispute", "answer")]
        return self.vault.secrets(session, obligations[0].customer_id, labels)

    def deliveries(self, session: Session, obligations: Sequence[Obligation]) -> dict[UUID, Delivery]:
        """Each delivered obligation's delivery, in one query."""
        ids = [o.id for o in obligations]
        if not ids:
            return {}
        rows = session.exec(
            select(Delivery).where(col(Delivery.obligation_id).in_(ids)).order_by(col(Delivery.delivered_at))
        )
        return {row.obligation_id: row for row in rows}  # the latest wins: a delivery made again counts

    # Internals

    def _add(
        self,
        session: Session,
        grant: Grant,
        declared: dict[str, Any],
        schedule: Schedule,
        period: int,
        due_at: datetime,
    ) -> Obligation:
        now = self.clock()
        obligation = Obligation(
            grant_id=grant.id,
            brand_id=grant.brand_id,
            customer_id=grant.customer_id,
            schedule=schedule,
            period=period,
            declared=declared,
            kind=declared["kind"],
            amount_minor=to_minor(declared.get("amount")),
            currency=declared.get("currency"),
            due_at=due_at,
            created_at=now,
            status_changed_at=now,
        )
        session.add(obligation)
        session.flush()
        self._event(
            session,
            obligation,
            Kind.VALUE_CREATED,
            Actor.BROKER,
            schedule=schedule.value,
            period=period,
            value_kind=declared["kind"],
            amount=from_minor(obligation.amount_minor),
            currency=obligation.currency,
            due_at=due_at,
        )
        return obligation

    def _catch_up(self, session: Session, grant: Grant, until: datetime) -> None:
        """Make the monthly obligations of every month that started before `until`."""
        # Lock the grant first (PostgreSQL), so two requests never both make the same month.
        session.exec(select(Grant.id).where(Grant.id == grant.id).with_for_update(key_share=True))
        last = session.exec(
            select(Obligation)
            .where(Obligation.grant_id == grant.id, Obligation.schedule == Schedule.MONTHLY)
            .order_by(col(Obligation.period).desc())
            .limit(1)
        ).first()
        if last is None:
            return
        start = grant.created_at
        for period in schedule.months_begun(start, grant.expires_at, after=last.period, until=until):
            due_at = schedule.month_due(start, period)
            self._add(session, grant, last.declared, Schedule.MONTHLY, period, due_at)

    def _schedule(self, session: Session, grant: Grant) -> None:
        """Set `value_check_at`: the earliest due date of what is owed, or the next month's start."""
        due_dates = [o.due_at for o in self._owed(session, grant.id)]
        last_month = session.exec(
            select(Obligation.period)
            .where(Obligation.grant_id == grant.id, Obligation.schedule == Schedule.MONTHLY)
            .order_by(col(Obligation.period).desc())
            .limit(1)
        ).first()
        next_month = (
            None
            if last_month is None
            else schedule.next_month_start(grant.created_at, grant.expires_at, last_month)
        )
        grant.value_check_at = schedule.next_check(due_dates, next_month)
        session.add(grant)

    def _owed(self, session: Session, grant_id: UUID) -> list[Obligation]:
        query = select(Obligation).where(
            Obligation.grant_id == grant_id, Obligation.status == ObligationStatus.OWED
        )
        return list(session.exec(query.order_by(col(Obligation.due_at))))

    def _target(self, session: Session, grant: Grant, obligation_id: UUID | None) -> Obligation:
        if obligation_id is not None:
            obligation = self.of_grant(session, grant, obligation_id)
            target(obligation, Event.DELIVER)  # refused before the delivery is checked
            return obligation
        owed = self._owed(session, grant.id)
        if not owed:
            raise ValueSettled(f"grant '{grant.id}' owes nothing now: every obligation is settled")
        return owed[0]

    def of_grant(self, session: Session, grant: Grant, obligation_id: UUID) -> Obligation:
        """One of the grant's obligations; another grant's, like an unknown id, is NotFound."""
        obligation = session.get(Obligation, obligation_id)
        if obligation is None or obligation.grant_id != grant.id:
            raise NotFound(f"obligation '{obligation_id}' not found for grant '{grant.id}'")
        return obligation

    def _move(
        self, session: Session, obligation: Obligation, event: Event, kind: Kind, actor: Actor, **details: Any
    ) -> QueuedEntry:
        """The one way an obligation's status changes: as `broker.value.states` allows, logged."""
        move(obligation, event, at=self.clock())
        session.add(obligation)
        return self._event(session, obligation, kind, actor, **details)

    def _event(
        self, session: Session, obligation: Obligation, kind: Kind, actor: Actor, **details: Any
    ) -> QueuedEntry:
        return self.audit.record(
            session,
            kind,
            actor=actor,
            customer_id=obligation.customer_id,
            brand_id=obligation.brand_id,
            grant=obligation.grant_id,
            obligation=obligation.id,
            **details,
        )
