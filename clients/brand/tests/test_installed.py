"""consentry-brand, installed alone from its wheel, does what the README shows against a live broker."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from importlib.metadata import distributions, version
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import clients.brand
from clients.brand import AsyncConsentryClient, ConsentryClient, NotFound

if TYPE_CHECKING:  # pytest loads conftest itself; its classes only annotate the fixtures here
    from clients.brand.tests.conftest import Broker, Browser

OFFER = {
    "title": "Recipes for your week",
    "description": "We pick recipes for the way you cook.",
    "required_fields": ["email"],
    "optional_fields": ["household_size"],
    "purpose": "personalised_offers",
    "purpose_explanation": "We pick recipes for your household.",
    "grant_duration_days": 90,
    "retention_days": 30,
    "recipients": [],
    "value": {
        "kind": "voucher",
        "amount": "5.00",
        "currency": "EUR",
        "description": "5 EUR off your next box",
        "due": {"when": "within_days", "days": 7},
    },
}


def test_the_sdk_is_the_wheel_installed_without_any_of_the_server() -> None:
    site = Path(sys.prefix).resolve()
    assert Path(clients.brand.__file__).resolve().is_relative_to(site), clients.brand.__file__
    for server_side in ("broker", "vault", "migrations", "clients.auditor", "fastapi", "sqlalchemy"):
        assert importlib.util.find_spec(server_side) is None, f"{server_side} is importable here"
    installed = {dist.metadata["Name"].lower() for dist in distributions()}
    assert "consentry-brand" in installed
    assert not installed & {"consentry", "consentry-audit", "cryptography", "typer"}, installed


def test_it_prints_its_version_and_checks_a_broker(broker: Broker) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "clients.brand", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert printed == f"consentry-brand {version('consentry-brand')} (speaks Consentry API 1)\n"
    assert clients.brand.__version__ == version("consentry-brand")
    checked = subprocess.run(
        [sys.executable, "-m", "clients.brand", "check", broker.url], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"yes: {broker.url} serves Consentry API 1\n"
    refused = subprocess.run(
        [sys.executable, "-m", "clients.brand", "check", f"{broker.url}/not-a-broker"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and refused.stderr.startswith("no: "), refused.stderr


def test_a_brand_publishes_an_offer_gets_consent_reads_delivers_and_sees_its_log(
    broker: Broker, browser: Browser
) -> None:
    with ConsentryClient(
        broker.url,
        client_id=broker.brand_id,
        client_secret=broker.brand_secret,
        redirect_uri=broker.redirect_uri,
    ) as sdk:
        offer = sdk.publish_offer(OFFER)
        asked = sdk.authorization_url(offer_id=offer.id)
        callback = browser.approve(asked.url)
        session = sdk.handle_callback(callback, expected_state=asked.state, code_verifier=asked.code_verifier)
        profile = sdk.read_profile(session)
        assert profile.fields["email"] == broker.email and profile.grant_id == session.grant_id
        grant = sdk.get_grant(session.grant_id)
        assert grant.status == "active" and grant.offer_id == offer.id
        (owed,) = sdk.list_value(session.grant_id)
        delivered = sdk.deliver_value(
            session.grant_id, kind="voucher", redemption="BOX-5-OFF", amount="5.00", currency="EUR"
        )
        assert delivered.id == owed.id and delivered.state == "delivered"
        log = sdk.access_log(grant_id=session.grant_id)
        assert "profile.read" in {entry.kind for entry in log.items}
        with pytest.raises(NotFound, match="404"):
            sdk.get_grant("00000000-0000-4000-8000-000000000000")


def test_the_async_client_lists_the_brands_offers(broker: Broker) -> None:
    async def offers() -> list[str]:
        async with AsyncConsentryClient(
            broker.url, client_id=broker.brand_id, client_secret=broker.brand_secret
        ) as sdk:
            page = await sdk.list_offers()
            return [offer.title for offer in page.items]

    assert "Recipes for your week" in asyncio.run(offers())
