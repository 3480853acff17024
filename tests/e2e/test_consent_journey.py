"""The whole journey in a real browser: a brand (driven over HTTP by the test) sends the customer
through consent; the grant appears; the brand reads; the access appears with its proof badge; the
customer narrows, then revokes; the brand's next read fails."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, Route, expect
from support.browser import serious_violations
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http
from support.oauth import OFFER, REDIRECT, create_brand_with_cli, pkce

EMAIL = "ada@example.org"


def test_consent_read_narrow_revoke_as_the_customer_sees_it(
    server: str, page: Page, artifacts: Path, tmp_path: Path, fresh_database_url: str
) -> None:
    auth = create_brand_with_cli(tmp_path / "var", fresh_database_url)
    http = httpx.Client(base_url=server, timeout=30)
    token = http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": "offers:write"}, auth=auth
    ).json()["access_token"]
    offer = http.post("/v1/offers", json=OFFER, headers={"Authorization": f"Bearer {token}"}).json()
    sign_up_over_http(http, tmp_path / "var", EMAIL)
    session = http.post("/v1/sessions", json={"email": EMAIL, "password": STRONG_PASSWORD}).json()["token"]
    profile = {"email": EMAIL, "dietary": ["vegetarian"], "household_size": 3, "given_name": "Ada"}
    assert (
        http.put("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {session}"}).status_code
        == 200
    )

    # The brand sends the customer to the broker; the customer logs in and consents.
    verifier, challenge = pkce()
    callbacks: list[str] = []

    def brand_callback(route: Route) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="back at the brand")

    page.route(REDIRECT + "**", brand_callback)
    query = httpx.QueryParams(
        response_type="code", client_id=auth[0], redirect_uri=REDIRECT, state="journey",
        code_challenge=challenge, code_challenge_method="S256", offer=offer["id"],
        scope="profile:email profile:dietary profile:household_size profile:given_name",
    )  # fmt: skip
    page.goto(f"{server}/oauth/authorize?{query}")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Green Grocer asks for some of your data")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "consent.png", full_page=True)

    # Even a page of our own origin cannot frame the consent screen (no clickjacking of "Share").
    framer = page.context.new_page()
    framer.route(
        f"{server}/framer",
        lambda route: route.fulfill(
            content_type="text/html", body=f'<iframe src="{page.url}" width="360" height="600"></iframe>'
        ),
    )
    framer.goto(f"{server}/framer")
    framer.wait_for_timeout(1000)
    framed = [frame for frame in framer.frames if frame != framer.main_frame]
    assert framed and all(frame.query_selector("form") is None for frame in framed)
    framer.close()
    page.get_by_label("I explicitly agree").check()  # diet is special-category data
    page.get_by_role("button", name="Share and accept").click()
    expect(page.get_by_text("back at the brand")).to_be_visible()
    code = httpx.URL(callbacks[-1]).params["code"]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    access = http.post("/oauth/token", data=exchange, auth=auth).json()["access_token"]
    brand_reads = {"Authorization": f"Bearer {access}"}

    # The grant is on the dashboard; the brand reads; the access shows with its badge.
    page.goto(f"{server}/portal/")
    row = page.get_by_role("row").filter(has_text="Green Grocer")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("never")
    assert http.get("/v1/profile", headers=brand_reads).status_code == 200
    page.reload()
    expect(row).not_to_contain_text("never")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "dashboard.png", full_page=True)
    page.get_by_role("link", name="Green Grocer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("What Green Grocer can see")
    read = page.get_by_role("row").filter(has_text="read your data")
    expect(read.get_by_text("verified", exact=True)).to_be_visible()
    expect(page.locator("figcaption")).to_contain_text("1 read in the last 30 days")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "grant.png", full_page=True)

    # The customer narrows: household size is no longer shared.
    page.get_by_label("Household size").uncheck()
    page.get_by_role("button", name="Stop sharing the unticked fields").click()
    expect(page.get_by_label("Household size")).to_have_count(0)
    fields = http.get("/v1/profile", headers=brand_reads).json()["fields"]
    assert "household_size" not in fields and fields["email"] == EMAIL

    # Revoking needs the confirmation box; then the brand's next read fails.
    page.get_by_role("button", name="Stop sharing").last.click()
    expect(page.get_by_role("alert")).to_contain_text("Tick the box")
    page.get_by_label("I understand Green Grocer can no longer read my data").check()
    page.get_by_role("button", name="Stop sharing").last.click()
    expect(page.get_by_text("revoked", exact=True)).to_be_visible()
    assert http.get("/v1/profile", headers=brand_reads).status_code in (401, 403)
    http.close()
