"""API shapes of webhooks: what a brand sends to register an endpoint, and what it reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from broker.consent.notices import NoticeType
from broker.webhooks.models import EndpointStatus, WebhookAttempt, WebhookEndpoint

__all__ = [
    "WebhookCreate",
    "WebhookCreated",
    "WebhookDeliveryPage",
    "WebhookDeliveryPublic",
    "WebhookPage",
    "WebhookPublic",
]


class WebhookCreate(BaseModel):
    """A new endpoint: where to send, which event types (leave out for every type, present and future)."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="https:// URL that receives POSTs; must resolve to public addresses only",
        examples=["https://grocer.example/hooks/consentry"],
        json_schema_extra={"pattern": "^https://"},  # checked, with a clearer message, by `vet`
    )
    events: list[NoticeType] | None = Field(
        default=None, min_length=1, max_length=len(NoticeType), description="event types; null for all"
    )
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class WebhookPublic(BaseModel):
    """An endpoint as its brand sees it (never its secret)."""

    id: UUID
    url: str
    events: list[str] | None = Field(description="the event types it receives; null for all")
    description: str | None
    status: EndpointStatus
    disabled_reason: str | None = Field(description="why it no longer receives messages, when disabled")
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookPublic:
        """The public view of a stored endpoint."""
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=endpoint.events,
            description=endpoint.description,
            status=endpoint.status,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
        )


class WebhookCreated(WebhookPublic):
    """A new endpoint and its signing secret, which is shown here once and never again."""

    secret: str = Field(description="whsec_… signing secret (Standard Webhooks); shown only now")


class WebhookPage(BaseModel):
    """A page of endpoints, newest first."""

    items: list[WebhookPublic]
    next_cursor: str | None


class WebhookDeliveryPublic(BaseModel):
    """One attempt to deliver one message."""

    message_id: str = Field(description="the webhook-id header: the same on every retry of a message")
    event_type: str
    attempt: int = Field(description="1 for the first try")
    at: datetime
    status_code: int | None = Field(description="the receiver's HTTP status; null when none came")
    error: str | None = Field(description="what went wrong when no status came (timeout, refused address …)")
    duration_ms: int
    next_attempt_at: datetime | None = Field(description="when the next try is due; null when none is")

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> WebhookDeliveryPublic:
        """The public view of a logged attempt."""
        return cls(
            message_id=f"msg_{attempt.message_id.hex}",
            event_type=attempt.event_type,
            attempt=attempt.attempt,
            at=attempt.created_at,
            status_code=attempt.status_code,
            error=attempt.error,
            duration_ms=attempt.duration_ms,
            next_attempt_at=attempt.next_attempt_at,
        )


class WebhookDeliveryPage(BaseModel):
    """A page of the delivery log, newest first."""

    items: list[WebhookDeliveryPublic]
    next_cursor: str | None
