"""The log as its subjects see it: a customer's entries, a brand's entries, each provably in the log.

Every page comes with a signed checkpoint and, for each entry, its exact bytes and its RFC 9162
inclusion proof against that checkpoint: whoever holds the log's verifier key can check that the
server shows them the same log it shows auditors, without trusting the server.

It lives with consent, above `broker.audit`, because it reads the log in consent's terms: entries
name the brand they are about (`Brand`), and a grant's last read is looked up per `Grant`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import and_, bindparam, func
from sqlmodel import Session, col, select

from broker.accounts.models import Brand
from broker.audit import tree
from broker.audit.checkpoints import Checkpoints
from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.audit.reader import b64
from broker.consent.models import Grant
from broker.errors import ValidationFailed

__all__ = ["AccessLog", "AccessLogPage", "LoggedEntry", "decode_index_cursor", "encode_index_cursor"]

_HASH = "standard base64 of a SHA-256 hash"
MAX_CHART_DAYS = 366  # reads_per_day: one count per day, in one row
_BAD_CURSOR = "cursor is not one this API issued: pass next_cursor from the previous page unchanged"


class LoggedEntry(BaseModel):
    """One entry, readable and provable."""

    index: int = Field(ge=0, description="the entry's position in the log")
    kind: str = Field(description="what happened, e.g. profile.read, grant.created, grant.revoked")
    at: datetime = Field(description="when it happened")
    event: dict[str, Any] = Field(description="the entry itself, decoded: ids, field names, purpose, actor")
    brand_name: str | None = Field(
        description="the brand the entry is about, for display (not part of the entry)"
    )
    entry: str = Field(description="standard base64 of the entry's exact bytes (RFC 8785 canonical JSON)")
    leaf_hash: str = Field(description=f"SHA-256(0x00 ‖ entry), {_HASH}")
    inclusion_proof: list[str] = Field(
        description=f"RFC 9162 audit path from the leaf to the checkpoint's root; each a {_HASH}"
    )


class AccessLogPage(BaseModel):
    """A page of entries, newest first, with the checkpoint their proofs lead to."""

    checkpoint: str = Field(
        description="C2SP signed note of the checkpoint (origin, tree size, root) the proofs lead to"
    )
    verifier_key: str = Field(
        description="the log's verifier key (`<name>+<key id>+<key>`): pin it, check checkpoints with it"
    )
    tree_size: int = Field(ge=0)
    items: list[LoggedEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for older entries; null on the last page")


@dataclass(frozen=True, slots=True)
class AccessLog:
    """Entries about one customer or one brand, with proofs."""

    checkpoints: Checkpoints

    def for_customer(
        self,
        session: Session,
        customer_id: UUID,
        *,
        cursor: str | None,
        limit: int,
        grant_id: UUID | None = None,
    ) -> AccessLogPage:
        """Every entry about this customer (reads of their data and their consent events), or only
        those about one of their grants."""
        return self._page(session, _about(AuditEntry.customer_id, customer_id, grant_id), cursor, limit)

    def for_brand(
        self,
        session: Session,
        brand_id: UUID,
        *,
        cursor: str | None,
        limit: int,
        grant_id: UUID | None = None,
    ) -> AccessLogPage:
        """Every entry about this brand (its reads, its offers, its grants' events), or only those
        about one of its grants."""
        return self._page(session, _about(AuditEntry.brand_id, brand_id, grant_id), cursor, limit)

    def proven(self, session: Session, indices: Sequence[int]) -> AccessLogPage:
        """These entries (committed ones: below the current checkpoint), newest first, with their
        proofs against the current checkpoint; what a consent receipt's bundle carries."""
        about = col(AuditEntry.index).in_(list(indices))
        return self._page(session, about, None, max(len(indices), 1))

    def reads_per_day(
        self, session: Session, customer_id: UUID, grant_id: UUID, first: date, days: int
    ) -> list[int]:
        """How many times this grant was read on each of `days` UTC days from `first` (for charts).

        Counted by the database, one filtered count per day, in one row: no read comes back to Python.
        Reading each read's time instead cost a row, its conversion and a Python datetime per read, so
        a grant read all day long made its own page slow."""
        if not 1 <= days <= MAX_CHART_DAYS:
            raise ValueError(f"days must be 1 to {MAX_CHART_DAYS}")
        starts = [datetime.combine(first + timedelta(days=n), time(), tzinfo=UTC) for n in range(days + 1)]
        created = col(AuditEntry.created_at)
        counts = [
            func.count().filter(and_(created >= start, created < end))
            for start, end in itertools.pairwise(starts)
        ]
        query = (
            select(*counts)
            .select_from(AuditEntry)
            .where(_about(AuditEntry.customer_id, customer_id, grant_id))
            .where(AuditEntry.kind == "profile.read", created >= starts[0], created < starts[-1])
        )
        return [int(n) for n in session.connection().execute(query).one()]

    def last_reads(
        self, session: Session, customer_id: UUID, grant_ids: Sequence[UUID]
    ) -> dict[UUID, datetime]:
        """When each of these grants of the customer was last read, in one statement (each grant's
        newest read is found from the end of its index, however many reads it has)."""
        if not grant_ids:
            return {}
        params = {"grant_ids": list(grant_ids), "customer_id": customer_id}
        return {grant_id: at for grant_id, at in session.exec(_LAST_READS, params=params) if at is not None}

    def _page(self, session: Session, about: Any, cursor: str | None, limit: int) -> AccessLogPage:
        checkpoint = self.checkpoints.current(session)
        query = select(AuditEntry).where(about, col(AuditEntry.index) < checkpoint.tree_size)
        if cursor is not None:
            query = query.where(col(AuditEntry.index) < decode_index_cursor(cursor))
        rows = list(session.exec(query.order_by(col(AuditEntry.index).desc()).limit(limit + 1)))
        more, rows = len(rows) > limit, rows[:limit]
        proofs = tree.inclusion_proofs(session, [row.index for row in rows], checkpoint.tree_size)
        names = _brand_names(session, {row.brand_id for row in rows if row.brand_id})
        return AccessLogPage(
            checkpoint=checkpoint.note,
            verifier_key=self.checkpoints.verifier_key(),
            tree_size=checkpoint.tree_size,
            items=[_logged(row, proof, names) for row, proof in zip(rows, proofs, strict=True)],
            next_cursor=encode_index_cursor(rows[-1].index) if more else None,
        )


# Built once (`last_reads` runs for every dashboard): building it cost more than running it.
_LAST_READ = (
    select(AuditEntry.created_at)
    .where(col(AuditEntry.grant_id) == col(Grant.id), AuditEntry.kind == "profile.read")
    .order_by(col(AuditEntry.index).desc())
    .limit(1)
    .correlate(Grant)
    .scalar_subquery()
)
_LAST_READS = select(Grant.id, _LAST_READ).where(
    col(Grant.id).in_(bindparam("grant_ids", expanding=True)), Grant.customer_id == bindparam("customer_id")
)


def _about(owner: Any, owner_id: UUID, grant_id: UUID | None) -> Any:
    """The lookup condition: one owner's entries, or only those about one grant of theirs."""
    condition = col(owner) == owner_id
    return condition if grant_id is None else and_(col(AuditEntry.grant_id) == grant_id, condition)


def _logged(row: AuditEntry, proof: Sequence[bytes], names: dict[UUID, str]) -> LoggedEntry:
    event = decode(row.entry)
    return LoggedEntry(
        index=row.index,
        kind=event["kind"],
        at=datetime.fromisoformat(event["at"]),
        event=event,
        brand_name=names.get(row.brand_id) if row.brand_id else None,
        entry=b64(row.entry),
        leaf_hash=b64(row.leaf_hash),
        inclusion_proof=[b64(node) for node in proof],
    )


def _brand_names(session: Session, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    return dict(session.exec(select(Brand.id, Brand.name).where(col(Brand.id).in_(ids))).all())


def encode_index_cursor(index: int) -> str:
    """The opaque cursor of a page that continues below the log index `index` (newest first)."""
    return base64.urlsafe_b64encode(f"i{index}".encode()).rstrip(b"=").decode()


def decode_index_cursor(text: str) -> int:
    """The log index in a cursor from `encode_index_cursor`; `ValidationFailed` (pointer /cursor) else."""
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True).decode()
        if not raw.startswith("i") or not raw[1:].isdigit():
            raise ValueError(raw)
        return int(raw[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed(_BAD_CURSOR, errors=[{"pointer": "/cursor", "detail": _BAD_CURSOR}]) from None
