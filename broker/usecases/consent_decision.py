"""The consent step of an authorization request: what the screen shows, and what the answer does.

It works on a `ConsentRequest` (plain data that `broker.oauth.authorize` builds from Authlib's view
of the request): the customer's current values come from the vault, and an approval creates the
grant through `broker.consent.grants`; turning the answer into a redirect is oauth's again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from sqlmodel import Session

from broker.consent.grants import Grants
from broker.consent.models import Grant, Offer
from broker.consent.purposes import describe_purpose
from broker.oauth.authorize import ConsentRequest
from broker.oauth.clients import origin_of
from vault.fields import CATALOGUE, JSONValue, Sensitivity
from vault.profile import Vault

_FORM_ONLY = {"csrf_token", "decision", "fields", "special_consent"}
UNCONFIRMED_EMAIL = (
    "This brand needs your email address, which you have not confirmed yet: use the code we emailed "
    "you (or ask for a new one below), then come back to this page."
)


def describe_value(value: Mapping[str, Any]) -> str:
    """The declared value in plain words, e.g. '10.00 EUR voucher: …, within 7 days'."""
    amount = value.get("amount")
    if value.get("unit") == "percent":
        head = f"{amount}% {value['kind']}"
    elif amount is not None and value.get("currency"):
        head = f"{amount} {value['currency']} {value['kind']}"
    elif amount is not None:
        head = f"{amount} {value['kind']}"
    else:
        head = str(value["kind"])
    due = value.get("due") or {}
    when = {
        "before_first_read": "before they first read your data",
        "within_days": f"within {due.get('days')} days",
        "monthly": "every month while you share",
    }.get(str(due.get("when")), "")
    return f"{head}: {value.get('description', '')}" + (f" ({when})" if when else "")


def _shown(value: JSONValue | None) -> str | None:
    if value is None:
        return None
    return ", ".join(value) if isinstance(value, list) else str(value)


@dataclass(frozen=True, slots=True)
class ConsentScreen:
    """Everything the consent page shows, computed from the validated request."""

    brand: str
    offer: Offer
    fields: list[dict[str, Any]]
    params: list[tuple[str, str]]
    form_targets: tuple[str, ...]

    @classmethod
    def build(
        cls,
        request: ConsentRequest,
        vault: Vault,
        session: Session,
        *,
        customer_id: UUID,
        email_verified: bool = True,
    ) -> ConsentScreen:
        """Read the customer's current values of the requested fields and lay the screen out; an
        unconfirmed email is shown as such, unticked, and cannot be shared."""
        offer, names = request.offer, list(request.fields)
        values = vault.read(session, customer_id, names)
        fields = [
            {
                "name": name,
                "title": CATALOGUE[name].title,
                "value": _shown(values.get(name)),
                "required": name in offer.required_fields,
                "special": CATALOGUE[name].sensitivity is Sensitivity.SPECIAL_CATEGORY,
                "unconfirmed": name == "email" and not email_verified,
                "checked": name != "email" or email_verified,
            }
            for name in names
        ]
        params = [(k, v) for k, v in request.params if k not in _FORM_ONLY]
        return cls(request.brand_name, offer, fields, params, (origin_of(request.redirect_uri),))

    def context(self, *, message: str | None = None) -> dict[str, Any]:
        """The template context."""
        purpose = describe_purpose(self.offer.purpose)
        offer = {
            "title": self.offer.title,
            "description": self.offer.description,
            "purpose_label": purpose.label,
            "purpose_explanation": self.offer.purpose_explanation,
            "grant_duration_days": self.offer.grant_duration_days,
            "retention_days": self.offer.retention_days,
            "recipients": self.offer.recipients,
            "value_text": describe_value(self.offer.value),
        }
        special = [f["title"] for f in self.fields if f["special"]]
        return {
            "waits_for_email": any(f["unconfirmed"] and f["required"] for f in self.fields),
            "return_to": "/oauth/authorize?" + urlencode(self.params),
            "email_unconfirmed": any(f["unconfirmed"] for f in self.fields),
            "brand": self.brand,
            "offer": offer,
            "fields": self.fields,
            "params": self.params,
            "special": special,
            "message": message,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of the consent form: the grant made (a code is issued for it), none (denied), or a
    retry (the screen again, saying why)."""

    grant: Grant | None
    retry: str | None = None


def decide(
    grants: Grants,
    session: Session,
    request: ConsentRequest,
    *,
    customer_id: UUID,
    form: Mapping[str, list[str]],
    email_verified: bool = True,
) -> Decision:
    """Create the grant with exactly the fields kept, or deny; special categories need their own tick.
    An unconfirmed email is never granted: left out when optional, and when required the consent
    waits until the address is confirmed."""
    offer, names = request.offer, request.fields
    decision = (form.get("decision") or [""])[0]
    if decision == "deny":
        return Decision(None)
    if decision != "approve":
        return Decision(None, retry="Choose whether to share or not.")
    if not email_verified and "email" in offer.required_fields and "email" in names:
        return Decision(None, retry=UNCONFIRMED_EMAIL)
    kept = set(form.get("fields", [])) | set(offer.required_fields)
    selected = [name for name in names if name in kept and (name != "email" or email_verified)]
    special = [n for n in selected if CATALOGUE[n].sensitivity is Sensitivity.SPECIAL_CATEGORY]
    if special and (form.get("special_consent") or [""])[0] != "yes":
        return Decision(
            None, retry="Sensitive data needs your explicit agreement: tick the box, or untick those fields."
        )
    return Decision(grants.create(session, customer_id=customer_id, offer=offer, fields=selected))
