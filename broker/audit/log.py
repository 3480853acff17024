"""Writing the audit log: every event joins the transaction that caused it.

`AuditLog.record` queues an entry on the SQLAlchemy session; the queue is appended to the Merkle log
just before that session commits (a `before_commit` hook on every `Session`). So an event and
its entry commit together or not at all, and the log's head row is always the last lock a
transaction takes, which keeps appenders from deadlocking with anything that locks grants or tokens.

`record` returns the `QueuedEntry`: its `index` and `leaf_hash` are known once appended, and work that
needs them (a consent receipt naming its entry) registers `when_appended`; it runs inside the same
commit, right after the append, so whatever it adds to the session commits with the entry, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, update

from broker.audit import tree
from broker.audit.entries import Actor, Event, Kind
from broker.audit.models import AuditEntry
from clients.auditor.tlog import leaf_hash

__all__ = ["REQUEST_ID", "AuditLog", "QueuedEntry", "drop_pending_since", "pending_mark"]

REQUEST_ID = "request_id"  # key in `Session.info`: the request an event belongs to
_PENDING = "consentry_audit_pending"

AppendedHook = Callable[[Session, "QueuedEntry"], None]


@dataclass(eq=False, slots=True)
class QueuedEntry:
    """An entry queued in a transaction: its bytes now, its place in the log once appended."""

    entry: bytes
    at: datetime
    lookup: tree.Lookup
    index: int | None = None  # set when the transaction commits
    hooks: list[AppendedHook] = field(default_factory=list)

    @property
    def leaf_hash(self) -> bytes:
        """SHA-256(0x00 ‖ entry), the hash the log stores for it."""
        return leaf_hash(self.entry)

    def when_appended(self, hook: AppendedHook) -> None:
        """Run `hook(session, self)` right after this entry is appended, inside the same commit; it may
        add rows to the session (they are flushed by that commit) but must not commit or record entries."""
        self.hooks.append(hook)


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
    ) -> QueuedEntry:
        """Queue an entry for this transaction and return it. `customer_id` is never written into the
        entry: with a brand, the entry carries the customer's pairwise subject; the id only goes in the
        lookup column."""
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
        if not session.in_transaction():
            # Begin (no connection is taken yet) so that a rollback before any SQL still drops the entry.
            session.begin()
        queued = QueuedEntry(
            entry.canonical(), entry.at, tree.Lookup(kind.value, customer_id, brand_id, entry.grant)
        )
        pending: list[QueuedEntry] = session.info.setdefault(_PENDING, [])
        pending.append(queued)
        return queued

    def record_alone(
        self, sessions: Callable[[], Session], kind: Kind, *, actor: Actor, **details: Any
    ) -> None:
        """Record an event that happened outside any transaction of ours (an operator's key rotation)."""
        with sessions() as session:
            self.record(session, kind, actor=actor, **details)
            session.commit()

    def forget_customer(self, session: Session, customer_id: UUID) -> None:
        """Unlink a deleted account from its entries: the lookup column only; the log is unchanged.
        Work waiting on the account's queued entries (the receipts of the grants its deletion revoked)
        still runs: those receipts are the brands' too, and outlive the account."""
        pending: list[QueuedEntry] = session.info.get(_PENDING, [])
        for queued in pending:
            if queued.lookup.customer_id == customer_id:
                queued.lookup = replace(queued.lookup, customer_id=None)
        session.exec(
            update(AuditEntry)
            .where(col(AuditEntry.customer_id) == customer_id)
            .values(customer_id=None)
            .execution_options(synchronize_session=False)
        )


def pending_mark(session: Session) -> int:
    """How many entries `session` has queued so far: a mark to roll back to with `drop_pending_since`."""
    return len(session.info.get(_PENDING, []))


def drop_pending_since(session: Session, mark: int) -> None:
    """Forget the entries queued after `mark`: their savepoint was rolled back, so their events did not
    happen (a rolled-back *transaction* drops its entries by itself; a savepoint needs this)."""
    pending: list[QueuedEntry] | None = session.info.get(_PENDING)
    if pending is not None:
        del pending[mark:]


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    """Append the entries queued on `session`, in the order recorded, as its transaction commits; then
    run the hooks waiting on them, in the same order. Releasing a savepoint fires this hook too:
    its entries wait for the transaction's own commit (a group commit's batch appends them at once)."""
    if session.in_nested_transaction():
        return
    pending: list[QueuedEntry] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    indices = tree.append_many(session, [(q.entry, q.lookup) for q in pending], at=pending[-1].at)
    for queued, index in zip(pending, indices, strict=True):
        queued.index = index
    for queued in pending:
        for hook in queued.hooks:
            hook(session, queued)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back transaction's events did not happen: their queued entries go with it."""
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)
