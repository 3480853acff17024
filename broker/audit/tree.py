"""The audit log's Merkle tree over the database, per RFC 9162 (Certificate Transparency v2) §2.1.

Storage: every entry, and the hash of every *complete* subtree (`AuditNode`, level L position i
covering leaves [i·2^L, (i+1)·2^L)). An append writes the leaf and the O(log n) subtrees it completes.
Any range of leaves splits into O(log n) complete subtrees, so a root or a proof reads only those
nodes, in one query, and never the leaves.

This module stores and reads; every hash and every piece of proof arithmetic (which subtrees an
append completes, which ranges a proof lists, how a range's hash folds from its subtrees) is the
auditor's transparency-log primitive, `clients.auditor.tlog`, so server and auditor cannot disagree.

Appenders lock the single `AuditHead` row (`SELECT … FOR UPDATE` on PostgreSQL; SQLite transactions
here begin IMMEDIATE), which serialises them across processes and keeps indices gapless.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from broker.audit.models import AuditEntry, AuditHead, AuditNode
from broker.errors import AuditIntegrityError, AuditRangeError
from clients.auditor.tlog import (
    EMPTY_ROOT,
    MAX_ENTRY_SIZE,
    Span,
    StreamingTree,
    Subtree,
    consistency_spans,
    inclusion_spans,
    leaf_hash,
    range_root,
    subtrees,
)
from vault.driver import DriverQuery, insert_rows, text_rows

__all__ = [
    "MAX_ENTRIES_PER_READ",
    "Lookup",
    "append",
    "append_many",
    "consistency_proof",
    "entries",
    "inclusion_proof",
    "inclusion_proofs",
    "lock_head",
    "root",
    "size",
]

MAX_ENTRIES_PER_READ = 10_000
_HEAD_ID = 1
# Every append's first statement, on the driver's cursor (`vault.driver`): the head row, locked.
_HEAD_FOR_UPDATE = DriverQuery(
    select(col(AuditHead.size)).where(col(AuditHead.id) == bindparam("head")).with_for_update()
)
_SET_SIZE = (
    update(AuditHead.__table__)  # type: ignore[attr-defined]
    .where(col(AuditHead.id) == _HEAD_ID)
    .values(size=bindparam("size"))
)


# Writing


@dataclass(frozen=True, slots=True)
class Lookup:
    """Columns stored beside an entry so that its customer and its brand find it; not hashed."""

    kind: str = ""
    customer_id: UUID | None = None
    brand_id: UUID | None = None
    grant_id: UUID | None = None


def append(session: Session, entry: bytes, *, at: datetime, lookup: Lookup = Lookup()) -> int:
    """Append one entry to the log and return its 0-based index. The caller commits."""
    return append_many(session, [(entry, lookup)], at=at)[0]


def append_many(
    session: Session, batch: Iterable[bytes | tuple[bytes, Lookup]], *, at: datetime
) -> list[int]:
    """Append entries in order under one lock of the head; returns their indices. The caller commits."""
    items = [item if isinstance(item, tuple) else (item, Lookup()) for item in batch]
    if not items:
        return []
    start = lock_head(session)
    # The right edge of the tree (the complete subtrees of [0, start)): the only siblings an append needs.
    edge = subtrees(0, start)
    stored = _fetch(session, edge)
    log = StreamingTree(start, [stored[subtree] for subtree in edge])
    for entry, _ in items:
        if len(entry) > MAX_ENTRY_SIZE:  # it could not be served in an entry bundle (tlog-tiles)
            raise ValueError(f"an audit entry is {len(entry)} bytes, over the {MAX_ENTRY_SIZE}-byte limit")
    leaves = [leaf_hash(entry) for entry, _ in items]
    nodes: list[dict[str, object]] = []

    def store(level: int, position: int, hashes: list[bytes]) -> None:
        nodes.extend({"level": level, "position": position + i, "hash": h} for i, h in enumerate(hashes))

    log.extend_hashes(leaves, on_subtrees=store)  # the leaves, and every subtree they complete
    rows = [
        {
            "index": index,
            "entry": entry,
            "leaf_hash": digest,
            "created_at": at,
            "kind": lookup.kind,
            "customer_id": lookup.customer_id,
            "brand_id": lookup.brand_id,
            "grant_id": lookup.grant_id,
        }
        for index, ((entry, lookup), digest) in enumerate(zip(items, leaves, strict=True), start)
    ]
    # On the session's connection, not through the ORM: its bulk insert would sort and check each row
    # as a mapped object would be, which cost as much as the rest of the commit. On PostgreSQL a COPY
    # (`insert_rows`): an executemany dumped each parameter in Python, a third of a batch's CPU.
    connection = session.connection()
    insert_rows(connection, AuditEntry.__table__, rows)  # type: ignore[attr-defined]
    insert_rows(connection, AuditNode.__table__, nodes)  # type: ignore[attr-defined]
    end = start + len(items)
    connection.execute(_SET_SIZE, {"size": end})
    return list(range(start, end))


def lock_head(session: Session) -> int:
    """Lock the head row, creating it at size 0 if this is the first append ever; returns the size.

    Held until the transaction ends: appenders, and checkpoint signers, serialise on it.
    """
    # What the session still holds is flushed first (as the ORM's autoflush would): its row locks come
    # before the head's, the last lock a transaction takes (`broker.audit.log`).
    session.flush()
    current = _HEAD_FOR_UPDATE.first(session.connection(), {"head": _HEAD_ID})
    if current is not None:
        return int(current.size)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Two first appenders may both miss the row: ON CONFLICT lets the second wait, then lock it.
    session.exec(
        dialect.insert(AuditHead).values(id=_HEAD_ID, size=0).on_conflict_do_nothing(index_elements=["id"])
    )
    created = _HEAD_FOR_UPDATE.first(session.connection(), {"head": _HEAD_ID})
    assert created is not None  # inserted above, or by the appender it waited for
    return int(created.size)


# Reading


def size(session: Session) -> int:
    """The number of entries in the log."""
    current = session.exec(select(AuditHead.size).where(AuditHead.id == _HEAD_ID)).first()
    return current or 0


def entries(session: Session, start: int, end: int) -> list[AuditEntry]:
    """The entries with indices in [start, end), at most `MAX_ENTRIES_PER_READ` of them."""
    if not 0 <= start <= end:
        raise AuditRangeError(f"entries [{start}, {end}) is not a range: ask for 0 <= start <= end")
    if end - start > MAX_ENTRIES_PER_READ:
        raise AuditRangeError(
            f"entries [{start}, {end}) spans {end - start} entries; ask for at most {MAX_ENTRIES_PER_READ}"
        )
    _check_size(session, end, what="end")
    query = select(AuditEntry).where(col(AuditEntry.index) >= start, col(AuditEntry.index) < end)
    return list(session.exec(query.order_by(col(AuditEntry.index))))


def root(session: Session, tree_size: int) -> bytes:
    """The Merkle Tree Hash (MTH) of the first `tree_size` entries (RFC 9162 §2.1.1)."""
    if tree_size <= 0:
        _check_size(session, tree_size)
        return EMPTY_ROOT
    return _span_hashes(session, [(0, tree_size)], within=(tree_size, "tree size"))[0]


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) of RFC 9162 §2.1.3.1: the audit path from the leaf up to the root."""
    return inclusion_proofs(session, [index], tree_size)[0]


def inclusion_proofs(session: Session, indices: Sequence[int], tree_size: int) -> list[list[bytes]]:
    """`inclusion_proof` for each of `indices`, reading every hash they need (and the log's size, to
    check `tree_size` against it) in one query."""
    if tree_size < 0:
        _check_size(session, tree_size)
    paths = [_inclusion_spans(index, tree_size) for index in indices]
    spans = [span for path in paths for span in path]
    hashes = iter(_span_hashes(session, spans, within=(tree_size, "tree size")))
    return [[next(hashes) for _ in path] for path in paths]


def _inclusion_spans(index: int, tree_size: int) -> list[Span]:
    if not 0 <= index < tree_size:
        raise AuditRangeError(
            f"leaf index {index} is not in a tree of size {tree_size}: ask for an index in 0..{tree_size - 1}"
            if tree_size
            else f"a tree of size 0 has no leaf {index}: ask for a larger tree size"
        )
    return inclusion_spans(index, tree_size)


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162 §2.1.4.1: the tree of `second` entries extends that of `first`."""
    if second < 0:
        _check_size(session, second, what="second size")
    if not 0 <= first <= second:
        _check_size(session, second, what="second size")
        raise AuditRangeError(
            f"no consistency proof from size {first} to size {second}: the first size must be 0..{second}"
        )
    if first in (0, second):
        _check_size(session, second, what="second size")
        return []
    return _span_hashes(session, consistency_spans(first, second), within=(second, "second size"))


def _check_size(session: Session, tree_size: int, *, what: str = "tree size") -> None:
    _check_within(tree_size, what, size(session))


def _check_within(tree_size: int, what: str, current: int) -> None:
    if not 0 <= tree_size <= current:
        raise AuditRangeError(
            f"{what} {tree_size} is outside the audit log, which has {current} entries: ask for 0..{current}"
        )


# Stored subtrees


def _fetch(
    session: Session, wanted: Sequence[Subtree], *, within: tuple[int, str] | None = None
) -> dict[Subtree, bytes]:
    """The stored hashes of these complete subtrees, in one query. With `within` (a tree size, and
    what to call it in an error), the same query reads the log's size and checks the tree is in it."""
    # One `level = L AND position IN (...)` per level, not a row-value IN: SQLite plans the latter
    # as a scan of the whole table, the former as primary-key lookups (so proofs stay O(log n)).
    # Written as text with bound parameters, run on the driver's cursor (`text_rows`): building it as
    # an expression, or Core's parse and compile of its text, cost more than the query.
    by_level: dict[int, list[int]] = {}
    for level, position in sorted(set(wanted)):
        by_level.setdefault(level, []).append(position)
    clauses, params = [], {}
    for n, (level, positions) in enumerate(by_level.items()):
        names = [f"p{n}_{m}" for m in range(len(positions))]
        clauses.append(f"(level = :l{n} AND position IN ({', '.join(':' + name for name in names)}))")
        params[f"l{n}"] = level
        params.update(zip(names, positions, strict=True))
    where = " OR ".join(clauses)  # only placeholders: every value is a bound parameter
    selects = [f"SELECT level, position, hash FROM audit_node WHERE {where}"] if clauses else []  # noqa: S608
    if within is not None:  # level -1 is no level: the row carries the log's size
        selects.append("SELECT -1, size, NULL FROM audit_head WHERE id = :head")
        params["head"] = _HEAD_ID
    if not selects:
        return {}
    rows = text_rows(session.connection(), " UNION ALL ".join(selects), params)
    found: dict[Subtree, bytes] = {(level, position): digest for level, position, digest in rows}
    if within is not None:
        current = next((position for level, position in found if level == -1), 0)
        _check_within(*within, current)
    missing = set(wanted) - found.keys()
    if missing:
        raise AuditIntegrityError(
            f"the audit log is missing the subtree hashes {sorted(missing)}: run `consentry audit verify`"
        )
    return found


def _span_hashes(
    session: Session, spans: Sequence[Span], *, within: tuple[int, str] | None = None
) -> list[bytes]:
    """MTH of each span, each one a subtree of RFC 9162's tree (its start aligned to its size)."""
    parts = [subtrees(start, end) for start, end in spans]
    stored = _fetch(session, [subtree for part in parts for subtree in part], within=within)
    return [range_root([stored[subtree] for subtree in part]) for part in parts]
