"""What an audit entry says, and its one byte form: RFC 8785 (JCS) canonical JSON.

An entry is an object with `v` (format version), `kind`, `at` (RFC 3339 UTC, microseconds, `Z`),
`actor`, an optional `request_id`, and identifiers: `brand`, `subject` (the customer's pairwise
subject for that brand, never the account id), `grant`, `offer`, `family`; `fields` (names), `purpose`,
`expires_at`. Absent values are left out, never null. Entries never hold a field value, an email, a
name or a client address: the canonical form of each kind is fixed by `Event`'s typed attributes.

Kinds (`Kind`) name what happened; the offline auditor's `check-reads` replays `profile.read`
against the `grant.*` entries before it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import rfc8785

__all__ = ["FORMAT_VERSION", "Actor", "Event", "Kind", "decode", "rfc3339"]

FORMAT_VERSION = 1


class Kind(StrEnum):
    """Every kind of audit entry."""

    PROFILE_READ = "profile.read"
    PROFILE_READ_REFUSED = "profile.read_refused"  # a read for a purpose the grant does not cover
    OFFER_PUBLISHED = "offer.published"
    OFFER_WITHDRAWN = "offer.withdrawn"
    OFFER_LISTED = "offer.listed"  # a version entered the customers' offer directory
    OFFER_UNLISTED = "offer.unlisted"  # an offer left it: reason "unlisted" or "withdrawn"
    GRANT_CREATED = "grant.created"
    GRANT_AMENDED = "grant.amended"
    GRANT_REVOKED = "grant.revoked"
    GRANT_EXPIRED = "grant.expired"
    GRANT_SUSPENDED = "grant.suspended"
    GRANT_RESUMED = "grant.resumed"
    GRANT_RENEWED = "grant.renewed"
    TOKEN_FAMILY_REVOKED = "token_family.revoked"  # noqa: S105 (a name, not a secret)
    ACCOUNT_DELETED = "account.deleted"
    KEY_ROTATED = "key.rotated"
    VALUE_CREATED = "value.created"
    VALUE_DELIVERED = "value.delivered"
    VALUE_CONFIRMED = "value.confirmed"
    VALUE_DISPUTED = "value.disputed"
    VALUE_DISPUTE_ANSWERED = "value.dispute_answered"
    VALUE_DISPUTE_WITHDRAWN = "value.dispute_withdrawn"
    VALUE_OVERDUE = "value.overdue"
    VALUE_CANCELLED = "value.cancelled"
    DELETION_ATTESTED = "deletion.attested"
    DELETION_OVERDUE = "deletion.overdue"
    CLIENT_REGISTERED = "client.registered"
    CLIENT_UPDATED = "client.updated"
    CLIENT_DELETED = "client.deleted"
    VALUE_ANSWER_REJECTED = "value.answer_rejected"
    DISPUTE_ESCALATED = "dispute.escalated"
    DISPUTE_SHARED = "dispute.shared"  # the customer agreed to show the file to the auditors
    DISPUTE_DECLINED = "dispute.declined"
    DISPUTE_FILE_READ = "dispute.file_read"  # an auditor opened the file: an access to the customer's data
    DISPUTE_DECIDED = "dispute.decided"
    GRANT_END_ACKNOWLEDGED = "grant.end_acknowledged"
    PREFERENCES_CHANGED = "preferences.changed"  # the customer set them: one entry per live grant
    PREFERENCES_READ = "preferences.read"  # a brand read them under a live grant
    CONTACT_REPORTED = "contact.reported"  # a brand reported contacting the customer under a grant
    FEEDBACK_GIVEN = "feedback.given"  # the customer rated the grant's brand (never the rating)
    INTENT_PUBLISHED = "intent.published"  # a customer published an intent (nothing of it, nor who)
    INTENT_WITHDRAWN = "intent.withdrawn"  # a customer withdrew one
    INTENT_ANSWERED = "intent.answered"  # a brand answered one with an offer (`brand`, `offer`)
    CUSTODY_CHANGED = "custody.changed"  # the customer moved the profile's key: `custody` customer|broker
    GRANT_SEALED = "grant.sealed"  # the browser sealed a grant's fields to its brand (`version`, `purposes`)
    GRANT_SEAL_DELETED = "grant.seal_deleted"  # a sealed copy was deleted (`reason`: revoked, expired, …)


class Actor(StrEnum):
    """Who caused it: the customer, the brand, the broker (expiry, token reuse), an operator (CLI), an
    auditor (a dispute's decision)."""

    CUSTOMER = "customer"
    BRAND = "brand"
    BROKER = "broker"
    OPERATOR = "operator"
    AUDITOR = "auditor"


_PLAIN = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(document: dict[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of an entry's document.

    An entry holds ASCII keys and strings, integers and lists of strings only; for those, the standard
    library's sorted, compact, non-ASCII-preserving JSON is byte for byte RFC 8785 (same key order,
    same escapes), at a fraction of the cost of the general algorithm, which every audited read pays.
    Anything else (a float, an integer past 2**53) goes to the `rfc8785` library.
    `tests/broker/audit/test_entries.py` checks the two agree."""
    if all(key.isascii() and _plain(value) for key, value in document.items()):
        return _PLAIN.encode(document).encode()
    return rfc8785.dumps(document)


def _plain(value: object) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, bool | int):
        return isinstance(value, bool) or -(2**53) < value < 2**53
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def rfc3339(moment: datetime) -> str:
    """`2026-11-23T10:00:00.123456Z`: UTC, always with microseconds, so equal instants serialise alike."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One audit entry before serialisation. Only these attributes can reach the log."""

    kind: Kind
    at: datetime
    actor: Actor
    request_id: str | None = None
    brand: UUID | None = None
    subject: str | None = None
    grant: UUID | None = None
    offer: UUID | None = None
    family: UUID | None = None
    fields: Sequence[str] | None = None
    purpose: str | None = None
    # grant.created/amended/renewed of several purposes: which fields go with which ({purpose: [fields]})
    purposes: Mapping[str, Sequence[str]] | None = None
    expires_at: datetime | None = None
    supersedes: UUID | None = None  # offer.published: the version this one replaces
    reason: str | None = None  # token_family.revoked: why (a fixed slug, never free text)
    key: str | None = None  # key.rotated: which key ("kek", "token-signing")
    version: str | None = None  # key.rotated: the new key's version or id; grant.sealed: the copy's
    obligation: UUID | None = None  # value.*: the obligation
    delivery: UUID | None = None  # value.delivered
    schedule: str | None = None  # value.created: "once" or "monthly"
    period: int | None = None  # value.created: the month of a recurring value, from 0
    value_kind: str | None = None  # value.created, value.delivered: voucher, discount, points, service, cash
    amount: str | None = None  # exact decimal string, e.g. "10.00"
    currency: str | None = None  # ISO 4217
    due_at: datetime | None = None  # value.*: when the obligation is due; deletion.*: the deletion
    outcome: str | None = (
        None  # deletion.attested: "deleted" or "de-identified"; dispute.decided: "upheld" or "rejected"
    )
    completed_at: datetime | None = None  # deletion.attested: when the brand says it was done
    escalation: UUID | None = None  # dispute.*: the escalation
    shared: bool | None = None  # dispute.escalated: whether the customer shared the file with it
    auditor: UUID | None = None  # dispute.decided, dispute.file_read: the auditor
    reasons_sha256: str | None = None  # dispute.decided: SHA-256 (hex) of the auditor's reasons, sealed
    redeliver_by: datetime | None = None  # dispute.decided (upheld): the brand's deadline to deliver again
    stopped_at: datetime | None = None  # grant.end_acknowledged: when the brand says it stopped processing
    deletion_by: datetime | None = None  # grant.end_acknowledged: when it says deletion will follow
    method: str | None = None  # grant.end_acknowledged: "signed" (a JWS) or "client-authentication"
    custody: str | None = None  # custody.changed: who holds the profile's key now, "customer" or "broker"

    def canonical(self) -> bytes:
        """The entry's bytes: RFC 8785 canonical JSON of the non-empty attributes."""
        document: dict[str, Any] = {"v": FORMAT_VERSION}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, datetime):
                value = rfc3339(value)
            elif isinstance(value, UUID | StrEnum):
                value = str(value)
            elif name == "fields":
                value = list(value)
            elif name == "purposes":
                value = {slug: list(used) for slug, used in value.items()}
            document[name] = value
        return canonical_json(document)


def decode(entry: bytes) -> dict[str, Any]:
    """The JSON object behind an entry's bytes."""
    document: dict[str, Any] = json.loads(entry)
    return document
