"""When value falls due: the calendar arithmetic of the value ledger, pure functions of datetimes.

A one-off value is due `days` after the grant starts (at once for `before_first_read`). A monthly value
owes one obligation per month of the grant: month k (from 0) starts k calendar months after the grant
started and is due when month k+1 starts; a month that starts at or after the grant's expiry is never
owed. Months are always counted from the grant's start, never from the month before, so a grant made on
31 January has months starting 29 February (in a leap year), 31 March, 30 April: a short month clips
the day and the next month gets it back.

Overdue is not a state: an owed obligation is overdue from its due date on, to the microsecond
(`now >= due_at`; the auditor's report counts with the same edge in SQL).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

__all__ = [
    "add_months",
    "month_due",
    "month_start",
    "months_begun",
    "next_check",
    "next_month_start",
    "one_off_due",
    "past_due",
]


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later (earlier when negative), on the month's last day when it is
    shorter. ValueError past the calendar's years 1-9999."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def one_off_due(start: datetime, days: int | None) -> datetime:
    """A one-off value's due date: `days` after the grant started; at once when there are none."""
    return start + timedelta(days=days or 0)


def month_start(start: datetime, period: int) -> datetime:
    """When month `period` (from 0) of a monthly value starts."""
    return add_months(start, period)


def month_due(start: datetime, period: int) -> datetime:
    """When month `period` of a monthly value is due: as the next month starts."""
    return add_months(start, period + 1)


def months_begun(start: datetime, expires_at: datetime, *, after: int, until: datetime) -> Iterator[int]:
    """The months after month `after` that started by `until` (inclusive) and before the expiry."""
    period = after + 1
    while month_start(start, period) <= until and month_start(start, period) < expires_at:
        yield period
        period += 1


def next_month_start(start: datetime, expires_at: datetime, last_period: int) -> datetime | None:
    """When the month after `last_period` starts, or None if the grant has expired by then."""
    moment = month_start(start, last_period + 1)
    return moment if moment < expires_at else None


def next_check(due_dates: Iterable[datetime], next_month: datetime | None) -> datetime | None:
    """The next moment anything can fall due: the earliest due date, or the next month's start."""
    moments = [*due_dates, *([] if next_month is None else [next_month])]
    return min(moments, default=None)


def past_due(due_at: datetime, now: datetime) -> bool:
    """Whether something due at `due_at` is late at `now` (from the due moment itself on)."""
    return now >= due_at
