"""Which customers deleted their accounts.

Grants, value obligations and receipts outlive the account they name (a brand's deletion duty and
what it owes do not end because the customer left), so their views show such a customer as deleted.
An `AccountTombstone` row, holding nothing but the id and the time, is how we know.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import ColumnElement, exists
from sqlmodel import Session, col, select

from broker.accounts.models import AccountTombstone

__all__ = ["deleted_among", "is_deleted"]


def deleted_among(session: Session, customer_ids: Iterable[UUID]) -> set[UUID]:
    """Those of `customer_ids` whose account was deleted, in one query."""
    wanted = set(customer_ids)
    if not wanted:
        return set()
    query = select(AccountTombstone.customer_id).where(col(AccountTombstone.customer_id).in_(wanted))
    return set(session.exec(query).all())


def is_deleted(customer_id: UUID) -> ColumnElement[bool]:
    """SQL: the account named by this column (a model's `customer_id` attribute) was deleted, for
    reports that count in the database."""
    return exists().where(col(AccountTombstone.customer_id) == col(customer_id))
