"""A customer's own security activity: sign-ins, new devices, sessions ended, password and email
changes, resets, factors added or removed.

It is the customer's data, not the public audit log: the table cascades from the customer (deleting the
account deletes it), entries carry only a kind, a coarse device label and an optional non-personal
qualifier (a method or a factor type, never a name), and they are pruned after the retention period
by the lifecycle sweep. Listeners (the security mail) hear each entry in the caller's transaction, so
an entry and its mail commit together or not at all; a listener must not commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from sqlmodel import Session, col, delete, func, select

from broker.accounts.models import SecurityEvent
from broker.pagination import Page, page

__all__ = ["SIGN_IN_KINDS", "ActivityKind", "ActivityListener", "SecurityActivity"]


class ActivityKind(StrEnum):
    """What happened to the account. The values are what `GET /v1/me/security-activity` shows."""

    SIGN_IN = "sign_in"
    NEW_DEVICE = "sign_in.new_device"
    SIGN_IN_LINK = "sign_in.link"
    SESSION_REVOKED = "session.revoked"
    PASSWORD_CHANGED = "password.changed"  # noqa: S105 - an event name, not a secret
    RESET_REQUESTED = "password_reset.requested"
    PASSWORD_RESET = "password.reset"  # noqa: S105 - an event name, not a secret
    EMAIL_CHANGED = "email.changed"
    FACTOR_ADDED = "factor.added"
    FACTOR_REMOVED = "factor.removed"
    SECOND_FACTOR_FAILED = "second_factor.failed"  # the right password, then a wrong second factor


SIGN_IN_KINDS = frozenset({ActivityKind.SIGN_IN, ActivityKind.NEW_DEVICE, ActivityKind.SIGN_IN_LINK})


class ActivityListener(Protocol):
    """Hears each recorded entry, in the caller's transaction (it must not commit)."""

    def on_activity(self, session: Session, event: SecurityEvent) -> None:
        """React to one entry (e.g. queue a security mail)."""


@dataclass(frozen=True, slots=True)
class SecurityActivity:
    """Records and lists a customer's security activity, and forgets it after `retention`."""

    clock: Callable[[], datetime]
    retention: timedelta
    listeners: list[ActivityListener] = field(default_factory=list)

    def record(
        self,
        session: Session,
        customer_id: UUID,
        kind: ActivityKind,
        *,
        device: str | None = None,
        detail: str | None = None,
    ) -> SecurityEvent:
        """Add one entry now. `device` is a coarse label (`devices.device_label`); `detail` a short
        non-personal qualifier such as a sign-in method or a factor type ("passkey", "totp")."""
        event = SecurityEvent(
            customer_id=customer_id, kind=kind.value, device=device, detail=detail, created_at=self.clock()
        )
        session.add(event)
        session.flush()
        for listener in self.listeners:
            listener.on_activity(session, event)
        return event

    def count_since(self, session: Session, customer_id: UUID, kind: ActivityKind, since: datetime) -> int:
        """How many entries of `kind` the customer has had since `since`."""
        query = select(func.count()).where(
            SecurityEvent.customer_id == customer_id,
            SecurityEvent.kind == kind.value,
            SecurityEvent.created_at >= since,
        )
        return session.exec(query).one()

    def is_new_device(self, session: Session, customer_id: UUID, device: str) -> bool:
        """True when the customer has signed in before (within the retention period), never from
        a device with this label. The very first sign-in is not "new": there is nothing to compare."""
        since = self.clock() - self.retention
        kinds = [kind.value for kind in SIGN_IN_KINDS]
        signed_in = select(SecurityEvent.device).where(
            SecurityEvent.customer_id == customer_id,
            col(SecurityEvent.kind).in_(kinds),
            SecurityEvent.created_at > since,
        )
        if session.exec(signed_in.limit(1)).first() is None:
            return False
        return session.exec(signed_in.where(SecurityEvent.device == device).limit(1)).first() is None

    def listing(
        self, session: Session, customer_id: UUID, *, cursor: str | None, limit: int
    ) -> Page[SecurityEvent]:
        """The customer's entries within the retention period, newest first (keyset pagination)."""
        query = select(SecurityEvent).where(
            SecurityEvent.customer_id == customer_id,
            SecurityEvent.created_at > self.clock() - self.retention,
        )
        return page(session, query, SecurityEvent.created_at, SecurityEvent.id, cursor=cursor, limit=limit)

    def prune(self, session: Session, *, limit: int) -> int:
        """Delete up to `limit` entries older than the retention period; returns how many went."""
        expired = select(SecurityEvent.id).where(SecurityEvent.created_at <= self.clock() - self.retention)
        ids = list(session.exec(expired.limit(limit)))
        if ids:
            session.exec(delete(SecurityEvent).where(col(SecurityEvent.id).in_(ids)))
        return len(ids)
