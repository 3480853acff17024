"""Shapes of the customer's sessions, security activity and password change in the customer API."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from broker.accounts import passwords
from broker.accounts.activity import ActivityKind
from broker.accounts.models import CustomerSession, SecurityEvent


class ActiveSessionPublic(BaseModel):
    """One active session of the customer."""

    id: UUID
    device: str = Field(description="a coarse label from the browser's User-Agent, e.g. 'Firefox on Linux'")
    created_at: datetime = Field(description="when it was opened (login)")
    last_seen_at: datetime = Field(description="when it was last used, to the minute")
    expires_at: datetime = Field(description="when it ends at the latest (CONSENTRY_SESSION_TTL_SECONDS)")
    idle_expires_at: datetime = Field(
        description="when it ends unless used before (CONSENTRY_SESSION_IDLE_SECONDS after last_seen_at)"
    )
    current: bool = Field(description="true for the session this request was made with")

    @classmethod
    def of(cls, row: CustomerSession, *, current_id: UUID, idle: timedelta) -> ActiveSessionPublic:
        """The public shape of a session row."""
        return cls(
            id=row.id,
            device=row.device,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            idle_expires_at=min(row.expires_at, row.last_seen_at + idle),
            current=row.id == current_id,
        )


class ActiveSessionPage(BaseModel):
    """A page of active sessions, newest first."""

    items: list[ActiveSessionPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class SessionsEnded(BaseModel):
    """How many sessions were ended."""

    ended: int


class SecurityEventPublic(BaseModel):
    """One entry of the customer's security activity."""

    id: UUID
    kind: ActivityKind
    at: datetime
    device: str | None = Field(description="the coarse device it concerns, when there is one")
    detail: str | None = Field(description="a short qualifier: the sign-in method, the factor type")

    @classmethod
    def of(cls, event: SecurityEvent) -> SecurityEventPublic:
        """The public shape of an entry."""
        return cls(
            id=event.id,
            kind=ActivityKind(event.kind),
            at=event.created_at,
            device=event.device,
            detail=event.detail,
        )


class SecurityActivityPage(BaseModel):
    """A page of security activity, newest first."""

    items: list[SecurityEventPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class PasswordChange(BaseModel):
    """The current password and a new one (the same strength rules as at sign-up)."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_password: str = Field(
        max_length=1024,
        json_schema_extra={"minLength": passwords.MIN_LENGTH, "maxLength": passwords.MAX_LENGTH},
    )
