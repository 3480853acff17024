"""Brands as the rest of the broker names them on pages and in reports."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlmodel import Session, col, select

from broker.accounts.models import Brand

__all__ = ["brand_names"]


def brand_names(session: Session, ids: Iterable[UUID]) -> dict[UUID, str]:
    """The names of these brands, in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(session.exec(select(Brand.id, Brand.name).where(col(Brand.id).in_(wanted))).all())
