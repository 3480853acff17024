"""An unconfirmed address in a real browser: a brand that requires the email waits, the consent screen
says why and sends a new code, the code from the mail sink brings the customer back to share."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, Route, expect
from support.browser import serious_violations
from support.core import STRONG_PASSWORD
from support.mail import code_in, wait_for_message
from support.oauth import OFFER, REDIRECT, create_brand_with_cli, pkce

EMAIL = "ada@example.org"


def test_a_consent_that_needs_the_email_waits_for_it_to_be_confirmed(
    server: str, page: Page, artifacts: Path, tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir = tmp_path / "var"
    auth = create_brand_with_cli(data_dir, fresh_database_url)
    with httpx.Client(base_url=server, timeout=30) as http:
        token = http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": "offers:write"}, auth=auth
        ).json()["access_token"]
        offer = http.post("/v1/offers", json=OFFER, headers={"Authorization": f"Bearer {token}"}).json()
        assert (
            http.post("/v1/customers", json={"email": EMAIL, "password": STRONG_PASSWORD}).status_code == 202
        )
    wait_for_message(data_dir, EMAIL)  # the first code, never used

    callbacks: list[str] = []

    def brand_callback(route: Route) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="back at the brand")

    page.route(REDIRECT + "**", brand_callback)
    query = httpx.QueryParams(
        response_type="code", client_id=auth[0], redirect_uri=REDIRECT, state="wait",
        code_challenge=pkce()[1], code_challenge_method="S256", offer=offer["id"],
        scope="profile:email profile:dietary",
    )  # fmt: skip
    page.goto(f"{server}/oauth/authorize?{query}")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_text("This brand needs your email address, which you have not confirmed yet.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Share and accept")).to_be_disabled()
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "consent-waits.png", full_page=True)

    page.get_by_role("button", name="Email me a new code").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("A new code is on its way. Earlier codes no longer work.")
    code = code_in(wait_for_message(data_dir, EMAIL, count=2))
    page.get_by_label("Code from the email").fill(code)
    page.get_by_role("button", name="Confirm my address").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Green Grocer asks for some of your data")
    expect(page.get_by_role("button", name="Share and accept")).to_be_enabled()
    page.get_by_label("I explicitly agree").check()
    page.get_by_role("button", name="Share and accept").click()
    expect(page.get_by_text("back at the brand")).to_be_visible()
    assert "code=" in callbacks[-1]
