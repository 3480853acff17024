"""A demo to try the broker with: a customer with a profile, a brand and its offer (listed in the offer
directory), and two more brands whose listed offers the directory compares it with. Idempotent."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from broker.accounts.models import Brand, Customer
from broker.consent.models import Offer, OfferStatus
from broker.consent.offer_schemas import OfferDraft
from broker.consent.scopes import field_scope
from broker.oauth.clients import new_client_secret, register_brand
from broker.runtime import Runtime

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-vault-passphrase-2026"  # noqa: S105 - a published demo credential, seeded on request
DEMO_BRAND = "Demo Grocer"
DEMO_REDIRECT = "http://127.0.0.1:8001/callback"

DEMO_PROFILE = {
    "given_name": "Robin",
    "family_name": "Demo",
    "birthdate": "1990-04-12",
    "postcode": "SW1A 1AA",
    "city": "London",
    "country": "GB",
    "household_size": 2,
    "life_stage": "couple",
    "dietary": ["vegetarian"],
    "interests": ["cooking", "cycling", "books"],
    "preferred_channels": ["email", "app"],
}
DEMO_OFFER = {
    "title": "Recipes that fit your kitchen",
    "description": "Weekly recipe ideas matched to your diet and household, and a voucher to try them.",
    "required_fields": ["dietary", "household_size"],
    "optional_fields": ["life_stage", "age_band", "given_name"],
    "purpose": "personalised_offers",
    "purpose_explanation": "We pick the recipes and offers we show you from your diet and household.",
    "grant_duration_days": 90,
    "retention_days": 30,
    "recipients": [],
    "value": {"kind": "voucher", "amount": "5.00", "currency": "GBP",
              "description": "5 GBP off your next order", "due": {"when": "within_days", "days": 7}},
    "listed": True,
}  # fmt: skip
# Other brands' listed offers, so that the directory has something to compare (no credentials: the
# demo never acts as them).
OTHER_LISTINGS = {
    "Oak & Ember Coffee": {
        "title": "Coffee picked for your taste",
        "description": "A monthly coffee suggestion from where you live, and loyalty points every month.",
        "required_fields": ["email"],
        "optional_fields": ["city", "given_name"],
        "purpose": "personalised_offers",
        "purpose_explanation": "We suggest coffees sold near you.",
        "grant_duration_days": 180,
        "retention_days": 60,
        "recipients": [],
        "value": {"kind": "points", "amount": "200", "description": "200 points a month",
                  "due": {"when": "monthly"}},
        "listed": True,
    },
    "Pedal Works": {
        "title": "Bike servicing reminders",
        "description": "Reminders and offers for your bike, with 10% off your next service.",
        "required_fields": ["email", "interests"],
        "optional_fields": ["city"],
        "purpose": "marketing",
        "purpose_explanation": "We tell you about services and offers for cyclists.",
        "grant_duration_days": 365,
        "retention_days": 90,
        "recipients": ["Pedal Works Insurance"],
        "value": {"kind": "discount", "unit": "percent", "amount": "10", "description": "10% off a service",
                  "due": {"when": "within_days", "days": 14}},
        "listed": True,
    },
}  # fmt: skip


def seed_demo(runtime: Runtime) -> dict[str, Any]:
    """Create what is missing of the demo and return its credentials.

    The brand's secret is stored only as a digest, so every run issues the demo brand a fresh one.
    """
    with runtime.sessions() as session:
        if (
            session.exec(
                select(Customer.id).where(Customer.email_index == runtime.accounts.email_token(DEMO_EMAIL))
            ).first()
            is None
        ):
            customer = runtime.accounts.sign_up(session, DEMO_EMAIL, DEMO_PASSWORD, verified=True)
            runtime.vault.write(session, customer.id, DEMO_PROFILE, replace=False)
        brand = session.exec(select(Brand).where(Brand.name == DEMO_BRAND)).first()
        if brand is None:
            registered = register_brand(
                session, name=DEMO_BRAND, redirect_uris=[DEMO_REDIRECT], public=False, clock=runtime.clock
            )
            brand, secret = registered.brand, registered.client_secret
        else:
            secret = new_client_secret(session, brand)
        offer = session.exec(
            select(Offer).where(Offer.brand_id == brand.id, Offer.status == OfferStatus.ACTIVE)
        ).first()
        if offer is None:
            offer = runtime.offers.create(session, brand, OfferDraft.model_validate(DEMO_OFFER))
        elif not offer.listed:  # seeded before the directory: list it
            offer = runtime.offers.revise(session, brand, offer.id, OfferDraft.model_validate(DEMO_OFFER))
        for name, listing in OTHER_LISTINGS.items():
            other = session.exec(select(Brand).where(Brand.name == name)).first()
            if other is None:
                callback = f"https://{name.split()[0].lower()}.example/callback"
                other = register_brand(
                    session, name=name, redirect_uris=[callback], public=False, clock=runtime.clock
                ).brand
                runtime.offers.create(session, other, OfferDraft.model_validate(listing))
        session.commit()
        return {
            "customer": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
            "brand": {
                "name": DEMO_BRAND,
                "client_id": brand.client_id,
                "client_secret": secret,
                "redirect_uri": DEMO_REDIRECT,
            },
            "offer": {
                "id": str(offer.id),
                "scopes": [field_scope(f) for f in [*offer.required_fields, *offer.optional_fields]],
            },
        }
