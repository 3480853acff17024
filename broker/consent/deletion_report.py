"""The auditor's deletion report: per brand, how its ended grants' deletions stand, and which are
overdue; whether it acknowledged each end in time (`broker.usecases.acknowledgements`), and how many
reads it still attempted after an end. Grants are named by id and brand only, never by customer; a
customer who deleted their account is counted (`of_deleted_accounts`), since the brand's duty to
delete outlives the account."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from broker.accounts.models import Brand
from broker.accounts.tombstones import deleted_among, is_deleted
from broker.consent.models import Grant
from broker.pagination import page

__all__ = ["BrandDeletionReport", "DeletionReport", "DeletionReports", "OverdueDeletion"]

_BUCKETS = ("due", "overdue", "attested_on_time", "attested_late")


class BrandDeletionReport(BaseModel):
    """One brand's record of deleting what its ended grants gave it."""

    brand_id: UUID
    brand: str = Field(description="the brand's name")
    ended: int = Field(description="grants that ended (revoked or expired), so deletion falls due")
    due: int = Field(description="deletion not yet due: the retention after the grant's end is still running")
    overdue: int = Field(description="past deletion_due_at without an attestation")
    attested_on_time: int = Field(description="attested no later than deletion_due_at")
    attested_late: int = Field(description="attested after deletion_due_at")
    of_deleted_accounts: int = Field(
        description="of the ended grants, those whose customer deleted their account: the deletion duty "
        "stays all the same"
    )
    ends_acknowledged_on_time: int = Field(
        default=0, description="ends the brand acknowledged (stopped processing) within the window"
    )
    ends_acknowledged_late: int = Field(default=0, description="ends acknowledged after the window")
    ends_unacknowledged: int = Field(
        default=0, description="ends past the acknowledgement window that the brand has not acknowledged"
    )
    ends_awaiting_acknowledgement: int = Field(
        default=0, description="ends not acknowledged yet, still within the window"
    )
    reads_after_end: int = Field(
        default=0, description="reads the brand attempted under its grants after they ended (all refused)"
    )


class OverdueDeletion(BaseModel):
    """A grant whose deletion is past due without an attestation."""

    grant_id: UUID
    brand_id: UUID
    brand: str
    deletion_due_at: datetime
    days_overdue: float
    account_deleted: bool = Field(description="the customer deleted their account (the duty stays)")


class DeletionReport(BaseModel):
    """Deletions per brand as of `as_of`, and one page of the overdue ones, most recently due first
    (pass `next_cursor` as `cursor` for the next page)."""

    as_of: datetime
    brands: list[BrandDeletionReport]
    overdue: list[OverdueDeletion]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DeletionReports:
    """Builds the report; the clock is injected."""

    clock: Callable[[], datetime]

    def report(self, session: Session, *, cursor: str | None, limit: int) -> DeletionReport:
        """The counts per brand, and one page of overdue deletions."""
        now = self.clock()
        attested, due_at = col(Grant.deletion_attested_at), col(Grant.deletion_due_at)
        bucket = case(
            (and_(attested.is_not(None), attested <= due_at), "attested_on_time"),
            (attested.is_not(None), "attested_late"),
            (due_at <= now, "overdue"),
            else_="due",
        )
        gone = is_deleted(Grant.customer_id)
        rows = session.exec(
            select(Grant.brand_id, bucket, gone, func.count())
            .where(due_at.is_not(None))
            .group_by(col(Grant.brand_id), bucket, gone)
        ).all()
        counts: dict[UUID, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_BUCKETS, 0))
        of_deleted: dict[UUID, int] = defaultdict(int)
        for brand_id, state, deleted, count in rows:
            counts[brand_id][state] += count
            of_deleted[brand_id] += count if deleted else 0
        overdue_query = select(Grant).where(attested.is_(None), due_at <= now)
        # deletion_due_at is never null in these rows; page() orders by it like a creation time.
        due_column = cast(datetime, Grant.deletion_due_at)
        overdue = page(session, overdue_query, due_column, Grant.id, cursor=cursor, limit=limit)
        acknowledged = self._acknowledgements(session, now)
        for brand_id in acknowledged:
            counts.setdefault(brand_id, dict.fromkeys(_BUCKETS, 0))
        names = _names(session, {*counts, *(g.brand_id for g in overdue.items)})
        deleted_customers = deleted_among(session, {g.customer_id for g in overdue.items})
        return DeletionReport(
            as_of=now,
            brands=[
                BrandDeletionReport(
                    brand_id=brand_id,
                    brand=names.get(brand_id, ""),
                    ended=sum(c.values()),
                    of_deleted_accounts=of_deleted[brand_id],
                    **c,
                    **acknowledged.get(brand_id, {}),
                )
                for brand_id, c in sorted(counts.items(), key=lambda item: names.get(item[0], ""))
            ],
            overdue=[_overdue(g, names, now, g.customer_id in deleted_customers) for g in overdue.items],
            next_cursor=overdue.next_cursor,
        )

    @staticmethod
    def _acknowledgements(session: Session, now: datetime) -> dict[UUID, dict[str, int]]:
        """Per brand: its grants' ends by acknowledgement state, and reads attempted after an end."""
        done, due = col(Grant.end_acknowledged_at), col(Grant.end_ack_due_at)
        bucket = case(
            (and_(done.is_not(None), done <= due), "ends_acknowledged_on_time"),
            (done.is_not(None), "ends_acknowledged_late"),
            (due < now, "ends_unacknowledged"),
            else_="ends_awaiting_acknowledgement",
        )
        found: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        rows = session.exec(
            select(Grant.brand_id, bucket, func.count(), func.sum(col(Grant.reads_after_end)))
            .where(due.is_not(None))
            .group_by(col(Grant.brand_id), bucket)
        ).all()
        for brand_id, state, count, attempts in rows:
            found[brand_id][state] += count
            found[brand_id]["reads_after_end"] += int(attempts or 0)
        return {brand_id: dict(values) for brand_id, values in found.items()}


def _overdue(grant: Grant, names: dict[UUID, str], now: datetime, account_deleted: bool) -> OverdueDeletion:
    assert grant.deletion_due_at is not None
    return OverdueDeletion(
        grant_id=grant.id,
        brand_id=grant.brand_id,
        brand=names.get(grant.brand_id, ""),
        deletion_due_at=grant.deletion_due_at,
        days_overdue=round((now - grant.deletion_due_at).total_seconds() / 86400, 2),
        account_deleted=account_deleted,
    )


def _names(session: Session, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    return dict(session.exec(select(Brand.id, Brand.name).where(col(Brand.id).in_(ids))).all())
