"""The consent step of an authorization request: what the screen shows, and what the answer does.

The screen's data (the brand, the offer, the customer's current values of the fields asked for) and
the decision are here; their words and layout are the portal's (`broker.portal.consent_screen`).

It works on a `ConsentRequest` (plain data that `broker.oauth.authorize` builds from Authlib's view
of the request): the customer's current values come from the vault, and an approval creates the
grant through `broker.consent.grants`; turning the answer into a redirect is oauth's again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlmodel import Session, col, select

from broker.accounts.models import Brand
from broker.consent.grants import Grants
from broker.consent.models import Grant, GrantStatus, Offer
from broker.consent.purposes import PURPOSES
from broker.consent.renewal import reconfirm_by
from broker.oauth.authorize import ConsentRequest
from broker.oauth.clients import origin_of
from broker.value.record import NO_RECORD, TrackRecord, track_record
from broker.voice.feedback import NO_RATINGS, RatingRecord, rating_records
from vault.fields import CATALOGUE, JSONValue, Sensitivity
from vault.profile import Vault


class Retry(StrEnum):
    """Why the consent form is shown again instead of being answered."""

    NO_CHOICE = "no_choice"  # neither 'share' nor 'don't share'
    EMAIL_UNCONFIRMED = "email_unconfirmed"  # the offer requires an email the customer has not confirmed
    SPECIAL_CONSENT_MISSING = "special_consent_missing"  # special categories kept without their own tick
    NO_PURPOSE = "no_purpose"  # an offer of several purposes, and none of them agreed to
    REQUIRED_UNPURPOSED = "required_unpurposed"  # a required field left in no purpose agreed to
    UNSEALED = "unsealed"  # a profile in self-custody, and the browser did not seal what is shared
    UNSEALABLE = "unsealable"  # a profile in self-custody, and the brand has no encryption key


def shown_value(value: JSONValue | None) -> str | None:
    """A profile value as it would be shared, in one line (a list's items joined); None when unset."""
    if value is None:
        return None
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


@dataclass(frozen=True, slots=True)
class ConsentScreen:
    """Everything the consent page shows, computed from the validated request."""

    brand: str
    offer: Offer
    fields: list[dict[str, Any]]
    params: list[tuple[str, str]]
    form_targets: tuple[str, ...]
    # What the brand declared when it registered itself (RFC 7591): whom to ask, and its policies.
    contacts: tuple[str, ...] = ()
    policy_uri: str | None = None
    tos_uri: str | None = None
    # Its record of delivering what it declared, over the last 12 months (`broker.value.disputes`).
    record: TrackRecord = NO_RECORD
    # Its customers' ratings (`broker.voice.feedback`): the mean shows from 5 ratings on.
    ratings: RatingRecord = NO_RATINGS
    # An offer of several purposes: each, with its explanation and the requested fields it uses, for the
    # customer to agree to one by one (`slug`, `label`, `explanation`, `fields` as titles). Empty: one.
    purposes: tuple[dict[str, Any], ...] = ()

    @classmethod
    def build(
        cls,
        request: ConsentRequest,
        vault: Vault,
        session: Session,
        *,
        customer_id: UUID,
        now: datetime,
        email_verified: bool = True,
        held: bool = False,
    ) -> ConsentScreen:
        """Read the customer's current values of the requested fields and lay the screen out; an
        unconfirmed email is shown as such, unticked, and cannot be shared. `held`: the profile is in
        self-custody, so only the values the broker keeps are shown (the browser holds the rest)."""
        offer, names = request.offer, list(request.fields)
        values = vault.read(session, customer_id, names, omit_held=held)
        fields = [
            {
                "name": name,
                "title": CATALOGUE[name].title,
                "value": shown_value(values.get(name)),
                "required": name in offer.required_fields,
                "special": CATALOGUE[name].sensitivity is Sensitivity.SPECIAL_CATEGORY,
                "unconfirmed": name == "email" and not email_verified,
                "checked": name != "email" or email_verified,
                "held": held and name != "email",
            }
            for name in names
        ]
        params = list(request.params)
        brand = session.get(Brand, offer.brand_id)
        declared = (tuple(brand.contacts), brand.policy_uri, brand.tos_uri) if brand else ((), None, None)
        record = track_record(session, [offer.brand_id], now).get(offer.brand_id, NO_RECORD)
        ratings = rating_records(session, [offer.brand_id]).get(offer.brand_id, NO_RATINGS)
        targets = (origin_of(request.redirect_uri),)
        purposes = tuple(
            {
                "slug": slug,
                "label": PURPOSES[slug].label,
                "explanation": explanation,
                "fields": [CATALOGUE[name].title for name in used],
            }
            for slug, explanation, used in _asked_purposes(offer, names)
        )
        return cls(
            request.brand_name,
            offer,
            fields,
            params,
            targets,
            *declared,
            record=record,
            ratings=ratings,
            purposes=purposes,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of the consent form: the grant made (a code is issued for it), none (denied), or a
    retry (the screen again, saying why)."""

    grant: Grant | None
    retry: Retry | None = None


def decide(
    grants: Grants,
    session: Session,
    request: ConsentRequest,
    *,
    customer_id: UUID,
    form: Mapping[str, list[str]],
    email_verified: bool = True,
    decline_by: datetime | None = None,
    grant_id: UUID | None = None,
) -> Decision:
    """Create the grant with exactly the fields kept, or deny; special categories need their own tick.
    An unconfirmed email is never granted: left out when optional, and when required the consent
    waits until the address is confirmed. `decline_by`: a grant the customer starts in the directory
    (`broker.usecases.directory`), which its brand may decline until then."""
    offer, names = request.offer, request.fields
    decision = (form.get("decision") or [""])[0]
    if decision == "deny":
        return Decision(None)
    if decision != "approve":
        return Decision(None, retry=Retry.NO_CHOICE)
    if not email_verified and "email" in offer.required_fields and "email" in names:
        return Decision(None, retry=Retry.EMAIL_UNCONFIRMED)
    kept = set(form.get("fields", [])) | set(offer.required_fields)
    selected = [name for name in names if name in kept and (name != "email" or email_verified)]
    purposes = None
    if offer.purposes:  # several purposes: each agreed to apart, and a field goes only with those
        agreed = set(form.get("purposes", []))
        purposes = {
            slug: [name for name in used if name in selected]
            for slug, _, used in _asked_purposes(offer, names)
            if slug in agreed
        }
        purposes = {slug: used for slug, used in purposes.items() if used}
        if not purposes:
            return Decision(None, retry=Retry.NO_PURPOSE)
        allowed = {name for used in purposes.values() for name in used}
        if any(name in names and name not in allowed for name in offer.required_fields):
            return Decision(None, retry=Retry.REQUIRED_UNPURPOSED)
        selected = [name for name in selected if name in allowed]
    special = [n for n in selected if CATALOGUE[n].sensitivity is Sensitivity.SPECIAL_CATEGORY]
    if special and (form.get("special_consent") or [""])[0] != "yes":
        return Decision(None, retry=Retry.SPECIAL_CONSENT_MISSING)
    grant = grants.create(
        session,
        customer_id=customer_id,
        offer=offer,
        fields=selected,
        purposes=purposes,
        decline_by=decline_by,
        grant_id=grant_id,
    )
    return Decision(grant)


def _asked_purposes(offer: Offer, names: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """An offer of several purposes: each purpose, its explanation and the requested fields it uses
    (purposes that use none of them are left out). Empty for an offer of one purpose."""
    found = []
    for item in offer.purposes or []:
        used = [name for name in item["fields"] if name in names]
        if used:
            found.append((str(item["purpose"]), str(item["explanation"]), used))
    return found


def standing_grant(
    grants: Grants, session: Session, request: ConsentRequest, *, customer_id: UUID
) -> Grant | None:
    """The customer's newest grant of the request's offer version that reads would serve right now
    (active, unexpired, no reconfirmation due) and that holds the offer's required fields: what an
    OpenID Connect `prompt=none` request is answered with, without asking the customer again (its
    token then carries the grant's fields, as the customer left them)."""
    offer, now = request.offer, grants.clock()
    query = (
        select(Grant)
        .where(col(Grant.customer_id) == customer_id, col(Grant.offer_id) == offer.id)
        .where(col(Grant.status) == GrantStatus.ACTIVE, col(Grant.expires_at) > now)
        .order_by(col(Grant.created_at).desc())
    )
    for grant in session.exec(query):
        due = reconfirm_by(grant)
        if (due is None or now < due) and set(offer.required_fields) <= set(grant.fields):
            return grant
    return None
