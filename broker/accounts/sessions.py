"""A customer's sessions: the active ones, and ending one, all others, or all.

A session is active while it is not revoked, its absolute lifetime (`session_ttl`, from login) has not
passed, and it was seen within the idle timeout. `Accounts.authenticate` applies the same rule to every
request (`is_active` is the one place it is written), so a session this list no longer shows also no
longer works, and one ended here dies at once: the very next request with its token is a 401.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, delete, select

from broker.accounts.activity import ActivityKind, SecurityActivity
from broker.accounts.models import CustomerSession
from broker.errors import NotFound
from broker.pagination import Page, page

__all__ = ["CustomerSessions", "is_active"]


class SessionTimes(Protocol):
    """What `is_active` reads of a session: the ORM row or a read-only request's record."""

    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...


def is_active(row: SessionTimes, now: datetime, idle_timeout: timedelta) -> bool:
    """The rule: not revoked, before its absolute expiry, and seen within the idle timeout."""
    return row.revoked_at is None and row.expires_at > now and row.last_seen_at + idle_timeout > now


@dataclass(frozen=True, slots=True)
class CustomerSessions:
    """Lists and ends a customer's sessions."""

    clock: Callable[[], datetime]
    idle_timeout: timedelta
    activity: SecurityActivity

    def _active(self, now: datetime) -> ColumnElement[bool]:
        return and_(
            col(CustomerSession.revoked_at).is_(None),
            col(CustomerSession.expires_at) > now,
            col(CustomerSession.last_seen_at) > now - self.idle_timeout,
        )

    def listing(
        self, session: Session, customer_id: UUID, *, cursor: str | None, limit: int
    ) -> Page[CustomerSession]:
        """The customer's active sessions, newest first (keyset pagination)."""
        query = select(CustomerSession).where(
            CustomerSession.customer_id == customer_id, self._active(self.clock())
        )
        return page(
            session, query, CustomerSession.created_at, CustomerSession.id, cursor=cursor, limit=limit
        )

    def revoke(self, session: Session, customer_id: UUID, session_id: UUID) -> CustomerSession:
        """End one of the customer's active sessions; NotFound for another's, or one already ended."""
        row = session.get(CustomerSession, session_id)
        if (
            row is None
            or row.customer_id != customer_id
            or not is_active(row, self.clock(), self.idle_timeout)
        ):
            raise NotFound(f"no active session {session_id} on this account; list them at /v1/me/sessions")
        self._end(session, [row])
        return row

    def revoke_others(self, session: Session, customer_id: UUID, keep: UUID) -> int:
        """End every active session of the customer but `keep` (the current one); returns how many."""
        others = session.exec(
            select(CustomerSession).where(
                CustomerSession.customer_id == customer_id,
                CustomerSession.id != keep,
                self._active(self.clock()),
            )
        ).all()
        self._end(session, list(others))
        return len(others)

    def end_all(self, session: Session, customer_id: UUID) -> int:
        """End every session of the customer (after a password reset); returns how many were active."""
        rows = session.exec(
            select(CustomerSession).where(
                CustomerSession.customer_id == customer_id, self._active(self.clock())
            )
        ).all()
        now = self.clock()
        for row in rows:
            row.revoked_at = now
            session.add(row)
        session.flush()
        return len(rows)

    def _end(self, session: Session, rows: list[CustomerSession]) -> None:
        now = self.clock()
        for row in rows:
            row.revoked_at = now
            session.add(row)
            self.activity.record(session, row.customer_id, ActivityKind.SESSION_REVOKED, device=row.device)
        session.flush()

    def prune(self, session: Session, *, limit: int) -> int:
        """Delete up to `limit` sessions that can never work again (revoked, or past their absolute
        expiry); returns how many went. Idle ones go once their absolute expiry passes."""
        now = self.clock()
        ended = or_(col(CustomerSession.revoked_at).is_not(None), col(CustomerSession.expires_at) <= now)
        ids = list(session.exec(select(CustomerSession.id).where(ended).limit(limit)))
        if ids:
            session.exec(delete(CustomerSession).where(col(CustomerSession.id).in_(ids)))
        return len(ids)
