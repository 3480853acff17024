"""Consent to each purpose apart, in Chromium by keyboard (axe clean), then reads bound to it with the
brand SDK: the customer agrees to research and not to personalised offers; the brand reads the
research fields, and a read for personalised offers is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from support.browser import serious_violations, tab_to
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http
from support.oauth import OFFER, BrandCredentials, brand_token, create_brand_with_cli

from clients.brand import ConsentryClient, PurposeNotGranted

SEVERAL: dict[str, Any] = {
    **{k: v for k, v in OFFER.items() if k not in ("purpose", "purpose_explanation")},
    "required_fields": ["age_band"],
    "optional_fields": ["dietary", "household_size"],
    "purposes": [
        {"purpose": "personalised_offers", "explanation": "We pick recipes for what you eat.",
         "fields": ["dietary", "household_size"]},
        {"purpose": "research", "explanation": "We study which boxes suit which ages.",
         "fields": ["age_band", "household_size"]},
    ],
}  # fmt: skip


def test_a_customer_agrees_to_one_purpose_of_two_and_reads_follow_it(
    server: str, page: Page, tmp_path: Path, fresh_database_url: str, artifacts: Path
) -> None:
    redirect = f"{server}/brand-callback"  # the brand's page: nothing answers it, its URL is what counts
    made = create_brand_with_cli(tmp_path / "var", fresh_database_url, "Green Grocer", redirect)
    brand = BrandCredentials(*made)
    with httpx.Client(base_url=server, timeout=30) as http:
        as_brand = {"Authorization": f"Bearer {brand_token(http, brand)}"}
        offer = http.post("/v1/offers", json=SEVERAL, headers=as_brand)
        assert offer.status_code == 201, offer.text
        sign_up_over_http(http, tmp_path / "var", "ada@example.org")
        login = {"email": "ada@example.org", "password": STRONG_PASSWORD}
        as_ada = {"Authorization": f"Bearer {http.post('/v1/sessions', json=login).json()['token']}"}
        profile = {
            "email": "ada@example.org",
            "birthdate": "1990-12-10",
            "dietary": ["vegan"],
            "household_size": 3,
        }
        assert http.put("/v1/me/profile", json=profile, headers=as_ada).status_code == 200
    sdk = ConsentryClient(server, client_id=made[0], client_secret=made[1], redirect_uri=redirect)
    request = sdk.authorization_url(offer_id=offer.json()["id"])
    page.goto(request.url)
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Green Grocer asks for some of your data")
    expect(page.get_by_text("tick each purpose you agree to")).to_be_visible()
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "consent-purposes.png", full_page=True)

    # Nothing ticked: the screen asks again, saying why.
    page.get_by_role("button", name="Share and accept").click()
    expect(page.get_by_role("alert")).to_contain_text("Tick each purpose you agree to")
    visited: list[str] = []
    tab_to(page, "Research and development", visited)
    page.keyboard.press("Space")
    expect(page.get_by_label("Research and development")).to_be_checked()
    expect(page.get_by_label("Personalised offers")).not_to_be_checked()
    tab_to(page, "Share and accept", visited)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{redirect}?**")

    session = sdk.handle_callback(page.url, expected_state=request.state, code_verifier=request.code_verifier)
    research = sdk.read_profile(session, purpose="research")
    assert research.purpose == "research" and set(research.fields) == {"age_band", "household_size"}
    assert sdk.read_profile(session).purpose == "research", "one purpose granted: reads need not say it"
    with pytest.raises(PurposeNotGranted) as refused:
        sdk.read_profile(session, purpose="personalised_offers")
    assert refused.value.granted == ["research"]
    sdk.close()
