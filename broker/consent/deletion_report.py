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
from typing import Any, cast
from uuid import UUID

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from broker.accounts.brands import brand_names
from broker.accounts.tombstones import deleted_among, is_deleted
from broker.consent.models import Grant
from broker.pagination import page

__all__ = [
    "BrandDeletionReport",
    "DeletionReport",
    "DeletionReports",
    "DutyRecord",
    "OverdueDeletion",
    "duty_records",
]

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
        counts, of_deleted = _deletion_buckets(session, now, None)
        overdue_query = select(Grant).where(attested.is_(None), due_at <= now)
        # deletion_due_at is never null in these rows; page() orders by it like a creation time.
        due_column = cast(datetime, Grant.deletion_due_at)
        overdue = page(session, overdue_query, due_column, Grant.id, cursor=cursor, limit=limit)
        acknowledged = _acknowledgements(session, now, None)
        for brand_id in acknowledged:
            counts.setdefault(brand_id, dict.fromkeys(_BUCKETS, 0))
        names = brand_names(session, {*counts, *(g.brand_id for g in overdue.items)})
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


def _acknowledgements(
    session: Session, now: datetime, brand_ids: list[UUID] | None
) -> dict[UUID, dict[str, int]]:
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
        .where(due.is_not(None), *_of(brand_ids))
        .group_by(col(Grant.brand_id), bucket)
    ).all()
    for brand_id, state, count, attempts in rows:
        found[brand_id][state] += count
        found[brand_id]["reads_after_end"] += int(attempts or 0)
    return {brand_id: dict(values) for brand_id, values in found.items()}


def _of(brand_ids: list[UUID] | None) -> list[Any]:
    return [] if brand_ids is None else [col(Grant.brand_id).in_(brand_ids)]


def _deletion_buckets(
    session: Session, now: datetime, brand_ids: list[UUID] | None
) -> tuple[dict[UUID, dict[str, int]], dict[UUID, int]]:
    """Per brand: its ended grants by deletion state, and how many of them are of deleted accounts."""
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
        .where(due_at.is_not(None), *_of(brand_ids))
        .group_by(col(Grant.brand_id), bucket, gone)
    ).all()
    counts: dict[UUID, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_BUCKETS, 0))
    of_deleted: dict[UUID, int] = defaultdict(int)
    for brand_id, state, deleted, count in rows:
        counts[brand_id][state] += count
        of_deleted[brand_id] += count if deleted else 0
    return counts, of_deleted


@dataclass(frozen=True, slots=True)
class DutyRecord:
    """A brand's record of its duties when grants end, as the deletion report counts them (all time)."""

    deletions_fell_due: int  # ended grants whose deletion fell due or was attested
    deletions_on_time: int  # attested no later than the due date
    ends_fell_due: int  # ends whose acknowledgement window closed, or that were acknowledged
    ends_acknowledged_on_time: int


def duty_records(session: Session, brand_ids: list[UUID], now: datetime) -> dict[UUID, DutyRecord]:
    """The deletion report's figures for these brands (brands with no ended grant are absent)."""
    if not brand_ids:
        return {}
    counts, _ = _deletion_buckets(session, now, brand_ids)
    acknowledged = _acknowledgements(session, now, brand_ids)
    records = {}
    for brand_id in {*counts, *acknowledged}:
        c, a = counts.get(brand_id, dict.fromkeys(_BUCKETS, 0)), acknowledged.get(brand_id, {})
        on_time = a.get("ends_acknowledged_on_time", 0)
        records[brand_id] = DutyRecord(
            deletions_fell_due=c["overdue"] + c["attested_on_time"] + c["attested_late"],
            deletions_on_time=c["attested_on_time"],
            ends_fell_due=on_time + a.get("ends_acknowledged_late", 0) + a.get("ends_unacknowledged", 0),
            ends_acknowledged_on_time=on_time,
        )
    return records


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
