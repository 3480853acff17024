"""Notices: what happened to a grant, told in the same transaction to whatever follows it.

This is the one way the rest of the broker learns of a grant's transitions (created, amended,
suspended, resumed, renewed, revoked, expired) and of what happens under it (a disputed value, a
deletion falling due). The services that change grants publish a `Notice`; every subscriber is
registered by the composition root (`broker.runtime`), in this order: consent receipts, the webhook
outbox, the value ledger (obligations start, settle and grow with the grant), the token families
(revoked when the grant ends, refresh tokens extended when it is renewed). Consent itself knows none
of them: it imports nothing above it.

Subscribers write their own rows in the caller's transaction, so a notice and the change it reports
commit together or not at all. A subscriber that needs the grant's row takes it from the session
(`session.get(Grant, notice.grant_id)`: the very object the publisher changed). A subscriber must not
commit, and must not call back into the service that published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from sqlmodel import Session

from broker.audit.entries import Actor
from broker.audit.log import QueuedEntry

__all__ = ["Notice", "NoticeType", "Notices", "Subscriber"]


class NoticeType(StrEnum):
    """What happened. The values are the event types brands see in webhooks."""

    GRANT_CREATED = "grant.created"
    GRANT_AMENDED = "grant.amended"
    GRANT_REVOKED = "grant.revoked"
    GRANT_EXPIRED = "grant.expired"
    GRANT_SUSPENDED = "grant.suspended"
    GRANT_RESUMED = "grant.resumed"
    VALUE_DISPUTED = "value.disputed"
    DELETION_DUE = "deletion.due"
    GRANT_RENEWED = "grant.renewed"
    DISPUTE_ESCALATED = "dispute.escalated"
    DISPUTE_DECIDED = "dispute.decided"
    GRANT_END_ACKNOWLEDGED = "grant.end_acknowledged"
    GRANT_ACKNOWLEDGEMENT_DUE = "grant.acknowledgement_due"
    PREFERENCES_CHANGED = "preferences.changed"  # the customer's preferences (`broker.voice`)


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing that happened to one grant, at `at`, done by `actor`.

    `data` holds the details that go with the type, as JSON-ready values: for grant notices the
    grant's terms (`fields`, `purpose`, `expires_at` as ISO 8601) and, when there is one, `reason`;
    for `value.disputed` the `obligation` id; for `dispute.escalated` and `dispute.decided` the
    `obligation` and `escalation` ids (and the decision's `outcome`, `redeliver_by` and `receipt` id).
    Never a field's value or anything that names the customer.
    `entry` is the audit entry the same transaction queued for it, when there is one: its index in the
    log is known once the transaction commits (`QueuedEntry.when_appended`).
    """

    type: NoticeType
    at: datetime
    actor: Actor
    grant_id: UUID
    brand_id: UUID
    customer_id: UUID
    data: Mapping[str, object] = field(default_factory=dict)
    entry: QueuedEntry | None = None


class Subscriber(Protocol):
    """Keeps something about notices, in the publisher's transaction."""

    def notice(self, session: Session, notice: Notice) -> None: ...


@dataclass(frozen=True, slots=True)
class Notices:
    """The subscribers, told in the order they were added."""

    subscribers: list[Subscriber] = field(default_factory=list)

    def publish(self, session: Session, notice: Notice) -> None:
        """Tell every subscriber, in this transaction."""
        for subscriber in self.subscribers:
            subscriber.notice(session, notice)
