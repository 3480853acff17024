"""Account security in a real browser: a forgotten password reset from the mail sink, a sign-in by
emailed link, ending another browser's session and seeing it die, changing the password, the
security activity; each page passes axe and works with the keyboard alone."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect
from support.browser import serious_violations, tab_to
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http, sink_messages, text_of, wait_for_message

EMAIL = "ada@example.org"
NEW_PASSWORD = "quartz-heron-mitten-47-orchard"
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


def signed_up(server: str, data_dir: Path) -> int:
    """Sign up and confirm EMAIL; how many messages went to it so far."""
    with httpx.Client(base_url=server, timeout=30) as http:
        sign_up_over_http(http, data_dir, EMAIL)
    return len(sink_messages(data_dir, EMAIL))


def link_in(text: str, path: str) -> str:
    found = re.search(rf"https?://\S+{re.escape(path)}\?code=[0-9A-Z-]+", text)
    assert found is not None, text
    return found.group(0)


def log_in(page: Page, server: str, password: str = STRONG_PASSWORD) -> None:
    page.goto(f"{server}/portal/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def test_a_forgotten_password_is_reset_from_the_mail_by_keyboard(
    server: str, page: Page, tmp_path: Path, artifacts: Path
) -> None:
    seen = signed_up(server, tmp_path / "var")
    page.goto(f"{server}/portal/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")
    assert serious_violations(page) == []
    visited: list[str] = []
    tab_to(page, "Email", visited)
    page.keyboard.type(EMAIL)
    tab_to(page, "Send me a code", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("is on its way")
    message = wait_for_message(tmp_path / "var", EMAIL, count=seen + 1)
    assert str(message["Subject"]) == "Reset your Consentry password"
    page.goto(link_in(text_of(message), "/portal/password-reset"))
    expect(page.get_by_label("Code")).not_to_have_value("")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "password-reset.png", full_page=True)
    tab_to(page, "New password", visited)
    page.keyboard.type(NEW_PASSWORD)
    tab_to(page, "Set the new password", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your password is reset")
    assert serious_violations(page) == []
    page.get_by_role("link", name="Log in with your new password").click()
    log_in(page, server, NEW_PASSWORD)
    told = wait_for_message(tmp_path / "var", EMAIL, count=seen + 2)
    assert "was reset" in str(told["Subject"])


def test_an_emailed_link_signs_in_by_keyboard(server: str, page: Page, tmp_path: Path) -> None:
    seen = signed_up(server, tmp_path / "var")
    page.goto(f"{server}/portal/login")
    page.get_by_role("link", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in by email")
    assert serious_violations(page) == []
    visited: list[str] = []
    tab_to(page, "Email", visited)
    page.keyboard.type(EMAIL)
    tab_to(page, "Email me a link", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("sign-in link is on its way")
    message = wait_for_message(tmp_path / "var", EMAIL, count=seen + 1)
    page.goto(link_in(text_of(message), "/portal/sign-in"))
    expect(page.get_by_text("Press the button to sign in")).to_be_visible()
    assert serious_violations(page) == []
    tab_to(page, "Sign in", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def test_a_session_ended_from_another_browser_dies_at_once(
    server: str, page: Page, browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    signed_up(server, tmp_path / "var")
    phone_context = browser.new_context(user_agent=PHONE, viewport={"width": 360, "height": 800})
    try:
        phone = phone_context.new_page()
        log_in(phone, server)
        log_in(page, server)
        page.goto(f"{server}/portal/account")
        page.get_by_role("link", name="Where you are logged in").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Where you are logged in")
        expect(page.get_by_text("Chrome Mobile on Android")).to_be_visible()
        assert serious_violations(page) == []
        page.screenshot(path=artifacts / "sessions.png", full_page=True)
        visited: list[str] = []
        tab_to(page, "End the session on Chrome Mobile on Android", visited, prefix=True)
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Logged out of 1 session.")
        expect(page.get_by_text("Chrome Mobile on Android")).to_have_count(0)
        phone.goto(f"{server}/portal/")
        expect(phone.get_by_role("heading", level=1)).to_have_text("Log in")
        page.goto(f"{server}/portal/security-activity")
        expect(page.get_by_role("heading", level=1)).to_have_text("Security activity")
        expect(page.get_by_text("Logged out remotely")).to_be_visible()
        assert serious_violations(page) == []
        visited.clear()
        tab_to(page, "change your password", visited)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")
    finally:
        phone_context.close()


def test_the_password_is_changed_by_keyboard_and_other_sessions_end(
    server: str, page: Page, browser: Browser, tmp_path: Path
) -> None:
    signed_up(server, tmp_path / "var")
    other_context = browser.new_context()
    try:
        other = other_context.new_page()
        log_in(other, server)
        log_in(page, server)
        page.goto(f"{server}/portal/password")
        assert serious_violations(page) == []
        visited: list[str] = []
        tab_to(page, "Current password", visited)
        page.keyboard.type("not my password at all")
        tab_to(page, "New password", visited)
        page.keyboard.type(NEW_PASSWORD)
        tab_to(page, "Change password", visited)
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_have_text("Please fix what is marked below.")
        expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
        assert serious_violations(page) == []
        page.get_by_label("Current password").fill(STRONG_PASSWORD)
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status")).to_contain_text("logged out of 1 other session")
        other.goto(f"{server}/portal/")
        expect(other.get_by_role("heading", level=1)).to_have_text("Log in")
    finally:
        other_context.close()
