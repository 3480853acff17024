"""Whole-log verification on the server, for `consentry audit verify`: does the database still hold
the log its signed checkpoints vouch for?

One pass over the entries in index order, in batches (memory stays O(batch + log n)):

- the indices run 0..size-1 without a gap, and there are as many entries as the head says;
- each stored leaf hash is SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1);
- every stored subtree hash (`AuditNode`) equals the one recomputed from the entries, which a compact
  range (the maximal complete subtrees of [0, n)) rebuilds as it streams; none is missing or extra;
- every stored checkpoint verifies with the log's key, names this log, its size and root, is no
  larger than the log, and its root equals the root recomputed at its size;
- if given what an earlier verification `Remembered` (kept away from the database), the log still
  reaches that size with that root: a restored older copy, re-signed throughout, is caught too.

Each problem is reported once, where it starts: a subtree hash that differs only because a hash
below it does is not reported again, and the hashes over missing entries, being unknown, are skipped.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from broker.audit import tree
from broker.audit.models import AuditCheckpoint, AuditEntry, AuditNode
from broker.db import READ_ONLY
from clients.auditor.tlog import (
    NoteError,
    Verifier,
    leaf_hash,
    node_hash,
    open_note,
    parse_checkpoint,
    range_root,
    subtrees,
)

__all__ = ["Problem", "Remembered", "Report", "snapshot", "verify_log"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the log: its kind, where (an entry index, or a checkpoint's tree size)."""

    kind: str
    index: int | None
    detail: str


@dataclass(slots=True)
class Report:
    """What `verify_log` checked and found. `problems` keeps the first `max_problems`; `problems_found`
    counts them all."""

    tree_size: int
    max_problems: int = 100
    entries: int = 0
    nodes: int = 0
    checkpoints: int = 0
    root: bytes | None = None
    problems: list[Problem] = field(default_factory=list)
    problems_found: int = 0

    @property
    def ok(self) -> bool:
        """Whether the log verified."""
        return self.problems_found == 0

    def add(self, kind: str, index: int | None, detail: str) -> None:
        """Record a problem."""
        self.problems_found += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(kind, index, detail))

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (hashes in standard base64)."""
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "root": base64.b64encode(self.root).decode() if self.root is not None else None,
            "entries": self.entries,
            "nodes": self.nodes,
            "checkpoints": self.checkpoints,
            "problems_found": self.problems_found,
            "problems": [{"kind": p.kind, "index": p.index, "detail": p.detail} for p in self.problems],
        }


@dataclass(frozen=True, slots=True)
class Remembered:
    """The size and root a verification found, to be kept outside the database for the next one."""

    tree_size: int
    root: bytes

    @classmethod
    def of(cls, report: Report) -> Remembered:
        """What to remember of a log that verified."""
        if not report.ok or report.root is None:
            raise ValueError("only a log that verified is remembered")
        return cls(report.tree_size, report.root)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready form (the root in standard base64)."""
        return {"tree_size": self.tree_size, "root": base64.b64encode(self.root).decode()}

    @classmethod
    def from_json(cls, data: Any) -> Remembered:
        """Read `as_json`'s form back; ValueError if it is not that."""
        try:
            size, root = data["tree_size"], base64.b64decode(data["root"], validate=True)
        except (TypeError, KeyError, ValueError):
            raise ValueError("not a remembered verification: expected {tree_size, root}") from None
        if type(size) is not int or size < 0 or len(root) != 32:
            raise ValueError("not a remembered verification: a size >= 0 and a 32-byte root")
        return cls(size, root)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Session]:
    """A session that reads one consistent snapshot of the database and never blocks writers."""
    if engine.dialect.name == "sqlite":
        options: dict[str, Any] = {READ_ONLY: True}  # a deferred BEGIN: a WAL reader's snapshot, no lock
    else:
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    with engine.connect() as connection:
        connection.execution_options(**options)
        with Session(bind=connection) as session:
            yield session


def verify_log(
    session: Session,
    verifier: Verifier,
    *,
    origin: str,
    remembered: Remembered | None = None,
    batch_size: int = 1000,
    max_problems: int = 100,
) -> Report:
    """Check the whole stored log against itself, its signed checkpoints, and what an earlier
    verification remembered (see the module's doc)."""
    report = Report(tree_size=tree.size(session), max_problems=max_problems)
    nodes = _StoredNodes(session, report, batch_size)
    frontier = _Frontier(nodes.check)
    checkpoints = _Checkpoints(session, report, verifier, origin, remembered, batch_size)
    expected = 0
    for index, entry, stored_leaf in _batches(_entry_pages(session, batch_size), key=_first):
        report.entries += 1
        if not 0 <= index < report.tree_size:
            report.add("extra-entry", index, f"entry {index} is outside a log of {report.tree_size} entries")
            continue
        if index > expected:
            report.add("missing-entry", expected, _missing(expected, index))
            _skip_unknown(frontier, nodes, checkpoints, index - expected)
        leaf = leaf_hash(entry)
        if stored_leaf != leaf:
            report.add("leaf-hash", index, f"entry {index}'s stored leaf hash is not the hash of its bytes")
        checkpoints.reach(frontier)
        frontier.push(0, leaf)
        expected = index + 1
    if expected < report.tree_size:
        report.add("missing-entry", expected, _missing(expected, report.tree_size))
        _skip_unknown(frontier, nodes, checkpoints, report.tree_size - expected)
    checkpoints.reach(frontier)
    checkpoints.finish()
    nodes.finish()
    if report.entries != report.tree_size:
        report.add(
            "count", None, f"the log's head says {report.tree_size} entries but {report.entries} are stored"
        )
    report.root = frontier.root()
    return report


def _missing(start: int, end: int) -> str:
    what = f"entry {start} is" if end - start == 1 else f"entries {start}..{end - 1} are"
    return f"{what} missing"


def _skip_unknown(frontier: _Frontier, nodes: _StoredNodes, checkpoints: _Checkpoints, count: int) -> None:
    """Advance over `count` missing leaves, a complete subtree at a time (an absurd gap costs O(log))."""
    for level, position in subtrees(frontier.size, frontier.size + count):
        end = (position + 1) << level
        for lower in range(level):  # hashes inside an unknown subtree cannot be checked
            nodes.skip(lower, end >> lower)
        checkpoints.reach(frontier)
        frontier.push(level, None)


def _first(row: Any) -> int:
    key: int = row[0]
    return key


class _Lookahead(Generic[_T]):
    """An iterator whose next item can be looked at first."""

    def __init__(self, items: Iterator[_T]) -> None:
        self._items = items
        self._next: _T | None = None
        self._ready = False

    def peek(self) -> _T | None:
        if not self._ready:
            self._next, self._ready = next(self._items, None), True
        return self._next

    def pop(self) -> _T | None:
        item = self.peek()
        self._ready = False
        return item


def _batches(pages: Callable[[int | None], Sequence[_T]], key: Callable[[_T], int]) -> Iterator[_T]:
    """Every row of a keyset-paged query: `pages(after)` returns the batch after key `after`."""
    after: int | None = None
    while rows := pages(after):
        yield from rows
        after = key(rows[-1])


def _entry_pages(session: Session, batch: int) -> Callable[[int | None], Sequence[Any]]:
    def page(after: int | None) -> Sequence[Any]:
        query = select(AuditEntry.index, AuditEntry.entry, AuditEntry.leaf_hash)
        if after is not None:
            query = query.where(col(AuditEntry.index) > after)
        return session.exec(query.order_by(col(AuditEntry.index)).limit(batch)).all()

    return page


class _Frontier:
    """The compact range of [0, size): the hashes of its maximal complete subtrees, left to right.

    Pushing a subtree hands it, and every subtree it completes, to `on_node(level, position, hash,
    children_match)`, which answers whether the stored hash matches. A hash of None is unknown (it
    covers a missing entry), and so is every hash built on it. That, and remembering which stored
    hashes matched, is what `tlog.StreamingTree` (the hasher) does not do: this is a checker's stack,
    hashing with the primitive's `node_hash` and `range_root`.
    """

    def __init__(self, on_node: Callable[[int, int, bytes | None, bool], bool]) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes | None, bool]] = []  # level, hash, stored hash matches
        self._on_node = on_node

    def push(self, level: int, digest: bytes | None) -> None:
        position = self.size >> level
        self.size += 1 << level
        matches = self._on_node(level, position, digest, True)
        while self._stack and self._stack[-1][0] == level:
            _, left, left_matches = self._stack.pop()
            digest = None if left is None or digest is None else node_hash(left, digest)
            level, position = level + 1, position >> 1
            matches = self._on_node(level, position, digest, left_matches and matches)
        self._stack.append((level, digest, matches))

    def root(self) -> bytes | None:
        """MTH of [0, size) (RFC 9162 §2.1.1), or None if it covers a missing entry."""
        known = [digest for _, digest, _ in self._stack if digest is not None]
        return range_root(known) if len(known) == len(self._stack) else None


class _StoredNodes:
    """The stored subtree hashes, one keyset stream per level, read in step with the recomputation."""

    def __init__(self, session: Session, report: Report, batch: int) -> None:
        self._session, self._report, self._batch = session, report, batch
        self._levels: dict[int, _Lookahead[Any]] = {}

    def _level(self, level: int) -> _Lookahead[Any]:
        if level not in self._levels:

            def page(after: int | None) -> Sequence[Any]:
                query = select(AuditNode.position, AuditNode.hash).where(col(AuditNode.level) == level)
                if after is not None:
                    query = query.where(col(AuditNode.position) > after)
                return self._session.exec(query.order_by(col(AuditNode.position)).limit(self._batch)).all()

            self._levels[level] = _Lookahead(_batches(page, key=_first))
        return self._levels[level]

    def check(self, level: int, position: int, digest: bytes | None, children_match: bool) -> bool:
        """Whether the stored hash of subtree (level, position) is the recomputed `digest`. A mismatch is
        reported only where it starts: when the children's stored hashes matched."""
        stream = self._level(level)
        self.skip(level, position, report=True)
        head = stream.peek()
        stored = stream.pop()[1] if head is not None and head[0] == position else None  # type: ignore[index]
        if digest is None:
            return False
        first = position << level
        if stored is None:
            self._report.add("missing-node", first, f"the hash of subtree ({level}, {position}) is missing")
        elif stored != digest and children_match:
            self._report.add(
                "node",
                first,
                f"the stored hash of subtree ({level}, {position}) (entries {first}.."
                f"{first + (1 << level) - 1}) is not the hash of those entries",
            )
        self._report.nodes += 1
        return stored == digest

    def skip(self, level: int, before: int, *, report: bool = False) -> None:
        """Pass over the stored hashes of `level` at positions below `before` (reporting them if asked)."""
        stream = self._level(level)
        while (head := stream.peek()) is not None and head[0] < before:
            stream.pop()
            if report:
                self._extra(level, head[0])

    def finish(self) -> None:
        """Report every stored hash the log does not have: beyond its size, or at levels above its top."""
        others = select(AuditNode.level).where(col(AuditNode.level).not_in(list(self._levels))).distinct()
        for level in list(self._session.exec(others)):
            self._level(level)
        for level, stream in self._levels.items():
            while (head := stream.pop()) is not None:
                self._extra(level, head[0])

    def _extra(self, level: int, position: int) -> None:
        self._report.add(
            "extra-node",
            position << level if 0 <= level < 64 else None,
            f"a hash is stored for subtree ({level}, {position}), which is not part of the log",
        )


class _Checkpoints:
    """The stored checkpoints in size order, and the remembered root, each checked when the
    recomputation reaches its size."""

    def __init__(
        self,
        session: Session,
        report: Report,
        verifier: Verifier,
        origin: str,
        remembered: Remembered | None,
        batch: int,
    ) -> None:
        self._report, self._verifier, self._origin, self._remembered = report, verifier, origin, remembered

        def page(after: int | None) -> Sequence[AuditCheckpoint]:
            query = select(AuditCheckpoint)
            if after is not None:
                query = query.where(col(AuditCheckpoint.tree_size) > after)
            return session.exec(query.order_by(col(AuditCheckpoint.tree_size)).limit(batch)).all()

        self._stream = _Lookahead(_batches(page, key=lambda row: row.tree_size))

    def reach(self, frontier: _Frontier) -> None:
        """Check the checkpoints up to the frontier's size (those it jumped over have unknown roots)."""
        while (row := self._stream.peek()) is not None and row.tree_size <= frontier.size:
            self._stream.pop()
            self._check(row, frontier.root() if row.tree_size == frontier.size else None)
        remembered = self._remembered
        if remembered is not None and remembered.tree_size <= frontier.size:
            self._remembered = None
            root = frontier.root() if remembered.tree_size == frontier.size else None
            if root != remembered.root:
                self._report.add(
                    "remembered-root",
                    remembered.tree_size,
                    f"the root of the first {remembered.tree_size} entries is not the one verified before: "
                    "the log was rewritten, or restored from another copy",
                )

    def finish(self) -> None:
        """Report the checkpoints signed for, and the size verified before at, sizes the log no longer
        reaches."""
        if self._remembered is not None:
            self._report.add(
                "remembered-size",
                self._remembered.tree_size,
                f"the log was verified before at {self._remembered.tree_size} entries but has "
                f"{self._report.tree_size}: it was truncated, or restored from an older copy",
            )
        while (row := self._stream.pop()) is not None:
            self._report.checkpoints += 1
            self._report.add(
                "checkpoint-beyond",
                row.tree_size,
                f"a checkpoint was signed at tree size {row.tree_size} but the log has "
                f"{self._report.tree_size} entries: it was truncated",
            )

    def _check(self, row: AuditCheckpoint, root: bytes | None) -> None:
        size, report = row.tree_size, self._report
        report.checkpoints += 1
        try:
            signed = parse_checkpoint(open_note(row.note, [self._verifier]))
        except NoteError as exc:
            report.add("checkpoint-signature", size, f"the checkpoint at size {size} is not the log's: {exc}")
            return
        if (signed.origin, signed.size, signed.root_hash) != (self._origin, size, row.root_hash):
            report.add(
                "checkpoint-note",
                size,
                f"the checkpoint stored at size {size} signs origin {signed.origin!r}, size {signed.size} "
                "and a root that are not the row's",
            )
        if root is None:
            detail = f"the root at size {size} cannot be recomputed: entries are missing"
            report.add("checkpoint-root", size, detail)
        elif signed.root_hash != root:
            report.add(
                "checkpoint-root",
                size,
                f"the root of the first {size} entries is not the one signed at that size: "
                "entries below it were changed",
            )
