"""Keyset pagination for tables listed newest first, ordered by (created_at DESC, id DESC).

The cursor is opaque to clients: base64url (unpadded) of the compact JSON `["<created_at ISO>", "<id>"]` of
the last row shown. The next page is every row strictly before it in that order, written as
the row value `(created_at, id) < (c, i)`: SQLite (3.15+) and PostgreSQL both seek an index on
(…, created_at, id) straight to it. Rows created while paging never shift or repeat a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar
from uuid import UUID

from sqlalchemy import bindparam, tuple_
from sqlalchemy.orm import QueryableAttribute
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from broker.errors import ValidationFailed

__all__ = [
    "CURSOR_ERRORS",
    "MAX_LIMIT",
    "Page",
    "attribute",
    "check_limit",
    "cursor_refused",
    "decode_cursor",
    "encode_cursor",
    "newest_first",
    "pack",
    "page",
    "page_of",
    "unpack",
    "utc_instant",
]

T = TypeVar("T")
R = TypeVar("R")
MAX_LIMIT: Final = 200
_BAD_CURSOR: Final = "cursor is not one this API gave out; start again without a cursor"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows, and the cursor of the next page (None on the last page)."""

    items: list[T]
    next_cursor: str | None


# What reading a cursor someone made up can raise: bad base64 or JSON (a ValueError), bad UTF-8, a
# wrong shape (ValueError, TypeError, AttributeError), an offset that takes a timestamp past year 1
# or 9999 (OverflowError). Callers turn them into `cursor_refused`.
CURSOR_ERRORS: Final = (
    binascii.Error,
    UnicodeDecodeError,
    ValueError,
    TypeError,
    AttributeError,
    OverflowError,
)


def pack(values: Sequence[Any]) -> str:
    """A cursor's text: base64url (unpadded) of the compact JSON of `values` (strings and numbers)."""
    text = json.dumps(list(values), separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def unpack(text: str) -> Any:
    """The JSON `pack` wrote; raises one of `CURSOR_ERRORS` for anything else."""
    return json.loads(base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True))


def utc_instant(text: Any) -> datetime:
    """An ISO 8601 timestamp with an offset, in UTC; raises one of `CURSOR_ERRORS` for anything else."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("naive timestamp")
    return at.astimezone(UTC)


def cursor_refused(detail: str = _BAD_CURSOR) -> ValidationFailed:
    """The 422 for a cursor this API did not give out (pointer `/cursor`)."""
    return ValidationFailed(detail, errors=[{"pointer": "/cursor", "detail": detail}])


def encode_cursor(created_at: datetime, id: UUID) -> str:
    """The opaque cursor pointing just after the row (created_at, id)."""
    return pack([created_at.astimezone(UTC).isoformat(), str(id)])


def decode_cursor(text: str) -> tuple[datetime, UUID]:
    """The (created_at, id) in a cursor; raises `ValidationFailed` (pointer `/cursor`) for anything else."""
    try:
        created, ident = unpack(text)
        return utc_instant(created), UUID(ident)
    except CURSOR_ERRORS:
        raise cursor_refused() from None


def page(
    session: Session,
    query: SelectOfScalar[T],
    created_col: datetime,
    id_col: UUID,
    *,
    cursor: str | None,
    limit: int,
) -> Page[T]:
    """Run `query` for one page, newest first, after `cursor` (from the start when None).

    `created_col` and `id_col` are the model's columns, e.g. `Grant.created_at, Grant.id` (SQLModel types
    them as their values, hence the annotations). `limit` must be 1 to MAX_LIMIT: callers validate it,
    and a caller that forgot gets the same 422 here rather than an unbounded query.
    """
    check_limit(limit)
    created, ident = attribute(created_col), attribute(id_col)
    after = None
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        after = (bindparam(None, at, type_=created.type), bindparam(None, last_id, type_=ident.type))
    rows = list(session.exec(newest_first(query, created, ident, after=after, rows=limit + 1)))
    return page_of(rows, limit, created=created.key, ident=ident.key)


def newest_first(query: Any, created: Any, ident: Any, *, after: tuple[Any, Any] | None, rows: Any) -> Any:
    """`query` ordered newest first by (`created`, `ident`), after the row whose values are `after` (two
    bound parameters, typed like the columns), at most `rows` rows: ask for one more than the page's
    size, and `page_of` tells from it whether a next page exists, without a COUNT."""
    if after is not None:
        # A row value: both databases seek the (…, created_at, id) index straight to the cursor
        # instead of walking down to it (an OR of comparisons only seeks the prefix).
        query = query.where(tuple_(created, ident) < tuple_(*after))
    return query.order_by(created.desc(), ident.desc()).limit(rows)


def page_of(rows: list[R], limit: int, *, created: str, ident: str) -> Page[R]:
    """The page of `limit` rows out of `rows` (up to `limit` + 1, from `newest_first`), and the cursor of
    the next page, from the last row's attributes `created` and `ident`."""
    items = rows[:limit]
    if len(rows) <= limit:
        return Page(items=items, next_cursor=None)
    last = items[-1]
    return Page(items=items, next_cursor=encode_cursor(getattr(last, created), getattr(last, ident)))


def check_limit(limit: int) -> None:
    """A page's size must be 1 to MAX_LIMIT: callers validate it, and one that forgot gets the same 422
    here rather than an unbounded query."""
    if not 1 <= limit <= MAX_LIMIT:
        detail = f"limit must be a whole number from 1 to {MAX_LIMIT}"
        raise ValidationFailed(detail, errors=[{"pointer": "/limit", "detail": detail}])


def attribute(column: object) -> QueryableAttribute[Any]:
    """A model attribute as SQLAlchemy's (SQLModel types it as its value), to read its column's type."""
    if not isinstance(column, QueryableAttribute):
        raise TypeError("page() takes model attributes such as Grant.created_at and Grant.id")
    return column
