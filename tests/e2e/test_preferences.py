"""The preferences page in Chromium, by keyboard only: a customer rules out channels and a topic, sets
quiet hours and a monthly cap, is told in words what to fix, saves, and the brand reads the result.
axe finds nothing serious at 360 px and at desktop width."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from support.browser import serious_violations, tab_to
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http


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
