"""Webhook tables: a brand's endpoints, the outbox of messages to send them, and every attempt made.

An endpoint stores no secret: its signing secret is derived when needed from a server key, the
endpoint id and `secret_version` (see `broker.webhooks.signing`). A message holds the exact bytes to
send (signed afresh at each attempt, with the attempt's timestamp) and is written in the transaction
of the event it reports, so an event that commits is never lost and one rolled back is never sent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import JSON, Column, ForeignKey, Index, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime, str_enum


class EndpointStatus(StrEnum):
    """An endpoint gets messages while enabled; it is disabled when its receiver answers 410 Gone."""

    ENABLED = "enabled"
    DISABLED = "disabled"


class MessageStatus(StrEnum):
    """`pending` until a 2xx answer (`delivered`) or until the retry schedule runs out (`failed`)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(SQLModel, table=True):
    """A URL a brand asked to be told at, and which event types it wants (None: every type)."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (Index("ix_webhook_endpoint_brand_page", "brand_id", "created_at", "id"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    brand_id: UUID = Field(sa_column=Column(ForeignKey("brand.id", ondelete="CASCADE"), nullable=False))
    url: str = Field(max_length=2000)
    events: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    description: str | None = Field(default=None, max_length=200)
    secret_version: int = 1
    status: EndpointStatus = Field(
        default=EndpointStatus.ENABLED, sa_column=Column(str_enum(EndpointStatus), nullable=False)
    )
    disabled_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribed to `event_type`."""
        return self.status is EndpointStatus.ENABLED and (self.events is None or event_type in self.events)


class WebhookMessage(SQLModel, table=True):
    """One event for one endpoint (the outbox row): its body, and when to try next."""

    __tablename__ = "webhook_message"
    __table_args__ = (
        # The worker's claim: pending messages whose next attempt is due, oldest first.
        Index("ix_webhook_message_due", "status", "next_attempt_at"),
        Index("ix_webhook_message_endpoint", "endpoint_id"),
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    endpoint_id: UUID = Field(
        sa_column=Column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False)
    )
    event_type: str = Field(max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: MessageStatus = Field(
        default=MessageStatus.PENDING, sa_column=Column(str_enum(MessageStatus), nullable=False)
    )
    attempts: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks `webhook-id`: the same on every retry of this message."""
        return f"msg_{self.id.hex}"


class WebhookAttempt(SQLModel, table=True):
    """One try at delivering a message: the delivery log a brand reads."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_endpoint_page", "endpoint_id", "created_at", "id"),)

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    message_id: UUID = Field(
        sa_column=Column(ForeignKey("webhook_message.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    endpoint_id: UUID = Field(
        sa_column=Column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False)
    )
    event_type: str = Field(max_length=64)
    attempt: int
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=200)
    duration_ms: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
