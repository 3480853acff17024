"""What a consent receipt says: the fields of an ISO/IEC TS 27560 consent record, in DPV terms.

A receipt is a JSON object (the payload of a JWS, `typ` `consent-receipt+jwt`), format `version`
`consentry-receipt/1`:

- `receipt_id`, `iss` (the broker), `iat`, `issued_at`; `record_id` (the grant: one consent record,
  many receipts);
- `event` (`given`, `amended`, `renewed`, `withdrawn`, `revoked`, `expired`, `dispute-decided`),
  `event_time`, `event_by` (customer, brand, broker, auditor) and `state` with its DPV consent status
  (`ConsentGiven`, `ConsentWithdrawn`, `ConsentRevoked`, `ConsentExpired`);
- `subject`: the customer as the brand knows them, its pairwise `sub`; never an email, name or value;
- `controller`: the brand (id, name, client_id; `contact`, `privacy_policy` and `terms`: the first of
  the contacts and the policies it declared when it registered itself, else null, and the broker
  relays); `broker`: the intermediary that issued the receipt;
- `purposes` (each purpose consented to: our slug, the DPV purpose, the brand's own explanation and
  the fields that go with it; the first is the grant's `purpose`), `personal_data` (field names
  with DPV personal-data categories and sensitivity), `duration` (from, until), `retention_days`,
  `recipients`, `declared_value`, `collection_method` (the broker's OAuth consent screen) and `offer`
  (the exact offer version consented to);
- `audit`: the log's origin and the `index` and `leaf_hash` of the audit entry recording this event;
- for `dispute-decided` only, `decision`: the `escalation` and `obligation` ids, the `outcome`
  (`upheld` or `rejected`), `decided_by` (the auditor's id and name), `decided_at`, `redeliver_by`
  (upheld only) and `reasons_sha256`, the SHA-256 (hex) of the auditor's reasons in UTF-8;
- for `end-acknowledged` only, `acknowledgement`: the brand's statement that it stopped processing
  (`stopped_processing_at`) and will delete by `deletion_by`, when it said so (`acknowledged_at`,
  `acknowledge_by`, `on_time`), and how it is bound to the brand: `method` `signed` with the brand's
  compact JWS (`statement`) and the registered public key that signed it (`brand_key`), or `method`
  `client-authentication` with the id of the access token it came with (`token_id`).

The README maps these names onto ISO/IEC TS 27560 and the Kantara Consent Receipt 1.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final
from uuid import UUID

from broker.accounts.models import Auditor, Brand
from broker.audit.entries import Actor, decode, rfc3339
from broker.audit.log import QueuedEntry
from broker.audit.reader import b64
from broker.consent.models import EndAcknowledgement, Grant, GrantStatus, Offer
from broker.consent.notices import Notice, NoticeType
from broker.consent.purposes import DPV, PURPOSES, granted_purposes, offered_purposes
from broker.value.models import Escalation
from vault.fields import CATALOGUE, Sensitivity

__all__ = [
    "FORMAT",
    "RECEIPT_TYPE",
    "ReceiptEvent",
    "acknowledgement",
    "complete",
    "decision",
    "event_of",
    "receipt_terms",
]

FORMAT: Final = "consentry-receipt/1"
RECEIPT_TYPE: Final = "consent-receipt+jwt"  # JWS typ: never at+jwt, so no receipt passes as a token
PD: Final = "https://w3id.org/dpv/pd#"

# DPV personal-data categories (https://w3id.org/dpv/pd) for the catalogue's fields; a field without a
# fitting category carries none and its name is authoritative.
# fmt: off
DPV_CATEGORIES: Final[Mapping[str, str]] = MappingProxyType({
    "email": PD + "EmailAddress", "phone": PD + "TelephoneNumber",
    "given_name": PD + "Name", "family_name": PD + "Name", "birthdate": PD + "BirthDate",
    "postcode": PD + "PhysicalAddress", "city": PD + "PhysicalAddress", "country": PD + "Country",
    "household_size": PD + "FamilyStructure", "life_stage": PD + "FamilyStructure",
    "dietary": PD + "Preference", "interests": PD + "Interest", "preferred_channels": PD + "Preference",
    "age_band": PD + "AgeRange", "region": PD + "Location",
})
# fmt: on


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """What a receipt reports: the event's name and the state of consent after it (a DPV status)."""

    name: str
    state: str
    status: str


_EVENTS: Final[Mapping[NoticeType, ReceiptEvent]] = MappingProxyType(
    {
        NoticeType.GRANT_CREATED: ReceiptEvent("given", "given", DPV + "ConsentGiven"),
        NoticeType.GRANT_AMENDED: ReceiptEvent("amended", "given", DPV + "ConsentGiven"),
        NoticeType.GRANT_RENEWED: ReceiptEvent("renewed", "given", DPV + "ConsentGiven"),
        NoticeType.GRANT_REVOKED: ReceiptEvent("withdrawn", "withdrawn", DPV + "ConsentWithdrawn"),
        NoticeType.GRANT_EXPIRED: ReceiptEvent("expired", "expired", DPV + "ConsentExpired"),
    }
)
# Ended by someone other than the customer: DPV calls that revoked, not withdrawn.
_REVOKED = ReceiptEvent("revoked", "revoked", DPV + "ConsentRevoked")


# Events that change no consent (an auditor's decision, the brand's acknowledgement of the end): their
# receipt states the consent as it stands.
_STANDING: Final[Mapping[NoticeType, str]] = MappingProxyType(
    {NoticeType.DISPUTE_DECIDED: "dispute-decided", NoticeType.GRANT_END_ACKNOWLEDGED: "end-acknowledged"}
)


def _as_it_stands(name: str, grant: Grant) -> ReceiptEvent:
    if grant.status is GrantStatus.EXPIRED:
        return ReceiptEvent(name, "expired", DPV + "ConsentExpired")
    if grant.status is GrantStatus.REVOKED and grant.ended_by == Actor.CUSTOMER.value:
        return ReceiptEvent(name, "withdrawn", DPV + "ConsentWithdrawn")
    if grant.status is GrantStatus.REVOKED:
        return ReceiptEvent(name, "revoked", DPV + "ConsentRevoked")
    return ReceiptEvent(name, "given", DPV + "ConsentGiven")


def event_of(notice: Notice, grant: Grant) -> ReceiptEvent | None:
    """The receipt event a notice calls for; None for notices that change no consent (suspended…)
    and are neither an auditor's decision nor the brand's acknowledgement of the end."""
    if notice.type is NoticeType.GRANT_REVOKED and notice.actor is not Actor.CUSTOMER:
        return _REVOKED
    if notice.type in _STANDING:
        return _as_it_stands(_STANDING[notice.type], grant)
    return _EVENTS.get(notice.type)


def receipt_terms(
    *, receipt_id: UUID, issuer: str, event: ReceiptEvent, grant: Grant, offer: Offer, brand: Brand
) -> dict[str, Any]:
    """The receipt of `event` on `grant` as the terms stand now, before its audit entry has a place in
    the log (`complete` adds that, and the times)."""
    offered = {
        item["purpose"]: item["explanation"]
        for item in offered_purposes(offer.purpose, offer.purpose_explanation, grant.fields, offer.purposes)
    }
    purposes = [
        {
            "purpose": slug,
            "dpv": PURPOSES[slug].iri if slug in PURPOSES else None,
            "label": PURPOSES[slug].label if slug in PURPOSES else slug,
            "explanation": offered.get(slug, offer.purpose_explanation),
            "fields": fields,
        }
        for slug, fields in granted_purposes(grant.purpose, grant.fields, grant.purpose_fields).items()
    ]
    return {
        "version": FORMAT,
        "receipt_id": str(receipt_id),
        "iss": issuer,
        "record_id": str(grant.id),
        "event": event.name,
        "state": event.state,
        "state_dpv": event.status,
        "controller": {
            "id": str(brand.id),
            "name": brand.name,
            "client_id": brand.client_id,
            "contact": brand.contacts[0] if brand.contacts else None,
            "privacy_policy": brand.policy_uri,
            "terms": brand.tos_uri,
        },
        "broker": {"name": "Consentry", "url": issuer, "role": "data intermediary and receipt issuer"},
        "purposes": purposes,
        "personal_data": [_field(name) for name in grant.fields],
        "duration": {"from": rfc3339(grant.created_at), "until": rfc3339(grant.expires_at)},
        "retention_days": offer.retention_days,
        "recipients": list(offer.recipients),
        "declared_value": offer.value,
        "collection_method": _collection_method(grant.fields),
        "offer": {"id": str(offer.id), "version": offer.version, "title": offer.title},
    }


def decision(escalation: Escalation, auditor: Auditor) -> dict[str, Any]:
    """The `decision` member of a dispute's receipt: who decided what and when, and the SHA-256 of the
    auditor's reasons (the words are personal data, sealed; the hash binds them to the receipt)."""
    assert escalation.outcome is not None and escalation.decided_at is not None
    return {
        "escalation": str(escalation.id),
        "obligation": str(escalation.obligation_id),
        "outcome": escalation.outcome.value,
        "decided_by": {"id": str(auditor.id), "name": auditor.name, "role": "auditor"},
        "decided_at": rfc3339(escalation.decided_at),
        "redeliver_by": None if escalation.redeliver_by is None else rfc3339(escalation.redeliver_by),
        "reasons_sha256": escalation.reasons_sha256,
    }


def acknowledgement(row: EndAcknowledgement, grant: Grant) -> dict[str, Any]:
    """The `acknowledgement` member of an `end-acknowledged` receipt: what the brand stated, and how it
    is bound to the brand (its JWS and the registered key that signed it, or its access token's id)."""
    assert grant.end_ack_due_at is not None
    return {
        "acknowledged_at": rfc3339(row.acknowledged_at),
        "acknowledge_by": rfc3339(grant.end_ack_due_at),
        "on_time": row.acknowledged_at <= grant.end_ack_due_at,
        "stopped_processing_at": rfc3339(row.stopped_processing_at),
        "deletion_by": rfc3339(row.deletion_by),
        "method": row.method,
        "statement": row.statement,
        "brand_key": row.brand_key,
        "token_id": row.token_id,
    }


def complete(
    terms: Mapping[str, Any], *, entry: QueuedEntry, log_origin: str, issued_at: datetime
) -> dict[str, Any]:
    """`terms` with what is known once the audit entry is appended: its index and leaf hash, and the
    event's time, actor and subject exactly as the entry has them (an entry without a brand, an
    account's deletion, names no subject: nor does its receipt)."""
    assert entry.index is not None, "a receipt names an appended entry"
    logged = decode(entry.entry)
    return {
        **terms,
        "iat": int(issued_at.timestamp()),
        "issued_at": rfc3339(issued_at),
        "event_time": logged["at"],
        "event_by": logged["actor"],
        **({"subject": logged["subject"]} if "subject" in logged else {}),
        "audit": {"log": log_origin, "index": entry.index, "leaf_hash": b64(entry.leaf_hash)},
    }


def _collection_method(fields: Sequence[str]) -> dict[str, Any]:
    """How consent was given: on the broker's consent screen, with the separate explicit tick that
    special-category fields require (DPV: explicitly expressed consent) when the grant has any."""
    explicit = [
        n for n in fields if n in CATALOGUE and CATALOGUE[n].sensitivity is Sensitivity.SPECIAL_CATEGORY
    ]
    description = (
        "the customer chose the fields on the broker's OAuth consent screen "
        "(authorization code with PKCE) and approved"
    )
    if explicit:
        description += (
            f", ticking a separate box to agree explicitly to the sensitive ones ({', '.join(explicit)})"
        )
    return {
        "method": "oauth-consent-screen",
        "description": description,
        "dpv": DPV + ("ExplicitlyExpressedConsent" if explicit else "ExpressedConsent"),
    }


def _field(name: str) -> dict[str, Any]:
    spec = CATALOGUE.get(name)
    return {
        "field": name,
        "title": spec.title if spec else name,
        "dpv": DPV_CATEGORIES.get(name),
        "sensitivity": spec.sensitivity.value if spec else None,
    }
