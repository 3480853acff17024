"""Shapes of grants in the brand and customer APIs."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from broker.consent.grants import effective_status
from broker.consent.models import Grant, GrantStatus
from broker.oauth.models import Brand


class GrantPublic(BaseModel):
    """A grant: who, which fields, what for, until when, and its state right now."""

    id: UUID
    brand_client_id: str
    brand_name: str
    offer_id: UUID
    fields: list[str]
    purpose: str
    status: GrantStatus
    created_at: datetime
    expires_at: datetime
    status_changed_at: datetime
    ended_by: str | None = Field(description="who ended the grant: customer or brand")

    @classmethod
    def of(cls, grant: Grant, brand: Brand, now: datetime) -> GrantPublic:
        """Build from the row; the status is the effective one (expiry is exact)."""
        return cls(
            id=grant.id,
            brand_client_id=brand.client_id,
            brand_name=brand.name,
            offer_id=grant.offer_id,
            fields=grant.fields,
            purpose=grant.purpose,
            status=effective_status(grant, now),
            created_at=grant.created_at,
            expires_at=grant.expires_at,
            status_changed_at=grant.status_changed_at,
            ended_by=grant.ended_by,
        )


class GrantPage(BaseModel):
    """One page of grants, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[GrantPublic]
    next_cursor: str | None


class GrantChange(BaseModel):
    """Narrow a grant: keep fewer fields, end it sooner. Never widen."""

    model_config = ConfigDict(extra="forbid")

    fields: list[str] | None = Field(
        default=None, min_length=1, max_length=30, description="the fields to keep"
    )
    expires_at: datetime | None = Field(default=None, description="a new, earlier expiry")


class ProfileRead(BaseModel):
    """What a brand reads: the granted fields only, under the customer's pairwise subject."""

    sub: str = Field(description="pairwise subject: stable for this brand, unlinkable across brands")
    grant_id: UUID
    purpose: str
    fields: dict[str, str | int | list[str]]
