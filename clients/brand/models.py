"""The typed answers of Consentry's API, as a brand sees them (pydantic models; unknown members ignored,
so a newer server does not break an older SDK)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccessLogPage",
    "Contact",
    "DeletionAttestation",
    "Delivery",
    "Dispute",
    "Grant",
    "GrantPage",
    "LoggedEntry",
    "Obligation",
    "Offer",
    "OfferPage",
    "Preferences",
    "PreferencesRead",
    "Profile",
    "QuietHours",
    "Rating",
    "RatingPage",
    "ServerMetadata",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ServerMetadata(_Answer):
    """RFC 8414 authorization server metadata: where the endpoints are and what they support."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    jwks_uri: str | None = None
    scopes_supported: list[str] = Field(default_factory=list)
    code_challenge_methods_supported: list[str] = Field(default_factory=list)
    authorization_response_iss_parameter_supported: bool = False
    consentry_api_versions: list[str] = Field(default_factory=list)  # Consentry's own member


class Profile(_Answer):
    """`GET /v1/profile`: the granted fields only, under the customer's pairwise subject. With `email`
    comes `email_verified`; the address itself only once its owner confirmed it."""

    sub: str
    grant_id: UUID
    purpose: str
    fields: dict[str, bool | str | int | list[str]]
    # A self-custody grant: the fields sealed to the brand (a JWE, `clients.brand.sealed`), which the
    # clients open; `grant_version` is the version of the grant the broker holds a copy of.
    sealed: str | None = None
    grant_version: int | None = None


class QuietHours(_Answer):
    """Hours in which the customer may not be contacted, every day, in their time zone (the window may
    run past midnight: 21:00 to 08:00)."""

    start: str
    end: str
    time_zone: str


class Preferences(_Answer):
    """What the customer asks of every brand they share with: the channels it may use (none: no
    contact at all), quiet hours, a cap on contacts per calendar month (None: no cap), topics never to
    contact them about, and whether their data may be sold or shared. Version 0: never set."""

    channels: list[str]
    quiet_hours: QuietHours | None
    max_contacts_per_month: int | None
    avoid_topics: list[str]
    do_not_sell_or_share: bool
    version: int
    updated_at: datetime | None


class PreferencesRead(_Answer):
    """`GET /v1/preferences`: the preferences of the customer behind a grant."""

    sub: str
    grant_id: UUID
    preferences: Preferences


class Contact(_Answer):
    """A contact you reported, and what of the customer's preferences it broke (`channel`,
    `quiet_hours`, `over_cap`, `topic`), judged by the preferences in force when you made it."""

    id: UUID
    grant_id: UUID
    channel: str
    purpose: str
    contacted_at: datetime
    reported_at: datetime
    breaches: list[str]
    preferences_version: int


class Offer(_Answer):
    """One offer version."""

    id: UUID
    lineage_id: UUID
    version: int
    status: str
    title: str
    description: str
    required_fields: list[str]
    optional_fields: list[str]
    purpose: str
    purpose_explanation: str
    purpose_iri: str
    purposes: list[dict[str, Any]] = []  # each purpose: {purpose, explanation, fields}
    grant_duration_days: int
    retention_days: int
    recipients: list[str]
    value: dict[str, Any]
    scopes: list[str]
    created_at: datetime
    withdrawn_at: datetime | None
    listed: bool = False  # shown in the customers' offer directory


class Rating(_Answer):
    """A customer's rating of your brand: no customer, no grant, the day only; their words only if they
    chose to share them."""

    rating: int
    occasion: str  # "delivery" or "grant_end"
    rated_on: date
    text: str | None


class RatingPage(_Answer):
    """A page of ratings, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[Rating]
    next_cursor: str | None


class OfferPage(_Answer):
    """A page of offers, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[Offer]
    next_cursor: str | None


class Grant(_Answer):
    """A customer's grant to this brand and its state right now."""

    id: UUID
    brand_client_id: str
    brand_name: str
    offer_id: UUID
    fields: list[str]
    purpose: str
    status: str
    created_at: datetime
    expires_at: datetime
    status_changed_at: datetime
    ended_by: str | None
    account_deleted: bool = False  # the customer deleted their account: value and deletion duty stay
    decline_by: datetime | None = None  # started in the directory: decline_grant works until then
    declined_at: datetime | None = None


class GrantTicket(_Answer):
    """A grant ticket for a grant the customer started in the directory: `exchange_grant_ticket`."""

    grant_ticket: str
    expires_at: datetime


class GrantPage(_Answer):
    """A page of grants, newest first; pass `next_cursor` as `cursor` for the next."""

    items: list[Grant]
    next_cursor: str | None


class Delivery(_Answer):
    """What the brand delivered (the redemption itself is shown to the customer only)."""

    id: UUID
    kind: str
    amount: str | None
    currency: str | None
    delivered_at: datetime


class Dispute(_Answer):
    """A customer's dispute of a delivery, and the brand's answer."""

    disputed_at: datetime
    reason: str | None
    answered_at: datetime | None
    answer: str | None
    answer_rejected_at: datetime | None = None  # the customer rejected the answer: either side may escalate


class Decision(_Answer):
    """An auditor's decision on an escalated dispute."""

    outcome: Literal["upheld", "rejected"]
    decided_at: datetime
    decided_by: UUID
    reasons: str | None
    reasons_sha256: str
    redeliver_by: datetime | None  # upheld: deliver again by then, or reads are suspended
    receipt_id: UUID | None


class Escalation(_Answer):
    """A dispute put before the auditors, and where it stands."""

    id: UUID
    obligation_id: UUID
    grant_id: UUID
    escalated_by: Literal["customer", "brand"]
    escalated_at: datetime
    status: Literal["awaiting_customer", "open", "decided", "declined", "withdrawn"]
    status_since: datetime
    shared_at: datetime | None
    decision: Decision | None


class Obligation(_Answer):
    """One value a grant owes, and where it stands."""

    id: UUID
    grant_id: UUID
    schedule: str
    period: int
    description: str
    kind: str
    amount: str | None
    currency: str | None
    unit: str | None
    due_at: datetime
    state: Literal["owed", "overdue", "delivered", "confirmed", "disputed", "cancelled"]
    state_since: datetime
    delivery: Delivery | None
    dispute: Dispute | None
    escalation: Escalation | None = None  # the latest escalation of a dispute to the auditors
    account_deleted: bool = False  # still owed all the same; can be delivered


class Acknowledgement(_Answer):
    """The brand's acknowledgement that a grant ended, as the broker recorded it."""

    grant_id: UUID
    acknowledged_at: datetime
    acknowledge_by: datetime
    on_time: bool
    stopped_processing_at: datetime
    deletion_by: datetime
    method: Literal["signed", "client-authentication"]
    statement: str | None
    receipt_id: UUID


class DeletionAttestation(_Answer):
    """The brand's statement that it deleted (or de-identified) a grant's data, as the broker recorded it."""

    grant_id: UUID
    outcome: Literal["deleted", "de-identified"]
    completed_at: datetime
    attested_at: datetime
    deletion_due_at: datetime | None
    on_time: bool


class LoggedEntry(_Answer):
    """One audit log entry about this brand, with its inclusion proof (base64) to the page's checkpoint."""

    index: int
    kind: str
    at: datetime
    event: dict[str, Any]
    entry: str
    leaf_hash: str
    inclusion_proof: list[str]


class AccessLogPage(_Answer):
    """A page of the brand's audit log entries, newest first, with the checkpoint they prove against."""

    checkpoint: str
    verifier_key: str
    tree_size: int
    items: list[LoggedEntry]
    next_cursor: str | None
