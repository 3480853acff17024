"""When value falls due (`broker.value.schedule`) and how amounts are kept (`broker.value.amounts`):
pure arithmetic, checked at the calendar's and the integers' edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import ValidationFailed
from broker.value.amounts import check_delivery, from_minor, to_minor
from broker.value.schedule import (
    add_months,
    month_due,
    month_start,
    months_begun,
    next_check,
    next_month_start,
    one_off_due,
    past_due,
)


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (at(2025, 1, 31), 1, at(2025, 2, 28)),  # a short month clips the day
        (at(2024, 1, 31), 1, at(2024, 2, 29)),  # a leap year's February has 29
        (at(2024, 2, 29), 12, at(2025, 2, 28)),  # a leap day a year on
        (at(2024, 2, 29), 48, at(2028, 2, 29)),  # and four years on
        (at(2025, 1, 31), 3, at(2025, 4, 30)),
        (at(2025, 12, 15), 1, at(2026, 1, 15)),  # over the year's end
        (at(2025, 5, 15), 0, at(2025, 5, 15)),  # zero months: the same moment
        (at(2025, 3, 31), -1, at(2025, 2, 28)),  # back a month
        (at(2025, 1, 15), -1, at(2024, 12, 15)),  # back over the year's start
        (at(2025, 1, 15), -13, at(2023, 12, 15)),
        (at(2025, 1, 15), 12 * 7000, at(9025, 1, 15)),  # very far on
    ],
)
def test_add_months_keeps_the_day_and_time_or_takes_the_months_last(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected


def test_add_months_keeps_the_time_zone() -> None:
    paris = timezone(timedelta(hours=1))
    moved = add_months(datetime(2025, 1, 31, 23, 0, tzinfo=paris), 1)
    assert moved == datetime(2025, 2, 28, 23, 0, tzinfo=paris) and moved.tzinfo is paris


@pytest.mark.parametrize("months", [12 * 8000, -12 * 2100])
def test_add_months_beyond_the_calendar_is_a_value_error(months: int) -> None:
    with pytest.raises(ValueError, match="year"):
        add_months(at(2025, 1, 15), months)


@given(
    start=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2900, 12, 31), timezones=st.just(UTC)
    ),
    months=st.integers(min_value=0, max_value=1200),
)
def test_add_months_moves_the_calendar_month_and_never_drifts(start: datetime, months: int) -> None:
    moved = add_months(start, months)
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == months
    assert moved.day == start.day or (moved.day < start.day and (moved + timedelta(days=1)).day == 1)
    assert moved.time() == start.time() and moved.tzinfo is start.tzinfo
    assert add_months(start, months + 1) > moved, "months only ever move forward"


def test_monthly_months_count_from_the_grant_start_so_a_short_month_does_not_shift_the_rest() -> None:
    start = at(2024, 1, 31)
    assert [month_start(start, k).date().isoformat() for k in range(5)] == [
        "2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31",
    ]  # fmt: skip
    assert [month_due(start, k) for k in range(4)] == [month_start(start, k + 1) for k in range(4)]


@pytest.mark.parametrize(
    ("days", "expected"),
    [(None, at(2025, 1, 31)), (0, at(2025, 1, 31)), (7, at(2025, 2, 7)), (366, at(2026, 2, 1))],
)
def test_a_one_off_is_due_days_after_the_grant_started_or_at_once(
    days: int | None, expected: datetime
) -> None:
    assert one_off_due(at(2025, 1, 31), days) == expected


def test_a_one_off_over_a_leap_day_counts_it() -> None:
    assert one_off_due(at(2024, 2, 28), 1) == at(2024, 2, 29)
    assert one_off_due(at(2024, 2, 28), 2) == at(2024, 3, 1)


def test_months_begun_are_those_started_by_then_and_before_the_expiry() -> None:
    start = at(2025, 1, 31)
    begun = list(months_begun(start, at(2026, 1, 1), after=0, until=at(2025, 4, 30)))
    assert begun == [1, 2, 3], "months 1-3 started by 30 April (month 3 at that very moment)"
    just_before = at(2025, 4, 30) - timedelta(microseconds=1)
    assert list(months_begun(start, at(2026, 1, 1), after=0, until=just_before)) == [1, 2]
    assert list(months_begun(start, at(2026, 1, 1), after=3, until=at(2025, 4, 30))) == [], "none twice"
    assert list(months_begun(start, month_start(start, 2), after=0, until=at(2030, 1, 1))) == [1], (
        "a month starting as the grant expires is never owed"
    )


def test_months_begun_stops_at_the_expiry_however_late_it_is_asked() -> None:
    start = at(2025, 1, 15)
    begun = list(months_begun(start, add_months(start, 120), after=0, until=datetime.max.replace(tzinfo=UTC)))
    assert begun == list(range(1, 120))


def test_the_next_month_starts_unless_the_grant_expired_by_then() -> None:
    start = at(2025, 1, 31)
    assert next_month_start(start, at(2025, 12, 31), 0) == at(2025, 2, 28)
    assert next_month_start(start, at(2025, 2, 28), 0) is None, "expiring at that very moment"
    assert next_month_start(start, at(2025, 2, 28) + timedelta(microseconds=1), 0) == at(2025, 2, 28)


def test_the_next_check_is_the_earliest_moment_anything_can_fall_due() -> None:
    assert next_check([], None) is None
    assert next_check([at(2025, 3, 1), at(2025, 2, 1)], None) == at(2025, 2, 1)
    assert next_check([at(2025, 3, 1)], at(2025, 2, 28)) == at(2025, 2, 28)
    assert next_check((d for d in [at(2025, 3, 1)]), at(2025, 4, 1)) == at(2025, 3, 1)


def test_overdue_from_the_due_moment_itself() -> None:
    due = at(2025, 3, 1)
    assert not past_due(due, due - timedelta(microseconds=1))
    assert past_due(due, due)
    assert past_due(due, due + timedelta(days=10_000))


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        (None, None),
        ("0", 0),
        ("0.00", 0),
        ("10.00", 1000),
        ("0.01", 1),
        ("-3.50", -350),
        (Decimal("1E+3"), 100000),
        ("10.009", 1000),  # a third decimal is dropped, never rounded up (the API refuses it first)
        ("-10.009", -1000),
        ("92233720368547758.07", 2**63 - 1),  # the BigInteger column's largest
        ("12345678901234567890123456.78", 1234567890123456789012345678),  # exact to 28 digits
    ],
)
def test_amounts_are_kept_as_exact_hundredths(amount: str | Decimal | None, minor: int | None) -> None:
    assert to_minor(amount) == minor


def test_past_28_digits_the_decimal_context_rounds() -> None:
    # Decimal's default precision; the API caps amounts at 1,000,000 (and the column at 64 bits).
    assert to_minor("123456789012345678901234567.89") == 12345678901234567890123456790


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (None, None),
        (0, "0.00"),
        (1, "0.01"),
        (1000, "10.00"),
        (-350, "-3.50"),
        (2**63 - 1, "92233720368547758.07"),
    ],
)
def test_hundredths_read_back_as_exact_decimal_strings(minor: int | None, text: str | None) -> None:
    assert from_minor(minor) == text


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_hundredths_round_trip_exactly(minor: int) -> None:
    assert to_minor(from_minor(minor)) == minor


DECLARED = {"kind": "voucher", "amount": "10.00", "currency": "EUR"}


@pytest.mark.parametrize(
    ("kind", "amount", "currency", "pointers"),
    [
        ("voucher", Decimal("10.00"), "EUR", []),
        ("voucher", Decimal("12.50"), "EUR", []),  # more than declared is fine
        ("voucher", Decimal("9.99"), "EUR", ["/amount"]),
        ("voucher", Decimal("0"), "EUR", ["/amount"]),
        ("voucher", Decimal("-10.00"), "EUR", ["/amount"]),
        ("voucher", None, "EUR", ["/amount"]),
        ("cash", Decimal("10.00"), "GBP", ["/kind", "/currency"]),
        ("voucher", Decimal("10.00"), None, ["/currency"]),
    ],
)
def test_a_delivery_must_be_what_was_declared(
    kind: str, amount: Decimal | None, currency: str | None, pointers: list[str]
) -> None:
    if not pointers:
        check_delivery(DECLARED, kind=kind, amount=amount, currency=currency)
        return
    with pytest.raises(ValidationFailed) as refused:
        check_delivery(DECLARED, kind=kind, amount=amount, currency=currency)
    assert [e["pointer"] for e in refused.value.extensions["errors"]] == pointers


def test_a_service_declared_without_amount_or_currency_takes_none() -> None:
    service = {"kind": "service"}
    check_delivery(service, kind="service", amount=None, currency=None)
    with pytest.raises(ValidationFailed) as refused:
        check_delivery(service, kind="service", amount=Decimal("1"), currency="EUR")
    assert refused.value.detail == (
        "the declared value has no currency; leave it out; the declared value has no amount; leave it out"
    )
