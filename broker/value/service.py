"""The value ledger: the offer's declared value becomes obligations the broker enforces.

    owed ──deliver──▶ delivered ──confirm──▶ confirmed
      │                  │  ▲                   ▲
      │               dispute  withdraw          │
      │                  ▼  │                    │
      │               disputed ───confirm────────┘      (the brand may answer a dispute)
      └──grant ended before any read──▶ cancelled

A grant's obligations are made when it is created: one for a one-off value (due at once for
`before_first_read`, or N days later), or one per month for a monthly value (month k due at the end
of month k, made when month k starts). Overdue is not a state: an owed obligation past its due date.

Enforcement happens on the read path (`before_read`), so it holds with no background job: the
grant carries `value_check_at`, the next moment anything can fall due, and a read before it costs
nothing more. At or after it, the read catches up (makes the months that started), and if something
is overdue the grant is suspended and the read refused with `value-overdue`, naming what and since
when. The delivery that settles the last overdue obligation resumes the grant.

When a grant ends (revoked or expired), what was owed stays owed if the brand read any data under
it; if it never read, its owed obligations are cancelled. Narrowing a grant changes nothing owed.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlmodel import Session, col, select

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants
from broker.consent.models import Grant, GrantStatus, Offer
from broker.errors import Conflict, NotFound, ValidationFailed, ValueOverdue, ValueSettled
from broker.notices import Notice, NoticeType
from broker.value.models import Delivery, Obligation, ObligationStatus, Schedule
from vault.profile import Vault

__all__ = ["ValueLedger", "add_months", "from_minor", "to_minor"]

_SETTLED = "settled"


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later, on the month's last day when it is shorter."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def to_minor(amount: Decimal | str | None) -> int | None:
    """An exact amount in hundredths."""
    return None if amount is None else int(Decimal(amount) * 100)


def from_minor(amount: int | None) -> str | None:
    """Hundredths back to the exact decimal string."""
    return None if amount is None else format(Decimal(amount) / 100, ".2f")


@dataclass(frozen=True, slots=True)
class ValueLedger:
    """Obligations, deliveries, confirmations and disputes; the clock is injected."""

    clock: Callable[[], datetime]
    audit: AuditLog
    vault: Vault
    grants: Grants

    # Grant lifecycle (a `GrantListener`)

    def grant_created(self, session: Session, grant: Grant, offer: Offer) -> None:
        """Turn the offer's declared value into the grant's first obligation."""
        due = offer.value["due"]
        if due["when"] == "monthly":
            self._add(session, grant, offer.value, Schedule.MONTHLY, 0, add_months(grant.created_at, 1))
        else:
            days = due.get("days") or 0  # before_first_read: due at once, so the first read needs it
            self._add(session, grant, offer.value, Schedule.ONCE, 0, grant.created_at + timedelta(days=days))
        self._schedule(session, grant)

    def grant_ended(self, session: Session, grant: Grant) -> None:
        """Settle what is owed as the grant ends: kept if data was read under it, else cancelled."""
        self._catch_up(session, grant, min(self.clock(), grant.expires_at))
        if grant.first_read_at is None:
            for obligation in self._owed(session, grant.id):
                self._set(session, obligation, ObligationStatus.CANCELLED, Kind.VALUE_CANCELLED, Actor.BROKER)
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
        _check_delivery(obligation, kind=kind, amount=amount, currency=currency)
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
        self._set(
            session,
            obligation,
            ObligationStatus.DELIVERED,
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
        """The brand's answer to a dispute, shown to the customer."""
        obligation = self._of_grant(session, grant, obligation_id)
        if obligation.status is not ObligationStatus.DISPUTED:
            raise Conflict(
                f"obligation '{obligation.id}' is {obligation.status.value}, not disputed: nothing to answer"
            )
        self._seal(session, grant.customer_id, f"answer:{obligation.id}", text)
        obligation.answered_at = self.clock()
        session.add(obligation)
        self._event(session, obligation, Kind.VALUE_DISPUTE_ANSWERED, Actor.BRAND)
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
        """The customer received it (also ends a dispute)."""
        obligation = self.for_customer(session, customer_id, obligation_id)
        if obligation.status not in (ObligationStatus.DELIVERED, ObligationStatus.DISPUTED):
            raise Conflict(_cannot(obligation, "confirmed", "only a delivered value can be confirmed"))
        self._set(session, obligation, ObligationStatus.CONFIRMED, Kind.VALUE_CONFIRMED, Actor.CUSTOMER)
        return obligation

    def dispute(self, session: Session, customer_id: UUID, obligation_id: UUID, reason: str) -> Obligation:
        """The customer says the delivery is not what was declared; the reason is theirs, sealed."""
        obligation = self.for_customer(session, customer_id, obligation_id)
        if obligation.status is not ObligationStatus.DELIVERED:
            raise Conflict(
                _cannot(obligation, "disputed", "only a delivered, unconfirmed value can be disputed")
            )
        self.vault.put_secret(session, customer_id, f"dispute:{obligation.id}", reason)
        obligation.disputed_at, obligation.answered_at = self.clock(), None
        self._set(session, obligation, ObligationStatus.DISPUTED, Kind.VALUE_DISPUTED, Actor.CUSTOMER)
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
        if obligation.status is not ObligationStatus.DISPUTED:
            raise Conflict(_cannot(obligation, "withdrawn from dispute", "it is not disputed"))
        self._set(
            session, obligation, ObligationStatus.DELIVERED, Kind.VALUE_DISPUTE_WITHDRAWN, Actor.CUSTOMER
        )
        return obligation

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
        rows = session.exec(select(Delivery).where(col(Delivery.obligation_id).in_(ids)))
        return {row.obligation_id: row for row in rows}

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
        period = last.period + 1
        while (
            add_months(grant.created_at, period) <= until
            and add_months(grant.created_at, period) < grant.expires_at
        ):
            self._add(
                session,
                grant,
                last.declared,
                Schedule.MONTHLY,
                period,
                add_months(grant.created_at, period + 1),
            )
            period += 1

    def _schedule(self, session: Session, grant: Grant) -> None:
        """Set `value_check_at`: the earliest due date of what is owed, or the next month's start."""
        moments = [o.due_at for o in self._owed(session, grant.id)]
        last_month = session.exec(
            select(Obligation.period)
            .where(Obligation.grant_id == grant.id, Obligation.schedule == Schedule.MONTHLY)
            .order_by(col(Obligation.period).desc())
            .limit(1)
        ).first()
        if last_month is not None and add_months(grant.created_at, last_month + 1) < grant.expires_at:
            moments.append(add_months(grant.created_at, last_month + 1))
        grant.value_check_at = min(moments, default=None)
        session.add(grant)

    def _owed(self, session: Session, grant_id: UUID) -> list[Obligation]:
        query = select(Obligation).where(
            Obligation.grant_id == grant_id, Obligation.status == ObligationStatus.OWED
        )
        return list(session.exec(query.order_by(col(Obligation.due_at))))

    def _target(self, session: Session, grant: Grant, obligation_id: UUID | None) -> Obligation:
        if obligation_id is not None:
            obligation = self._of_grant(session, grant, obligation_id)
            if obligation.status is not ObligationStatus.OWED:
                raise ValueSettled(
                    f"obligation '{obligation.id}' is already {obligation.status.value}: deliver once only",
                )
            return obligation
        owed = self._owed(session, grant.id)
        if not owed:
            raise ValueSettled(f"grant '{grant.id}' owes nothing now: every obligation is settled")
        return owed[0]

    def _of_grant(self, session: Session, grant: Grant, obligation_id: UUID) -> Obligation:
        obligation = session.get(Obligation, obligation_id)
        if obligation is None or obligation.grant_id != grant.id:
            raise NotFound(f"obligation '{obligation_id}' not found for grant '{grant.id}'")
        return obligation

    def _set(
        self,
        session: Session,
        obligation: Obligation,
        status: ObligationStatus,
        kind: Kind,
        actor: Actor,
        **details: Any,
    ) -> None:
        obligation.status, obligation.status_changed_at = status, self.clock()
        session.add(obligation)
        self._event(session, obligation, kind, actor, **details)

    def _event(
        self, session: Session, obligation: Obligation, kind: Kind, actor: Actor, **details: Any
    ) -> None:
        self.audit.record(
            session,
            kind,
            actor=actor,
            customer_id=obligation.customer_id,
            brand_id=obligation.brand_id,
            grant=obligation.grant_id,
            obligation=obligation.id,
            **details,
        )


def _cannot(obligation: Obligation, what: str, why: str) -> str:
    return f"obligation '{obligation.id}' is {obligation.status.value}: it cannot be {what}; {why}"


def _check_delivery(
    obligation: Obligation, *, kind: str, amount: Decimal | None, currency: str | None
) -> None:
    """What is delivered must be what was declared: same kind, currency, and at least the amount."""
    declared = obligation.declared
    errors = []
    if kind != declared["kind"]:
        errors.append(
            {"pointer": "/kind", "detail": f"the offer declared a {declared['kind']}, not a {kind}"}
        )
    if declared.get("currency") != currency:
        wanted = declared.get("currency")
        detail = (
            f"the offer declared {wanted}" if wanted else "the declared value has no currency; leave it out"
        )
        errors.append({"pointer": "/currency", "detail": detail})
    wanted_amount = declared.get("amount")
    if wanted_amount is None and amount is not None:
        errors.append({"pointer": "/amount", "detail": "the declared value has no amount; leave it out"})
    elif wanted_amount is not None and (amount is None or amount < Decimal(wanted_amount)):
        errors.append(
            {"pointer": "/amount", "detail": f"the offer declared {wanted_amount}: deliver at least that"}
        )
    if errors:
        raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)
