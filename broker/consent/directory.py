"""The offer directory: the listed offers customers browse, filter, sort and compare.

A brand lists an offer by publishing a version with `listed: true`. The directory holds exactly the
active versions of listed offers: `Offers` adds a version's `DirectoryListing` in the transaction
that publishes it and removes it in the one that revises or withdraws it, so a changed or withdrawn
offer is gone from the next page anyone loads. Each listing keeps what the filters and sorts read
(its fields, purposes, duration, retention, recipients and value per field per month), so a page
is one indexed query however many offers are listed.

Pages are keyset-paginated in the chosen order, the offer id breaking ties: the cursor is the last
row's sort key and id, and names the sort it belongs to (a cursor of another sort is refused).
Nothing here records who looked: browsing leaves no trace (listing and unlisting are audit entries,
written by `Offers`).

Value per field per month (`value_per_field_month`): the declared amount (money or points), spread
over the months of access for a one-off value (a month is 30 days) or taken as it is for a monthly
one, divided by the number of fields the offer asks for; exact decimal arithmetic, rounded half-even
to four places. A service or a percentage discount has no amount to compare and is shown as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Final, TypedDict
from uuid import UUID

from sqlalchemy import and_, bindparam, exists, not_, tuple_
from sqlmodel import Session, col, delete, select

from broker.consent.models import (
    DirectoryCategory,
    DirectoryField,
    DirectoryListing,
    DirectoryPurpose,
    Offer,
)
from broker.consent.purposes import PURPOSES, offered_purposes
from broker.errors import ValidationFailed
from broker.pagination import (
    CURSOR_ERRORS,
    Page,
    attribute,
    check_limit,
    cursor_refused,
    pack,
    unpack,
    utc_instant,
)
from broker.signals import LISTINGS, changed
from vault.fields import CATALOGUE

__all__ = [
    "DAYS_PER_MONTH",
    "NOT_COMPARABLE",
    "DirectoryFilters",
    "DirectorySort",
    "NormalisedValue",
    "ValueOrder",
    "describe_value",
    "enter",
    "leave",
    "search",
    "value_order",
    "value_per_field_month",
]

DAYS_PER_MONTH: Final = 30
NOT_COMPARABLE: Final = "~"  # the value scale of a service or a percentage: sorts after every amount
_PLACES: Final = Decimal("0.0001")
_RANK_UNIT: Final = 10_000  # value_rank counts ten-thousandths
_BAD_CURSOR: Final = "cursor is not one this directory gave out for this sort; start again without a cursor"


@dataclass(frozen=True, slots=True)
class NormalisedValue:
    """A declared value per field asked and per month of access: `amount` in `scale` (a currency code
    or "points"), exact to four decimal places."""

    amount: Decimal
    scale: str


def value_per_field_month(
    value: dict[str, Any], field_count: int, duration_days: int
) -> NormalisedValue | None:
    """The offer's declared value per field per month, or None for a service or a percentage."""
    kind, amount = value["kind"], value.get("amount")
    if amount is None or kind == "service" or (kind == "discount" and value.get("unit") == "percent"):
        return None
    total = Decimal(str(amount))
    monthly = value["due"]["when"] == "monthly"
    per_month = total if monthly else total * DAYS_PER_MONTH / Decimal(duration_days)
    per_field = (per_month / Decimal(max(field_count, 1))).quantize(_PLACES, rounding=ROUND_HALF_EVEN)
    scale = "points" if kind == "points" else str(value["currency"])
    return NormalisedValue(per_field, scale)


class ValueOrder(TypedDict):
    """A listing's columns that the value sort reads."""

    value_group: int
    value_scale: str
    value_rank: int


def value_order(value: dict[str, Any], field_count: int, duration_days: int) -> ValueOrder:
    """A listing's value sort key: `value_group` (0 money, 1 points, 2 neither: an integer, so that the
    order does not hang on the database's collation of the scale's text), `value_scale` and
    `value_rank` (minus the value per field per month in ten-thousandths)."""
    normalised = value_per_field_month(value, field_count, duration_days)
    if normalised is None:
        return ValueOrder(value_group=2, value_scale=NOT_COMPARABLE, value_rank=0)
    return ValueOrder(
        value_group=1 if normalised.scale == "points" else 0,
        value_scale=normalised.scale,
        value_rank=-int(normalised.amount * _RANK_UNIT),
    )


def enter(session: Session, offer: Offer) -> None:
    """List this (active) version in the directory."""
    fields = [*offer.required_fields, *offer.optional_fields]
    session.add(
        DirectoryListing(
            offer_id=offer.id,
            brand_id=offer.brand_id,
            listed_at=offer.created_at,
            value_kind=offer.value["kind"],
            **value_order(offer.value, len(fields), offer.grant_duration_days),
            field_count=len(fields),
            duration_days=offer.grant_duration_days,
            retention_days=offer.retention_days,
            recipient_count=len(offer.recipients),
        )
    )
    session.flush()  # the listing row before the rows that point at it (PostgreSQL checks at once)
    for name in fields:
        session.add(DirectoryField(offer_id=offer.id, field=name, required=name in offer.required_fields))
    declared = offered_purposes(offer.purpose, offer.purpose_explanation, fields, offer.purposes)
    for slug in sorted({str(item["purpose"]) for item in declared}):
        session.add(DirectoryPurpose(offer_id=offer.id, purpose=slug))
    for category in sorted(set(offer.categories)):
        session.add(DirectoryCategory(offer_id=offer.id, category=category))
    session.flush()
    changed(session, LISTINGS)  # every process's cached directory pages are stale from its commit


def leave(session: Session, offer_id: UUID) -> bool:
    """Take this version out of the directory; whether it was in it."""
    for table in (DirectoryField, DirectoryPurpose, DirectoryCategory):
        session.exec(delete(table).where(col(table.offer_id) == offer_id))
    result = session.exec(delete(DirectoryListing).where(col(DirectoryListing.offer_id) == offer_id))
    if result.rowcount:
        changed(session, LISTINGS)  # as `enter`: the offer leaves every cached page at once
    return bool(result.rowcount)


class DirectorySort(StrEnum):
    """The orders of the directory."""

    NEWEST = "newest"  # most recently listed first
    VALUE = "value"  # most value per field per month first, grouped by currency (then points, then the rest)
    FEWEST_FIELDS = "fewest_fields"
    SHORTEST_RETENTION = "shortest_retention"
    SHORTEST_DURATION = "shortest_duration"


# Each sort: the listing's columns it orders by (after which the offer id breaks ties), and whether
# descending. All the columns of one sort go the same way, so the keyset is one row-value comparison.
_ORDERS: Final[dict[DirectorySort, tuple[tuple[Any, ...], bool]]] = {
    DirectorySort.NEWEST: ((DirectoryListing.listed_at,), True),
    DirectorySort.VALUE: (
        (DirectoryListing.value_group, DirectoryListing.value_scale, DirectoryListing.value_rank),
        False,
    ),
    DirectorySort.FEWEST_FIELDS: ((DirectoryListing.field_count,), False),
    DirectorySort.SHORTEST_RETENTION: ((DirectoryListing.retention_days,), False),
    DirectorySort.SHORTEST_DURATION: ((DirectoryListing.duration_days,), False),
}


@dataclass(frozen=True, slots=True)
class DirectoryFilters:
    """What the customer narrows the directory to; empty filters leave everything in. An unknown
    purpose or field is `ValidationFailed` (pointer `/purpose`, `/fields`), never echoed."""

    purpose: str | None = None  # offers that declare this purpose
    value_kinds: Sequence[str] = ()  # offers whose value is of one of these kinds
    currency: str | None = None  # offers whose value is counted in this currency (or "points")
    # Offers the customer could accept sharing only these fields: every field they require is among
    # them (their optional fields may lie outside: the customer leaves those out).
    fields: Sequence[str] = ()
    max_duration_days: int | None = None
    max_retention_days: int | None = None
    max_recipients: int | None = None  # 0: offers that share the data with no third party
    brand_id: UUID | None = None

    def __post_init__(self) -> None:
        errors = []
        if self.purpose is not None and self.purpose not in PURPOSES:
            detail = f"unknown purpose; choose from: {', '.join(PURPOSES)}"
            errors.append({"pointer": "/purpose", "detail": detail})
        if any(name not in CATALOGUE for name in self.fields):
            errors.append(
                {"pointer": "/fields", "detail": f"fields are catalogue names: {', '.join(CATALOGUE)}"}
            )
        if errors:
            raise ValidationFailed("; ".join(e["detail"] for e in errors), errors=errors)


def _where(filters: DirectoryFilters) -> list[Any]:
    listing = DirectoryListing
    conditions: list[Any] = []
    if filters.purpose is not None:
        conditions.append(
            exists().where(
                col(DirectoryPurpose.offer_id) == col(listing.offer_id),
                col(DirectoryPurpose.purpose) == filters.purpose,
            )
        )
    if filters.value_kinds:
        conditions.append(col(listing.value_kind).in_(list(filters.value_kinds)))
    if filters.currency is not None:
        conditions.append(col(listing.value_scale) == filters.currency)
    if filters.fields:
        conditions.append(
            not_(
                exists().where(
                    col(DirectoryField.offer_id) == col(listing.offer_id),
                    col(DirectoryField.required).is_(True),
                    col(DirectoryField.field).not_in(list(filters.fields)),
                )
            )
        )
    for column, bound in (
        (listing.duration_days, filters.max_duration_days),
        (listing.retention_days, filters.max_retention_days),
        (listing.recipient_count, filters.max_recipients),
    ):
        if bound is not None:
            conditions.append(col(column) <= bound)
    if filters.brand_id is not None:
        conditions.append(col(listing.brand_id) == filters.brand_id)
    return conditions


def search(
    session: Session,
    filters: DirectoryFilters,
    *,
    sort: DirectorySort = DirectorySort.NEWEST,
    cursor: str | None = None,
    limit: int = 20,
) -> Page[UUID]:
    """The ids of one page of listed offers (their active versions) matching `filters`, in `sort`
    order: the listing table alone answers it (offer versions never change, so callers may keep them)."""
    check_limit(limit)
    columns, descending = _ORDERS[sort]
    keys = (*columns, DirectoryListing.offer_id)
    query = select(*keys)
    conditions = _where(filters)
    if cursor is not None:
        after = tuple_(*(col(k) for k in keys))
        # typed like their columns, as `broker.pagination` does (a UTC timestamp, a UUID)
        typed = zip(keys, _decode(cursor, sort), strict=True)
        values = tuple_(*(bindparam(None, v, type_=attribute(k).type) for k, v in typed))
        conditions.append(after < values if descending else after > values)
    if conditions:
        query = query.where(and_(*conditions))
    order = [col(k).desc() if descending else col(k).asc() for k in keys]
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    items = [row[-1] for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = _encode(sort, list(rows[limit - 1]))
    return Page(items=items, next_cursor=next_cursor)


def _encode(sort: DirectorySort, key: list[Any]) -> str:
    shown = [
        v.astimezone(UTC).isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, UUID) else v
        for v in key
    ]
    return pack([sort.value, *shown])


def _decode(cursor: str, sort: DirectorySort) -> list[Any]:
    columns, _ = _ORDERS[sort]
    try:
        decoded = unpack(cursor)
        if not isinstance(decoded, list) or len(decoded) != len(columns) + 2 or decoded[0] != sort.value:
            raise ValueError("not this sort's cursor")
        values: list[Any] = []
        for column, value in zip(columns, decoded[1:-1], strict=True):
            if column is DirectoryListing.listed_at:
                values.append(utc_instant(value))
            elif column is DirectoryListing.value_scale:
                if not isinstance(value, str) or len(value) > 8:
                    raise ValueError("not a scale")
                values.append(value)
            elif isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**62:
                values.append(value)
            else:
                raise ValueError("not a whole number a listing can hold")
        return [*values, UUID(decoded[-1])]
    except CURSOR_ERRORS:
        raise cursor_refused(_BAD_CURSOR) from None


def describe_value(value: Mapping[str, Any]) -> str:
    """The declared value in plain words, e.g. '10.00 EUR voucher: …, within 7 days'."""
    amount = value.get("amount")
    if value.get("unit") == "percent":
        head = f"{amount}% {value['kind']}"
    elif amount is not None and value.get("currency"):
        head = f"{amount} {value['currency']} {value['kind']}"
    elif amount is not None:
        head = f"{amount} {value['kind']}"
    else:
        head = str(value["kind"])
    due = value.get("due") or {}
    when = {
        "before_first_read": "before they first read your data",
        "within_days": f"within {due.get('days')} days",
        "monthly": "every month while you share",
    }.get(str(due.get("when")), "")
    return f"{head}: {value.get('description', '')}" + (f" ({when})" if when else "")
