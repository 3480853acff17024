"""A brand's record of delivering what it declared, over the last 12 months.

Of the obligations that fell due in the window (not cancelled), how many it delivered on time: its
first delivery by the due date, and no dispute about it upheld by an auditor (an upheld dispute means
what was delivered was not what was declared, whenever it came). And how many disputes auditors
upheld against it in the window. The auditor's value report and the consent screen show it, so a
customer sees a brand's track record before agreeing. Counted by the database, per brand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import and_, case, func
from sqlmodel import Session, col, select

from broker.value.models import Delivery, Escalation, Obligation, ObligationStatus, Outcome

__all__ = ["NO_RECORD", "WINDOW", "TrackRecord", "track_record"]

WINDOW = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class TrackRecord:
    """A brand's record over the last 12 months."""

    fell_due: int  # obligations that fell due (not cancelled)
    on_time: int  # of those, delivered by their due date, with no dispute upheld
    disputes_upheld: int

    @property
    def on_time_percent(self) -> int | None:
        """On time as a whole percentage; None when nothing fell due yet."""
        return None if self.fell_due == 0 else round(100 * self.on_time / self.fell_due)


NO_RECORD = TrackRecord(fell_due=0, on_time=0, disputes_upheld=0)  # a brand with nothing due yet


def track_record(session: Session, brand_ids: Iterable[UUID], now: datetime) -> dict[UUID, TrackRecord]:
    """Each brand's record over the 12 months to `now` (brands with none are absent)."""
    wanted = list(set(brand_ids))
    if not wanted:
        return {}
    since = now - WINDOW
    first = (
        select(col(Delivery.obligation_id), func.min(col(Delivery.delivered_at)).label("first"))
        .group_by(col(Delivery.obligation_id))
        .subquery()
    )
    upheld = select(Escalation.obligation_id).where(Escalation.outcome == Outcome.UPHELD)
    on_time = and_(first.c.first <= col(Obligation.due_at), col(Obligation.id).not_in(upheld))
    due = session.exec(
        select(Obligation.brand_id, func.count(), func.sum(case((on_time, 1), else_=0)))
        .outerjoin(first, first.c.obligation_id == col(Obligation.id))
        .where(
            col(Obligation.brand_id).in_(wanted),
            Obligation.status != ObligationStatus.CANCELLED,
            col(Obligation.due_at) <= now,
            col(Obligation.due_at) > since,
        )
        .group_by(col(Obligation.brand_id))
    ).all()
    lost = dict(
        session.exec(
            select(Escalation.brand_id, func.count())
            .where(
                col(Escalation.brand_id).in_(wanted),
                Escalation.outcome == Outcome.UPHELD,
                col(Escalation.decided_at) > since,
            )
            .group_by(col(Escalation.brand_id))
        ).all()
    )
    records = {
        b: TrackRecord(fell_due=n, on_time=int(ok or 0), disputes_upheld=lost.get(b, 0)) for b, n, ok in due
    }
    for brand_id, count in lost.items():
        records.setdefault(brand_id, TrackRecord(fell_due=0, on_time=0, disputes_upheld=count))
    return records
