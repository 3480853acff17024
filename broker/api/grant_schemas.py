"""Shapes of grants in the brand and customer APIs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import to_json

from broker.consent.models import Grant, GrantStatus
from broker.consent.retention import AcknowledgementStatus, DeletionStatus, Outcome, on_time
from broker.usecases.custody import SealIn
from broker.usecases.grant_views import GrantView, GrantViewPage


class DeletionPublic(BaseModel):
    """Where the deletion of the grant's data by the brand stands."""

    status: DeletionStatus = Field(
        description="not-due: the grant is live; due: it ended and the brand must delete by "
        "deletion_due_at; overdue: deletion_due_at passed without an attestation; attested: the brand "
        "attested the deletion"
    )
    attested_at: datetime | None = Field(description="when the brand attested (null until it does)")
    outcome: Outcome | None = Field(description="deleted or de-identified, as attested")
    completed_at: datetime | None = Field(description="when the brand says the deletion was done")


class RenewalPublic(BaseModel):
    """Renewal: when the customer is prompted, and whether they may renew now."""

    window_opens_at: datetime | None = Field(
        description="from when the customer is prompted and may renew: CONSENTRY_RENEWAL_WINDOW_DAYS "
        "before expires_at or reconfirm_by, whichever comes first; null once the grant ended"
    )
    reconfirm_by: datetime | None = Field(
        description="grants longer than 90 days: the customer must reconfirm (renew) by then, every 90 "
        "days, or reads are refused; null for shorter grants and ended ones"
    )
    can_renew: bool = Field(
        description="the customer may renew now (POST /v1/me/grants/{id}/renewal): the window is open "
        "and the offer version is still current"
    )
    prompt: bool = Field(
        description="show the renewal prompt: the grant is live and the window is open (even if the offer "
        "changed: then the customer is asked to accept the new offer)"
    )


class AcknowledgementStatePublic(BaseModel):
    """Whether the brand acknowledged the grant's end (it stopped processing; deletion will follow)."""

    status: AcknowledgementStatus = Field(
        description="not-due: the grant is live; awaiting: due by acknowledge_by; overdue: past it without "
        "one; acknowledged; not-required: the grant ended before brands had to acknowledge"
    )
    acknowledge_by: datetime | None = Field(description="the grant's end plus the acknowledgement window")
    acknowledged_at: datetime | None


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
    deletion_due_at: datetime | None = Field(
        description="when the brand must have deleted the data: the grant's end plus the offer's "
        "retention_days; null while the grant is live"
    )
    deletion: DeletionPublic
    acknowledgement: AcknowledgementStatePublic
    renewal: RenewalPublic
    decline_by: datetime | None = Field(
        default=None,
        description="a grant the customer started in the offer directory: its brand may decline it until "
        "then, before any read (POST /v1/grants/{id}/decline); null for a grant of an authorization request",
    )
    declined_at: datetime | None = Field(default=None, description="when the brand declined it")
    account_deleted: bool = Field(
        default=False,
        description="the customer deleted their account: the grant was revoked, and what the brand owes "
        "and its deletion duty stay",
    )

    @classmethod
    def of(cls, view: GrantView) -> GrantPublic:
        """The public shape of a grant view (its status the effective one: expiry is exact)."""
        return cls.model_validate(cls.plain(view))

    @staticmethod
    def plain(view: GrantView) -> dict[str, Any]:
        """The public shape of a grant view as plain values, in the model's field order: what
        `GrantPage.json_of` serialises without building the model (the tests hold the two to the same
        bytes)."""
        grant, deletion, renewal, ack = view.grant, view.deletion, view.renewal, view.acknowledgement
        return {
            "id": grant.id,
            "brand_client_id": view.brand.client_id,
            "brand_name": view.brand.name,
            "offer_id": grant.offer_id,
            "fields": grant.fields,
            "purpose": grant.purpose,
            "status": view.status,
            "created_at": grant.created_at,
            "expires_at": grant.expires_at,
            "status_changed_at": view.status_changed_at,
            "ended_by": grant.ended_by,
            "deletion_due_at": view.deletion_due_at,
            "deletion": {
                "status": deletion.status,
                "attested_at": deletion.attested_at,
                "outcome": deletion.outcome,
                "completed_at": deletion.completed_at,
            },
            "acknowledgement": {
                "status": ack.status,
                "acknowledge_by": ack.acknowledge_by,
                "acknowledged_at": ack.acknowledged_at,
            },
            "renewal": {
                "window_opens_at": renewal.window_opens_at,
                "reconfirm_by": renewal.reconfirm_by,
                "can_renew": renewal.can_renew,
                "prompt": renewal.prompt,
            },
            "decline_by": grant.decline_by,
            "declined_at": grant.declined_at,
            "account_deleted": view.account_deleted,
        }


class GrantPage(BaseModel):
    """One page of grants, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[GrantPublic]
    next_cursor: str | None

    @classmethod
    def of(cls, page: GrantViewPage) -> GrantPage:
        """The public shape of a page of grant views."""
        return cls.model_validate(cls._plain(page))

    @classmethod
    def json_of(cls, page: GrantViewPage) -> bytes:
        """`of(page)`'s JSON, without building a model per grant: pydantic's serialisers on plain values
        write the same bytes (UUIDs, UTC datetimes, enums by value) in about half the time of a page of
        20 built unvalidated (`tests/broker/api/test_grant_schemas.py` holds them to the same bytes)."""
        return to_json(cls._plain(page))

    @staticmethod
    def _plain(page: GrantViewPage) -> dict[str, Any]:
        return {"items": [GrantPublic.plain(view) for view in page.items], "next_cursor": page.next_cursor}


class GrantChange(BaseModel):
    """Narrow a grant: keep fewer fields, end it sooner. Never widen."""

    model_config = ConfigDict(extra="forbid")

    fields: list[str] | None = Field(
        default=None, min_length=1, max_length=30, description="the fields to keep"
    )
    expires_at: datetime | None = Field(default=None, description="a new, earlier expiry")
    sealed: SealIn | None = Field(
        default=None,
        description="a self-custody grant whose fields are dropped: its fields sealed anew to its brand "
        "without them (`/v1/me/custody` gives what sealing takes); leave it out otherwise",
    )


class ProfileRead(BaseModel):
    """What a brand reads: the granted fields only, under the customer's pairwise subject."""

    sub: str = Field(description="pairwise subject: stable for this brand, unlinkable across brands")
    grant_id: UUID
    purpose: str
    fields: dict[str, bool | str | int | list[str]] = Field(
        description="the granted fields; with `email`, `email_verified` (the email itself only once "
        "its owner confirmed it). Empty for a self-custody grant: see `sealed`"
    )
    sealed: str | None = Field(
        default=None,
        description="a self-custody grant's fields, sealed by the customer's browser to one of the "
        "brand's encryption keys: a compact JWE (ECDH-ES, A256GCM, cty consentry-grant+json) that "
        "only the brand can open; the SDK opens it (`decryption_keys`). Null for any other grant",
    )
    grant_version: int | None = Field(
        default=None,
        description="the version of the sealed copy (one more each time the customer's browser seals "
        "the grant again); a JWE naming an older version must be refused",
    )


_Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class DeletionIn(BaseModel):
    """The brand attests that it deleted, or de-identified, what the grant gave it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    outcome: Outcome
    """deleted, or de-identified (no longer linkable to the customer)."""
    completed_at: AwareDatetime
    """When it was done (RFC 3339 with an offset): not before the grant ended, not in the future."""
    note: _Note | None = None
    """Optional, at most 500 characters: how it was done. Sealed in the customer's vault."""


class DeletionAttestation(BaseModel):
    """A brand's deletion attestation for one grant."""

    grant_id: UUID
    outcome: Outcome
    completed_at: datetime
    attested_at: datetime
    deletion_due_at: datetime
    on_time: bool = Field(description="attested no later than deletion_due_at")

    @classmethod
    def of(cls, grant: Grant) -> DeletionAttestation:
        """From an attested grant's row."""
        return cls.model_validate(
            {
                "grant_id": grant.id,
                "outcome": grant.deletion_outcome,
                "completed_at": grant.deletion_completed_at,
                "attested_at": grant.deletion_attested_at,
                "deletion_due_at": grant.deletion_due_at,
                "on_time": on_time(grant),
            }
        )
