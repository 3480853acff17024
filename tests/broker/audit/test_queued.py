"""`AuditLog.record` returns the queued entry: its index is known once its transaction commits, and
work waiting on it runs inside that commit, after the append, or not at all."""

from __future__ import annotations

from uuid import uuid4

from sqlmodel import Session

from broker.audit.entries import Actor, Kind
from broker.audit.log import QueuedEntry
from broker.audit.models import AuditCheckpoint, AuditEntry
from broker.runtime import Runtime


def test_the_queued_entry_learns_its_index_and_hooks_run_in_order_inside_the_commit(
    runtime: Runtime, db: Session
) -> None:
    first = runtime.audit.record(db, Kind.KEY_ROTATED, actor=Actor.OPERATOR, key="kek", version="2")
    second = runtime.audit.record(db, Kind.KEY_ROTATED, actor=Actor.OPERATOR, key="kek", version="3")
    seen: list[tuple[str, int | None]] = []

    def hook(name: str) -> object:
        def run(session: Session, queued: QueuedEntry) -> None:
            seen.append((name, queued.index))
            # A row added here is flushed by the same commit.
            session.add(
                AuditCheckpoint(
                    tree_size=10**9 + len(seen), root_hash=bytes(32), note=name, created_at=queued.at
                )
            )

        return run

    second.when_appended(hook("second"))  # type: ignore[arg-type]
    first.when_appended(hook("first"))  # type: ignore[arg-type]
    assert first.index is None and second.index is None
    db.commit()
    assert first.index is not None and second.index == first.index + 1
    assert seen == [("first", first.index), ("second", second.index)], "in log order"
    stored = db.get(AuditEntry, first.index)
    assert stored is not None and stored.entry == first.entry and stored.leaf_hash == first.leaf_hash
    assert db.get(AuditCheckpoint, 10**9 + 1) is not None and db.get(AuditCheckpoint, 10**9 + 2) is not None


def test_a_rollback_drops_the_hooks_with_the_entries(runtime: Runtime, db: Session) -> None:
    queued = runtime.audit.record(db, Kind.KEY_ROTATED, actor=Actor.OPERATOR, key="kek", version="2")
    ran: list[QueuedEntry] = []
    queued.when_appended(lambda session, entry: ran.append(entry))
    db.rollback()
    db.commit()
    assert ran == [] and queued.index is None


def test_forgetting_a_customer_keeps_the_work_waiting_on_their_entries(runtime: Runtime, db: Session) -> None:
    # The receipts of the grants an account deletion revokes are the brands' too: they are issued.
    gone, kept = uuid4(), uuid4()
    brand = uuid4()
    theirs = runtime.audit.record(
        db, Kind.ACCOUNT_DELETED, actor=Actor.CUSTOMER, customer_id=gone, brand_id=brand
    )
    others = runtime.audit.record(
        db, Kind.ACCOUNT_DELETED, actor=Actor.CUSTOMER, customer_id=kept, brand_id=brand
    )
    ran: list[QueuedEntry] = []
    theirs.when_appended(lambda session, entry: ran.append(entry))
    others.when_appended(lambda session, entry: ran.append(entry))
    runtime.audit.forget_customer(db, gone)
    db.commit()
    assert ran == [theirs, others]
    assert theirs.index is not None, "the entry itself stays in the log"
    stored = db.get(AuditEntry, theirs.index)
    assert stored is not None and stored.customer_id is None
