"""The log as auditors read it: pages of entries and RFC 9162 proofs, each request checked against
the log's size first, so a bad one is a 400 that says what to ask for instead."""

from __future__ import annotations

import base64

from sqlmodel import Session

from broker.audit import tree
from broker.audit.models import AuditEntry
from broker.audit.schemas import ConsistencyProofPublic, EntriesPublic, EntryPublic, InclusionProofPublic
from broker.errors import AuditRangeError

__all__ = ["b64", "read_consistency_proof", "read_entries", "read_inclusion_proof"]


def b64(data: bytes) -> str:
    """Standard base64, as the API carries entries and hashes."""
    return base64.b64encode(data).decode()


def read_entries(session: Session, start: int, end: int | None = None) -> EntriesPublic:
    """Entries `[start, end)` (`end` defaults to the log's size), at most `tree.MAX_ENTRIES_PER_READ`
    of them; `next` says where the rest of the range starts."""
    size = tree.size(session)
    stop = size if end is None else end
    if start < 0 or stop < 0:
        raise AuditRangeError(f"start and end are entry indices: ask for 0 <= start <= end <= {size}")
    if start > stop:
        raise AuditRangeError(f"start {start} is after end {stop}: ask for start <= end")
    if stop > size:
        raise AuditRangeError(
            f"end {stop} is beyond the audit log, which has {size} entries: ask for end <= {size}, "
            "or leave end out"
        )
    if size and start >= size:
        raise AuditRangeError(
            f"start {start} is past the last entry ({size - 1}): the log has {size} entries; "
            "fetch the checkpoint to see when it grows"
        )
    page_end = min(stop, start + tree.MAX_ENTRIES_PER_READ)
    rows = tree.entries(session, start, page_end)
    return EntriesPublic(
        start=start,
        end=page_end,
        tree_size=size,
        entries=[EntryPublic(index=row.index, entry=b64(row.entry)) for row in rows],
        next=page_end if page_end < stop else None,
    )


def read_inclusion_proof(session: Session, index: int, tree_size: int) -> InclusionProofPublic:
    """The leaf hash at `index` and its audit path in the tree of the first `tree_size` entries."""
    proof = tree.inclusion_proof(session, index, tree_size)  # checks 0 <= index < tree_size <= size
    row = session.get(AuditEntry, index)
    if row is None:
        raise RuntimeError(f"the audit log has no entry {index} below its size: it is damaged")
    return InclusionProofPublic(
        index=index, tree_size=tree_size, leaf_hash=b64(row.leaf_hash), proof=[b64(h) for h in proof]
    )


def read_consistency_proof(session: Session, first: int, second: int) -> ConsistencyProofPublic:
    """The proof that the tree of the first `second` entries extends the tree of the first `first`."""
    proof = tree.consistency_proof(session, first, second)
    return ConsistencyProofPublic(first=first, second=second, proof=[b64(h) for h in proof])
