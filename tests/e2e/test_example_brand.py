"""The example brand app and the portal together in Chromium: the shopper connects Fresh Basket
through the consent screen, gets recipes for what they shared and the voucher the offer declared;
the portal shows the voucher delivered; the shopper ends the sharing in the portal; Fresh Basket
notices, deletes what it held, and its deletion attestation reaches the broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Page, expect
from support.browser import serious_violations
from support.core import STRONG_PASSWORD, free_port, running_server
from support.mail import sign_up_over_http
from support.oauth import OFFER, BrandCredentials, brand_token, create_brand_with_cli, publish_offer

from clients.examples.grocery import GroceryConfig, create_app

EMAIL = "robin@example.org"
PROFILE = {"email": EMAIL, "given_name": "Robin", "dietary": ["vegetarian"], "household_size": 5,
           "life_stage": "family_young_children"}  # fmt: skip


@pytest.fixture
def fresh_basket(server: str, tmp_path: Path, fresh_database_url: str) -> Iterator[str]:
    """Fresh Basket registered at the broker, its offer published, served on loopback; its URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    brand = BrandCredentials(
        *create_brand_with_cli(tmp_path / "var", fresh_database_url, "Fresh Basket", f"{base}/callback")
    )
    with httpx.Client(base_url=server, timeout=30) as http:
        offer = publish_offer(
            http,
            brand_token(http, brand),
            title="Recipes that fit your kitchen",
            description="Weekly recipes matched to your diet and household, and a voucher to try them.",
            required_fields=["dietary", "household_size"],
            optional_fields=["life_stage", "given_name"],
            value={
                **OFFER["value"],
                "amount": "5.00",
                "currency": "GBP",
                "description": "5 GBP off your next order",
            },
        )
    config = GroceryConfig(
        broker_url=server,
        client_id=brand.client_id,
        client_secret=brand.client_secret or "",
        redirect_uri=f"{base}/callback",
        offer_id=offer["id"],
    )
    app_server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not app_server.started:
        assert time.monotonic() < deadline, "Fresh Basket did not start"
        time.sleep(0.05)
    yield base
    app_server.should_exit = True
    thread.join(timeout=10)


def test_a_shopper_connects_the_example_brand_gets_value_and_ends_it(
    server: str, fresh_basket: str, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        sign_up_over_http(http, tmp_path / "var", EMAIL)
        session = http.post("/v1/sessions", json={"email": EMAIL, "password": STRONG_PASSWORD}).json()[
            "token"
        ]
        assert (
            http.put(
                "/v1/me/profile", json=PROFILE, headers={"Authorization": f"Bearer {session}"}
            ).status_code
            == 200
        )

    page.goto(fresh_basket)
    expect(page.get_by_role("heading", level=1)).to_have_text("Recipes that fit your kitchen")
    page.get_by_role("link", name="Connect with Consentry").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Fresh Basket asks for some of your data")
    page.get_by_label("I explicitly agree").check()  # diet is special-category data
    page.get_by_role("button", name="Share and accept").click()

    # Back at the brand: recipes for a vegetarian family of five, and the voucher.
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello Robin: recipes for you")
    expect(page.get_by_text("Little Chefs Box")).to_be_visible()
    expect(page.get_by_text("Lentil shepherd's pie")).to_be_visible()
    expect(page.get_by_text("Roast chicken traybake")).to_have_count(0)
    voucher = page.locator(".voucher strong").inner_text()
    assert voucher.startswith("FRESH-")
    page.screenshot(path=artifacts / "example-brand.png", full_page=True)

    # In the portal the value shows delivered, with the same code; the shopper confirms it.
    page.goto(f"{server}/portal/")
    row = page.get_by_role("row").filter(has_text="Fresh Basket")
    expect(row).to_contain_text("1 delivered")
    page.get_by_role("link", name="Fresh Basket").click()
    expect(page.get_by_text(f"How to redeem: {voucher}")).to_be_visible()
    page.get_by_role("button", name="I received it").click()
    expect(page.get_by_text("confirmed", exact=True)).to_be_visible()
    assert serious_violations(page) == []

    # The shopper ends the sharing; the brand finds out on its next read, deletes and attests.
    page.get_by_label("I understand Fresh Basket can no longer read my data, at once.").check()
    page.get_by_role("button", name="Stop sharing").last.click()
    expect(page.get_by_text("revoked", exact=True)).to_be_visible()
    page.goto(fresh_basket)
    expect(page.get_by_role("status")).to_contain_text(
        "You stopped sharing with us: we deleted what we held and told Consentry so."
    )
    expect(page.get_by_text("Robin")).to_have_count(0)


def test_a_shopper_who_accepts_in_the_directory_finds_fresh_basket_personalised(
    page: Page, tmp_path: Path, fresh_database_url: str
) -> None:
    """Fresh Basket's offer is listed. The shopper accepts it in the portal's directory; the
    `grant.created` webhook reaches the app, which exchanges its grant ticket, reads and delivers the
    voucher at once; then the shopper opens the app and continues with what they shared (a silent
    authorization): the shop is personalised, and the voucher was delivered once."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    webhooks = {"CONSENTRY_WEBHOOKS_ALLOW_PRIVATE": "true", "CONSENTRY_WEBHOOK_INTERVAL_SECONDS": "1"}
    with running_server(
        tmp_path / "var", fresh_database_url, tmp_path / "server.log", env=webhooks
    ) as broker:
        server = broker.url
        brand = BrandCredentials(
            *create_brand_with_cli(tmp_path / "var", fresh_database_url, "Fresh Basket", f"{base}/callback")
        )
        with httpx.Client(base_url=server, timeout=30) as http:
            offer = publish_offer(
                http, brand_token(http, brand), listed=True, title="Recipes that fit your kitchen",
                required_fields=["dietary", "household_size"], optional_fields=["life_stage", "given_name"],
            )  # fmt: skip
            hook_token = brand_token(http, brand, scope="webhooks:write")
            endpoint = http.post(
                "/v1/webhooks",
                json={"url": f"{base}/consentry/webhook", "events": ["grant.created"]},
                headers={"Authorization": f"Bearer {hook_token}"},
            )
            assert endpoint.status_code == 201, endpoint.text
            sign_up_over_http(http, tmp_path / "var", EMAIL)
            token = http.post("/v1/sessions", json={"email": EMAIL, "password": STRONG_PASSWORD}).json()[
                "token"
            ]
            assert http.put(
                "/v1/me/profile", json=PROFILE, headers={"Authorization": f"Bearer {token}"}
            ).is_success
        config = GroceryConfig(
            broker_url=server, client_id=brand.client_id, client_secret=brand.client_secret or "",
            redirect_uri=f"{base}/callback", offer_id=offer["id"], webhook_secret=endpoint.json()["secret"],
        )  # fmt: skip
        app_server = uvicorn.Server(
            uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=app_server.run, daemon=True)
        thread.start()
        try:
            page.goto(f"{server}/portal/directory/offers/{offer['id']}")
            page.get_by_label("Email").fill(EMAIL)
            page.get_by_label("Password").fill(STRONG_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Fresh Basket")
            page.get_by_label("Given name").check()
            page.get_by_label("I explicitly agree").check()
            page.get_by_role("button", name="Share and accept").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Fresh Basket")

            # The webhook reaches the app within a few seconds: the voucher is delivered before the
            # shopper even visits.
            expect(page.get_by_text("1 delivered")).to_have_count(0)
            for _ in range(100):
                page.goto(f"{server}/portal/")
                if (
                    page.get_by_role("row")
                    .filter(has_text="Fresh Basket")
                    .filter(has_text="1 delivered")
                    .count()
                ):
                    break
                time.sleep(0.2)
            else:
                raise AssertionError(
                    f"the webhook never reached Fresh Basket:\n{(tmp_path / 'server.log').read_text()}"
                )

            page.goto(base)
            page.get_by_role("link", name="Continue with what you shared").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Hello Robin: recipes for you")
            expect(page.get_by_text("Lentil shepherd's pie")).to_be_visible()
            assert page.locator(".voucher strong").inner_text().startswith("FRESH-")
            page.goto(f"{server}/portal/")
            expect(page.get_by_role("row").filter(has_text="Fresh Basket")).to_contain_text("1 delivered")
        finally:
            app_server.should_exit = True
            thread.join(timeout=10)
