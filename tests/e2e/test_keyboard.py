"""The portal with the keyboard alone: every step of logging in, opening a grant, narrowing and
revoking it is reachable with Tab, in a sensible order, with a visible focus ring at each stop."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from support.browser import serious_violations, tab_to
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http
from support.oauth import (
    BrandCredentials,
    authorize_params,
    brand_token,
    consent,
    create_brand_with_cli,
    pkce,
    portal_login,
    publish_offer,
)

EMAIL = "ada@example.org"


def test_a_customer_does_everything_with_the_keyboard_alone(
    server: str, page: Page, artifacts: Path, tmp_path: Path, fresh_database_url: str
) -> None:
    brand = BrandCredentials(*create_brand_with_cli(tmp_path / "var", fresh_database_url))
    with httpx.Client(base_url=server, timeout=30) as http:
        offer = publish_offer(http, brand_token(http, brand))
        sign_up_over_http(http, tmp_path / "var", EMAIL)
        assert portal_login(http, EMAIL).status_code == 303
        assert consent(http, authorize_params(brand, offer["id"], pkce()[1])).status_code in (302, 303)

    visited: list[str] = []
    page.goto(f"{server}/portal/login")
    tab_to(page, "Skip to content", visited)
    assert visited == ["Skip to content"], "the first stop skips the header"
    tab_to(page, "Email", visited)
    page.keyboard.type(EMAIL)
    tab_to(page, "Password", visited)
    page.keyboard.type(STRONG_PASSWORD)
    tab_to(page, "Log in", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")

    tab_to(page, "Green Grocer", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("What Green Grocer can see")

    tab_to(page, "Household size", visited)
    page.keyboard.press("Space")
    tab_to(page, "Stop sharing the unticked fields", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Household size")).to_have_count(0)

    tab_to(page, "I understand Green Grocer can no longer read my data, at once.", visited)
    page.keyboard.press("Space")
    tab_to(page, "Stop sharing", visited)
    page.screenshot(path=artifacts / "keyboard.png", full_page=False)
    page.keyboard.press("Enter")
    expect(page.get_by_text("revoked", exact=True)).to_be_visible()
    assert serious_violations(page) == []
