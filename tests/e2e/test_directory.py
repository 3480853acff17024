"""The offer directory in Chromium, by keyboard only: a customer browses four listed offers, filters
out the one that shares data with others, compares the other three side by side, accepts one and
sees it on the dashboard. axe finds nothing serious at 360 px and at desktop width on any of the
pages, and the brand (SDK) takes the grant's tokens with the webhook's ticket and reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from support.browser import serious_violations, tab_to
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http
from support.oauth import OFFER, BrandCredentials, brand_token, create_brand_with_cli

from clients.brand import ConsentryClient

LISTINGS: dict[str, dict[str, Any]] = {
    "Green Grocer": {"title": "Weekly recipes", "retention_days": 30},
    "Oak Coffee": {"title": "Coffee for you", "retention_days": 90, "required_fields": ["email"],
                   "optional_fields": ["given_name"], "value": {**OFFER["value"], "amount": "4.00"}},
    "Pedal Works": {"title": "Bike reminders", "retention_days": 0, "required_fields": ["email"],
                    "optional_fields": [], "value": {"kind": "service", "description": "a free check-up",
                                                     "due": {"when": "monthly"}}},
    "Data Traders": {"title": "Share everywhere", "recipients": ["Ad Network plc"]},
}  # fmt: skip


def axe_at_both_widths(page: Page) -> None:
    assert serious_violations(page) == [], page.url
    page.set_viewport_size({"width": 1280, "height": 900})
    assert serious_violations(page) == [], page.url
    page.set_viewport_size({"width": 360, "height": 800})


def test_browse_filter_compare_accept_by_keyboard(
    server: str, page: Page, tmp_path: Path, fresh_database_url: str, artifacts: Path
) -> None:
    brands = {}
    with httpx.Client(base_url=server, timeout=30) as http:
        for name, changes in LISTINGS.items():
            made = create_brand_with_cli(tmp_path / "var", fresh_database_url, name, f"{server}/cb")
            brands[name] = BrandCredentials(*made)
            as_brand = {"Authorization": f"Bearer {brand_token(http, brands[name])}"}
            offer = http.post("/v1/offers", json={**OFFER, **changes, "listed": True}, headers=as_brand)
            assert offer.status_code == 201, offer.text
        sign_up_over_http(http, tmp_path / "var", "ada@example.org")
        login = {"email": "ada@example.org", "password": STRONG_PASSWORD}
        as_ada = {"Authorization": f"Bearer {http.post('/v1/sessions', json=login).json()['token']}"}
        profile = {"email": "ada@example.org", "dietary": ["vegan"], "household_size": 3, "given_name": "Ada"}
        assert http.put("/v1/me/profile", json=profile, headers=as_ada).status_code == 200

    page.goto(f"{server}/portal/directory")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Offers you can choose from")
    expect(page.get_by_role("heading", name="4 offers")).to_be_visible()
    axe_at_both_widths(page)

    visited: list[str] = []
    tab_to(page, "Shared with nobody else", visited, limit=80)
    page.keyboard.press("Space")
    tab_to(page, "Show offers", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="3 offers")).to_be_visible()
    expect(page.get_by_text("Share everywhere")).to_have_count(0)
    page.screenshot(path=artifacts / "directory.png", full_page=True)

    # newest first: in the page's order
    for title, brand in (("Bike reminders", "Pedal Works"), ("Coffee for you", "Oak Coffee"),
                         ("Weekly recipes", "Green Grocer")):  # fmt: skip
        tab_to(page, f"Compare {title} from {brand}", visited, limit=80)
        page.keyboard.press("Space")
    tab_to(page, "Compare ticked offers (2 to 4)", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare 3 offers")
    table = page.get_by_role("table")
    expect(table.get_by_role("columnheader")).to_have_count(4)
    expect(table.locator("tr.differs").filter(has_text="Kept after the grant ends")).to_have_count(1)
    expect(page.get_by_role("listitem").filter(has_text="keeps your data 90 days longer")).to_have_count(1)
    axe_at_both_widths(page)
    page.screenshot(path=artifacts / "directory-compare.png", full_page=True)

    tab_to(page, "Read and accept Weekly recipes from Green Grocer", visited, limit=60)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Weekly recipes")
    expect(page.get_by_text("vegan")).to_be_visible()
    axe_at_both_widths(page)
    tab_to(page, "Household size", visited, prefix=True, limit=60)
    page.keyboard.press("Space")
    tab_to(page, "I explicitly agree", visited, prefix=True)
    page.keyboard.press("Space")
    tab_to(page, "Share and accept", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Green Grocer")

    page.goto(f"{server}/portal/")
    dashboard = page.locator("table.grants")
    expect(dashboard.get_by_role("link", name="Green Grocer")).to_be_visible()
    expect(dashboard).to_contain_text("active")

    # The brand (no webhook endpoint here) finds the grant in its list, asks for a ticket and takes
    # the grant's tokens with it.
    grocer = brands["Green Grocer"]
    with ConsentryClient(server, client_id=grocer.client_id, client_secret=grocer.client_secret) as sdk:
        started = [g for g in sdk.list_grants().items if g.decline_by is not None]
        assert len(started) == 1 and started[0].fields == ["email", "dietary", "household_size"]
        session = sdk.exchange_grant_ticket(sdk.new_grant_ticket(started[0].id).grant_ticket)
        assert set(sdk.read_profile(session).fields) >= {"dietary", "household_size"}
