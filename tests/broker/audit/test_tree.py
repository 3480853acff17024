"""The audit log's Merkle tree over the database gives the roots and proofs the transparency-log
primitive computes from a list of leaves (and they verify with its verifiers, which share no code
with the generators), writes O(log n) rows per append, reads proofs in a bounded number of queries,
and refuses ranges it does not have. The known-answer vectors: test_vectors.py."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func
from sqlmodel import Session, select
from support.core import FakeClock

from broker.audit import tree
from broker.audit.models import AuditEntry, AuditNode
from broker.db import create_db_engine, session_factory
from broker.errors import AuditRangeError
from clients.auditor.tlog import merkle
from vault.driver import text_rows

AT = FakeClock().now
per_example = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@contextmanager
def savepoint(db: Session) -> Iterator[None]:
    """Each hypothesis example builds its own tree inside a savepoint that is rolled back."""
    nested = db.begin_nested()
    try:
        yield
    finally:
        nested.rollback()


def entry(i: int) -> bytes:
    return f'{{"event":"grant.created","seq":{i}}}'.encode()


def build(db: Session, n: int) -> list[bytes]:
    """Append n entries; returns their leaf hashes as the oracle computes them."""
    tree.append_many(db, [entry(i) for i in range(n)], at=AT)
    return [merkle.leaf_hash(entry(i)) for i in range(n)]


@contextmanager
def counting_statements(db: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement `db`'s engine runs through Core, and every one the tree runs on the driver's
    cursor itself (`text_rows`: its subtree lookups), as run."""
    bind = db.get_bind()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def recorded_text_rows(connection: Any, sql: str, params: Any) -> list[Any]:
        statements.append(sql)
        return text_rows(connection, sql, params)

    event.listen(bind, "before_cursor_execute", record)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(tree, "text_rows", recorded_text_rows)
            yield statements
    finally:
        event.remove(bind, "before_cursor_execute", record)


@per_example
@given(batches=st.lists(st.integers(min_value=1, max_value=60), max_size=10))
def test_indices_are_gapless_from_zero_and_roots_match_the_oracle_for_every_prefix(
    db: Session, batches: list[int]
) -> None:
    with savepoint(db):
        indices: list[int] = []
        for count in batches:
            if count == 1:
                indices.append(tree.append(db, entry(len(indices)), at=AT))
            else:
                indices += tree.append_many(db, [entry(len(indices) + i) for i in range(count)], at=AT)
        assert indices == list(range(sum(batches)))
        assert tree.size(db) == len(indices)
        leaves = [merkle.leaf_hash(entry(i)) for i in indices]
        for n in range(len(leaves) + 1):
            assert tree.root(db, n) == merkle.root_hash(leaves[:n])


@per_example
@given(n=st.integers(min_value=1, max_value=300), data=st.data())
def test_inclusion_proofs_equal_the_oracles_and_verify(db: Session, n: int, data: st.DataObject) -> None:
    with savepoint(db):
        leaves = build(db, n)
        root = merkle.root_hash(leaves)
        for index in range(n):
            proof = tree.inclusion_proof(db, index, n)
            assert proof == merkle.inclusion_proof(leaves, index)
            assert merkle.verify_inclusion(leaves[index], index, n, proof, root)
        for _ in range(20):
            size = data.draw(st.integers(min_value=1, max_value=n))
            index = data.draw(st.integers(min_value=0, max_value=size - 1))
            proof = tree.inclusion_proof(db, index, size)
            assert proof == merkle.inclusion_proof(leaves[:size], index)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, merkle.root_hash(leaves[:size]))


@per_example
@given(n=st.integers(min_value=0, max_value=300), data=st.data())
def test_consistency_proofs_equal_the_oracles_and_verify(db: Session, n: int, data: st.DataObject) -> None:
    with savepoint(db):
        leaves = build(db, n)
        root = merkle.root_hash(leaves)
        pairs = [(m, n) for m in range(n + 1)]
        for _ in range(20):
            second = data.draw(st.integers(min_value=0, max_value=n))
            pairs.append((data.draw(st.integers(min_value=0, max_value=second)), second))
        for first, second in pairs:
            proof = tree.consistency_proof(db, first, second)
            assert proof == merkle.consistency_proof(leaves[:second], first)
            first_root = merkle.root_hash(leaves[:first])
            second_root = root if second == n else merkle.root_hash(leaves[:second])
            assert merkle.verify_consistency(first, second, first_root, second_root, proof)


@per_example
@given(batches=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=20), max_size=6))
def test_append_many_stores_exactly_what_repeated_append_stores(
    db: Session, batches: list[list[bytes]]
) -> None:
    flat = [item for batch in batches for item in batch]

    def snapshot() -> tuple[list[Any], list[Any]]:
        rows = db.exec(select(AuditEntry.index, AuditEntry.entry, AuditEntry.leaf_hash)).all()
        nodes = db.exec(select(AuditNode.level, AuditNode.position, AuditNode.hash)).all()
        return sorted(tuple(row) for row in rows), sorted(tuple(node) for node in nodes)

    with savepoint(db):
        batched = [tree.append_many(db, batch, at=AT) for batch in batches]
        by_batch = snapshot()
    with savepoint(db):
        one_by_one = [tree.append(db, item, at=AT) for item in flat]
        assert snapshot() == by_batch
    assert [index for batch in batched for index in batch] == one_by_one == list(range(len(flat)))


def test_an_append_writes_one_entry_and_only_the_subtrees_it_completes(db: Session) -> None:
    def rows() -> int:
        nodes = db.exec(select(func.count()).select_from(AuditNode)).one()
        return nodes + db.exec(select(func.count()).select_from(AuditEntry)).one()

    before = rows()
    for n in range(1, 513):
        tree.append(db, entry(n), at=AT)
        after = rows()
        assert after - before <= math.log2(n) + 2
        before = after


def test_entries_returns_a_range_in_order_with_its_time(db: Session) -> None:
    build(db, 12)
    read = tree.entries(db, 3, 7)
    assert [row.index for row in read] == [3, 4, 5, 6]
    assert [row.entry for row in read] == [entry(i) for i in range(3, 7)]
    assert all(row.leaf_hash == merkle.leaf_hash(row.entry) and row.created_at == AT for row in read)
    assert tree.entries(db, 12, 12) == []


def test_the_empty_log_has_size_zero_and_the_empty_root(db: Session) -> None:
    assert tree.size(db) == 0
    assert tree.root(db, 0) == merkle.root_hash([])
    assert tree.consistency_proof(db, 0, 0) == []


@pytest.mark.parametrize(
    ("read", "message"),
    [
        (lambda db: tree.root(db, 11), "tree size 11 is outside the audit log, which has 10 entries"),
        (lambda db: tree.root(db, -1), "tree size -1 is outside"),
        (lambda db: tree.inclusion_proof(db, 10, 10), "leaf index 10 is not in a tree of size 10"),
        (lambda db: tree.inclusion_proof(db, -1, 5), "leaf index -1 is not in a tree of size 5"),
        (lambda db: tree.inclusion_proof(db, 0, 0), "a tree of size 0 has no leaf 0"),
        (lambda db: tree.inclusion_proof(db, 3, 12), "tree size 12 is outside"),
        (lambda db: tree.inclusion_proof(db, 10, 11), "tree size 11 is outside"),  # its siblings all exist
        (lambda db: tree.consistency_proof(db, 6, 5), "no consistency proof from size 6 to size 5"),
        (lambda db: tree.consistency_proof(db, 2, 11), "second size 11 is outside"),
        (lambda db: tree.entries(db, 5, 3), r"entries \[5, 3\) is not a range"),
        (lambda db: tree.entries(db, 0, 10_001), "ask for at most 10000"),
        (lambda db: tree.entries(db, 8, 11), "end 11 is outside"),
    ],
)
def test_ranges_the_log_does_not_have_are_refused_with_what_to_ask_for(
    db: Session, read: Any, message: str
) -> None:
    build(db, 10)
    with pytest.raises(AuditRangeError, match=message) as raised:
        read(db)
    assert raised.value.status == 400


def test_proofs_of_a_large_tree_take_one_query(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 5000
    leaves = build(db, n)
    reads: list[tuple[Callable[[], list[bytes] | bytes], Callable[[Any], bool]]] = [
        (lambda: tree.root(db, n), lambda out: out == merkle.root_hash(leaves)),
        (lambda: tree.root(db, 4097), lambda out: out == merkle.root_hash(leaves[:4097])),
        (lambda: tree.inclusion_proof(db, 2718, n), lambda out: out == merkle.inclusion_proof(leaves, 2718)),
        (
            lambda: tree.inclusion_proof(db, n - 1, n),
            lambda out: out == merkle.inclusion_proof(leaves, n - 1),
        ),
        (
            lambda: tree.consistency_proof(db, 1234, n),
            lambda out: out == merkle.consistency_proof(leaves, 1234),
        ),
        (
            lambda: tree.consistency_proof(db, 3333, 4999),
            lambda out: out == merkle.consistency_proof(leaves[:4999], 3333),
        ),
    ]
    for read, check in reads:
        with counting_statements(db, monkeypatch) as statements:
            out = read()
        assert check(out)
        assert len(statements) == 1, statements  # the hashes and the log's size, in one round trip
        assert not any("audit_entry" in statement for statement in statements)  # never the leaves
    with counting_statements(db, monkeypatch) as statements:
        tree.append_many(db, [b"one", b"two"], at=AT)
    assert len(statements) <= 5, statements


def test_concurrent_appenders_on_a_new_log_get_gapless_distinct_indices(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    sessions = session_factory(engine)
    indices: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def appender(worker: int) -> None:
        try:
            for i in range(10):
                with sessions() as session:
                    index = tree.append(session, f"{worker}:{i}".encode(), at=AT)
                    session.commit()
                with lock:
                    indices.append(index)
        except BaseException as error:  # reported below, with the thread's traceback
            errors.append(error)

    threads = [threading.Thread(target=appender, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        assert sorted(indices) == list(range(60))
        with sessions() as session:
            assert tree.size(session) == 60
            stored = tree.entries(session, 0, 60)
            leaves = [merkle.leaf_hash(row.entry) for row in stored]
            assert tree.root(session, 60) == merkle.root_hash(leaves)
            assert [row.index for row in stored] == list(range(60))
    finally:
        engine.dispose()


def test_an_entry_too_long_for_an_entry_bundle_is_refused_before_anything_is_written(db: Session) -> None:
    tree.append(db, bytes(0xFFFF), at=AT)  # the largest an entry bundle's uint16 length can carry
    with pytest.raises(ValueError, match="65535-byte limit"):
        tree.append_many(db, [b"fine", bytes(0x10000)], at=AT)
    assert tree.size(db) == 1


def test_the_head_is_locked_after_the_sessions_own_changes_are_flushed(db: Session) -> None:
    # The head row must be the last lock a transaction takes (broker.audit.log): rows the session still
    # holds unflushed are written, and so locked, before it. The head query runs on the driver's
    # cursor, which does not autoflush as the ORM's queries do.
    with savepoint(db):
        tree.append(db, b"the head row exists", at=AT)
        db.flush()
        pending = AuditNode(level=40, position=0, hash=b"\0" * 32)
        db.add(pending)
        order: list[str] = []
        listener = lambda *args: order.append("flush")  # noqa: E731
        event.listen(db, "after_flush", listener)
        try:
            size = tree.lock_head(db)
            order.append("head")
        finally:
            event.remove(db, "after_flush", listener)
        assert order == ["flush", "head"] and pending not in db.new and size >= 0
