"""The purposes an offer may declare: a fixed vocabulary of W3C Data Privacy Vocabulary (DPV) terms.

Each slug maps to a DPV purpose class (https://w3id.org/dpv, terms under `https://w3id.org/dpv#`), a short
label for the consent screen and one plain sentence for customers. Slugs are stored in offers and grants:
add new ones freely, but never rename or remove one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from broker.errors import ValidationFailed

__all__ = ["DPV", "PURPOSES", "Purpose", "describe_purpose", "granted_purposes", "offered_purposes"]

DPV: Final = "https://w3id.org/dpv#"


@dataclass(frozen=True, slots=True)
class Purpose:
    """One purpose: our slug, the DPV term it stands for, and how customers are told about it."""

    slug: str
    iri: str
    label: str
    description: str


# fmt: off
PURPOSES: Final[Mapping[str, Purpose]] = MappingProxyType({purpose.slug: purpose for purpose in (
    # Offers picked for one customer are personalised advertising in DPV's terms (a kind of Marketing);
    # ServicePersonalisation would understate that the data chooses what is promoted to them.
    Purpose("personalised_offers", DPV + "PersonalisedAdvertising", "Personalised offers",
            "Choosing the offers, discounts and promotions shown to you, based on what you share."),
    Purpose("service_provision", DPV + "ServiceProvision", "Providing the service",
            "Providing the product or service you signed up for."),
    Purpose("marketing", DPV + "Marketing", "Marketing",
            "Promoting the brand's products and services."),
    Purpose("direct_marketing", DPV + "DirectMarketing", "Direct marketing",
            "Sending marketing messages straight to you, for example by email, text or post."),
    Purpose("research", DPV + "ResearchAndDevelopment", "Research and development",
            "Researching and developing new products, services or methods."),
    Purpose("customer_care", DPV + "CustomerCare", "Customer care",
            "Helping you, sorting out problems and checking you are satisfied."),
    Purpose("fraud_prevention", DPV + "FraudPreventionAndDetection", "Fraud prevention",
            "Detecting and preventing fraud."),
    Purpose("improve_service", DPV + "ServiceOptimisation", "Improving the service",
            "Making the service work better and more efficiently."),
)})
# fmt: on


def offered_purposes(
    purpose: str, explanation: str, fields: Sequence[str], purposes: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """An offer's purposes as `[{purpose, explanation, fields}]`: as declared, or its one purpose for
    all its fields (offers made before purposes could be several, and single-purpose ones)."""
    if purposes:
        return [dict(item) for item in purposes]
    return [{"purpose": purpose, "explanation": explanation, "fields": list(fields)}]


def granted_purposes(
    purpose: str, fields: Sequence[str], purpose_fields: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """Which of a grant's fields go with which purpose: as recorded, or its one purpose for all of them."""
    if purpose_fields:
        return {name: list(names) for name, names in purpose_fields.items()}
    return {purpose: list(fields)}


def describe_purpose(slug: str) -> Purpose:
    """The purpose with this slug; raises `ValidationFailed` (pointer `/purpose`) listing them otherwise."""
    try:
        return PURPOSES[slug]
    except KeyError:
        detail = f"unknown purpose; choose one of: {', '.join(PURPOSES)}"
        raise ValidationFailed(detail, errors=[{"pointer": "/purpose", "detail": detail}]) from None
