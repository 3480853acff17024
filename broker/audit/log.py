"""Writing the audit log: every event joins the transaction that caused it.

`AuditLog.record` queues an entry on the SQLAlchemy session; the queue is appended to the Merkle log
just before that session commits (a `before_commit` hook on every `Session`). So an event and
its entry commit together or not at all, and the log's head row is always the last lock a
transaction takes, which keeps appenders from deadlocking with anything that locks grants or tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, update

from broker.audit import tree
from broker.audit.entries import Actor, Event, Kind
from broker.audit.models import AuditEntry

__all__ = ["REQUEST_ID", "AuditLog"]

REQUEST_ID = "request_id"  # key in `Session.info`: the request an event belongs to
_PENDING = "consentry_audit_pending"


@dataclass(frozen=True, slots=True)
class AuditLog:
    """Record events; `subject(brand_id, customer_id)` is the pairwise subject entries name customers by."""

    clock: Callable[[], datetime]
    subject: Callable[[UUID, UUID], str]

    def record(
        self,
        session: Session,
        kind: Kind,
        *,
        actor: Actor,
        customer_id: UUID | None = None,
        brand_id: UUID | None = None,
        **details: Any,
    ) -> None:
        """Queue an entry for this transaction. `customer_id` is never written into the entry: with a
        brand, the entry carries the customer's pairwise subject; the id only goes in the lookup column."""
        subject = self.subject(brand_id, customer_id) if brand_id and customer_id else None
        entry = Event(
            kind=kind,
            at=self.clock(),
            actor=actor,
            request_id=session.info.get(REQUEST_ID),
            brand=brand_id,
            subject=subject,
            **details,
        )
        pending: list[tuple[bytes, tree.Lookup, datetime]] = session.info.setdefault(_PENDING, [])
        lookup = tree.Lookup(kind.value, customer_id, brand_id, entry.grant)
        pending.append((entry.canonical(), lookup, entry.at))

    def record_alone(
        self, sessions: Callable[[], Session], kind: Kind, *, actor: Actor, **details: Any
    ) -> None:
        """Record an event that happened outside any transaction of ours (an operator's key rotation)."""
        with sessions() as session:
            self.record(session, kind, actor=actor, **details)
            session.commit()

    def forget_customer(self, session: Session, customer_id: UUID) -> None:
        """Unlink a deleted account from its entries: the lookup column only; the log is unchanged."""
        pending: list[tuple[bytes, tree.Lookup, datetime]] = session.info.get(_PENDING, [])
        pending[:] = [
            (entry, replace(lookup, customer_id=None) if lookup.customer_id == customer_id else lookup, at)
            for entry, lookup, at in pending
        ]
        session.exec(
            update(AuditEntry)
            .where(col(AuditEntry.customer_id) == customer_id)
            .values(customer_id=None)
            .execution_options(synchronize_session=False)
        )


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    """Append the entries queued on `session`, in the order recorded, as its transaction commits."""
    pending: list[tuple[bytes, tree.Lookup, datetime]] | None = session.info.pop(_PENDING, None)
    if pending:
        tree.append_many(session, [(entry, lookup) for entry, lookup, _ in pending], at=pending[-1][2])


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back transaction's events did not happen: their queued entries go with it."""
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)
