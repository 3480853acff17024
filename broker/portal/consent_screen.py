"""The consent screen's words and layout: the page `broker.portal.authorize` renders from the use case's
`ConsentScreen` (the data) and `Retry` (why the form is shown again)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from broker.consent.directory import describe_value
from broker.consent.purposes import describe_purpose
from broker.usecases.consent_decision import ConsentScreen, Retry
from broker.value.record import TrackRecord
from broker.web.pages import CSRF_FIELD

# The consent form's own fields: never part of the authorization request it re-sends.
FORM_ONLY = frozenset({CSRF_FIELD, "decision", "fields", "special_consent", "grant_id", "sealed"})

UNCONFIRMED_EMAIL = (
    "This brand needs your email address, which you have not confirmed yet: use the code we emailed "
    "you (or ask for a new one below), then come back to this page."
)
RETRY_MESSAGES: Mapping[Retry, str] = {
    Retry.NO_CHOICE: "Choose whether to share or not.",
    Retry.EMAIL_UNCONFIRMED: UNCONFIRMED_EMAIL,
    Retry.SPECIAL_CONSENT_MISSING: (
        "Sensitive data needs your explicit agreement: tick the box, or untick those fields."
    ),
    Retry.NO_PURPOSE: "Tick each purpose you agree to (at least one), or choose not to share.",
    Retry.REQUIRED_UNPURPOSED: (
        "A field this offer requires is used only for a purpose you did not tick: agree to that purpose, "
        "or choose not to share."
    ),
    Retry.UNSEALED: (
        "Your profile is in your custody: unlock it with your passkey so that your browser seals what you "
        "share to this brand, then share again."
    ),
    Retry.UNSEALABLE: (
        "Your profile is in your custody, and this brand cannot receive data sealed to it (it registered "
        "no encryption key): you cannot share with it."
    ),
}


def consent_context(
    screen: ConsentScreen, *, retry: Retry | None = None, held: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The consent page's template context; `retry` says why the form is shown again; `held`: a
    profile in self-custody, with what the browser needs to seal the grant (`Custody.sealing`)."""
    purpose = describe_purpose(screen.offer.purpose)
    offer = {
        "title": screen.offer.title,
        "description": screen.offer.description,
        "purpose_label": purpose.label,
        "purpose_explanation": screen.offer.purpose_explanation,
        "grant_duration_days": screen.offer.grant_duration_days,
        "retention_days": screen.offer.retention_days,
        "recipients": screen.offer.recipients,
        "value_text": describe_value(screen.offer.value),
    }
    special = [f["title"] for f in screen.fields if f["special"]]
    params = [(k, v) for k, v in screen.params if k not in FORM_ONLY]
    return {
        "waits_for_email": any(f["unconfirmed"] and f["required"] for f in screen.fields),
        "return_to": "/oauth/authorize?" + urlencode(params),
        "email_unconfirmed": any(f["unconfirmed"] for f in screen.fields),
        "brand": screen.brand,
        "contacts": screen.contacts,
        "policy_uri": screen.policy_uri,
        "tos_uri": screen.tos_uri,
        "offer": offer,
        "fields": screen.fields,
        "params": params,
        "special": special,
        "message": None if retry is None else RETRY_MESSAGES[retry],
        "record_text": f"{describe_record(screen.record, screen.brand)} Customers: {screen.ratings.words()}.",
        "purposes": screen.purposes,
        "held": held is not None,
        "sealable": held is None or bool(held["keys"]),
        "held_consent": None if held is None else json.dumps(held, separators=(",", ":"), default=str),
    }


def describe_record(record: TrackRecord, brand: str) -> str:
    """The brand's 12-month record in plain words, e.g. 'In the last 12 months: 18 of 20 values
    delivered on time (90%); 1 dispute upheld against Demo Grocer by an auditor.'"""
    if record.fell_due == 0:
        delivered = "nothing it owed has fallen due yet"
    else:
        delivered = (
            f"{record.on_time} of {record.fell_due} values delivered on time ({record.on_time_percent}%)"
        )
    upheld = record.disputes_upheld
    against = "no dispute" if upheld == 0 else f"{upheld} dispute{'s' if upheld > 1 else ''}"
    return f"In the last 12 months: {delivered}; {against} upheld against {brand} by an auditor."
