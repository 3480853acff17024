"""The customer's voice in Chromium, by keyboard only, axe clean at 360 px and desktop width: a customer
rules out channels and a topic, sets quiet hours and a monthly cap, is told in words what to fix and
saves; then publishes an intent, sees two brands' answers and accepts one, which only that brand
learns of."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from support.browser import serious_violations, tab_to
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http
from support.oauth import OFFER, BrandCredentials, brand_token, create_brand_with_cli


def axe_at_both_widths(page: Page) -> None:
    assert serious_violations(page) == [], page.url
    page.set_viewport_size({"width": 1280, "height": 900})
    assert serious_violations(page) == [], page.url
    page.set_viewport_size({"width": 360, "height": 800})


def test_set_preferences_by_keyboard(server: str, page: Page, tmp_path: Path, artifacts: Path) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        sign_up_over_http(http, tmp_path / "var", "ada@example.org")
    page.goto(f"{server}/portal/preferences")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("How brands may contact you")
    axe_at_both_widths(page)

    visited: list[str] = []
    for channel in ("Text message (SMS)", "Phone call", "App notification"):
        tab_to(page, channel, visited, limit=60)
        page.keyboard.press("Space")
    tab_to(page, "Keep quiet hours", visited)
    page.keyboard.press("Space")
    tab_to(page, "Your time zone", visited)
    page.keyboard.press("Control+A")
    page.keyboard.type("Middle/Earth")
    tab_to(page, "Most contacts each brand may make in a month", visited)
    page.keyboard.type("2")
    tab_to(page, "Gambling and betting", visited)
    page.keyboard.press("Space")
    tab_to(page, "Save", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("Please fix what is marked below.")
    expect(page.get_by_text("a time zone such as Europe/London")).to_be_visible()
    axe_at_both_widths(page)

    tab_to(page, "Your time zone", visited, limit=60)
    page.keyboard.press("Control+A")
    page.keyboard.type("Europe/London")
    tab_to(page, "Save", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    expect(page.get_by_label("Gambling and betting")).to_be_checked()
    expect(page.get_by_label("Text message (SMS)")).not_to_be_checked()
    page.screenshot(path=artifacts / "preferences.png", full_page=True)
    with httpx.Client(base_url=server, timeout=30) as http:
        login = {"email": "ada@example.org", "password": STRONG_PASSWORD}
        token = http.post("/v1/sessions", json=login).json()["token"]
        mine = http.get("/v1/me/preferences", headers={"Authorization": f"Bearer {token}"}).json()
    assert mine["channels"] == ["email", "post", "in_app"] and mine["max_contacts_per_month"] == 2
    assert mine["quiet_hours"] == {"start": "21:00", "end": "08:00", "time_zone": "Europe/London"}
    assert mine["avoid_topics"] == ["gambling"] and mine["version"] == 1


def test_publish_an_intent_see_two_answers_and_accept_one_by_keyboard(
    server: str, page: Page, tmp_path: Path, fresh_database_url: str, artifacts: Path
) -> None:
    brands = {}
    with httpx.Client(base_url=server, timeout=30) as http:
        offers = {}
        for name, title in (("Mover Vans", "Van for the day"), ("Fresh Start", "First-week dinners")):
            brands[name] = BrandCredentials(*create_brand_with_cli(tmp_path / "var", fresh_database_url, name,
                                                                   f"{server}/cb"))  # fmt: skip
            as_brand = {"Authorization": f"Bearer {brand_token(http, brands[name])}"}
            listed = {**OFFER, "title": title, "listed": True, "categories": ["home"]}
            made = http.post("/v1/offers", json=listed, headers=as_brand)
            assert made.status_code == 201, made.text
            offers[name] = made.json()["id"]
        sign_up_over_http(http, tmp_path / "var", "ada@example.org")
        login = {"email": "ada@example.org", "password": STRONG_PASSWORD}
        as_ada = {"Authorization": f"Bearer {http.post('/v1/sessions', json=login).json()['token']}"}
        profile = {"email": "ada@example.org", "dietary": ["vegan"], "household_size": 2}
        assert http.put("/v1/me/profile", json=profile, headers=as_ada).status_code == 200

    page.goto(f"{server}/portal/intents")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("What you are looking for")
    axe_at_both_widths(page)
    visited: list[str] = []
    tab_to(page, "I am", visited, limit=40)
    page.keyboard.press("Home")  # "Moving home", the first kind
    tab_to(page, "Publish", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Moving home")
    expect(page.get_by_role("heading", name="0 answers")).to_be_visible()

    with httpx.Client(base_url=server, timeout=30) as http:
        for name, credentials in brands.items():
            as_brand = {"Authorization": f"Bearer {brand_token(http, credentials)}"}
            (seen,) = http.get("/v1/intents", headers=as_brand).json()["items"]
            assert set(seen) >= {"handle", "kind"} and "subject" not in seen
            answered = http.post(f"/v1/intents/{seen['handle']}/answers", json={"offer_id": offers[name]},
                                 headers=as_brand)  # fmt: skip
            assert answered.status_code == 201, answered.text
    page.reload()
    expect(page.get_by_role("heading", name="2 answers")).to_be_visible()
    axe_at_both_widths(page)
    page.screenshot(path=artifacts / "intent-answers.png", full_page=True)
    tab_to(page, "Read it and accept it: Van for the day", visited, limit=60)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Van for the day")
    tab_to(page, "I explicitly agree", visited, prefix=True, limit=60)
    page.keyboard.press("Space")
    tab_to(page, "Share and accept", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Mover Vans")
    with httpx.Client(base_url=server, timeout=30) as http:
        mine = {n: http.get("/v1/grants", headers={"Authorization": f"Bearer {brand_token(http, c)}"}).json()
                for n, c in brands.items()}  # fmt: skip
    assert len(mine["Mover Vans"]["items"]) == 1 and mine["Fresh Start"]["items"] == [], (
        "only the chosen brand"
    )
