"""Passkeys and the authenticator app in a real Chromium: enrol a passkey with a CDP virtual
authenticator and log in with it alone; set up TOTP (codes from pyotp) and log in with it; the new
pages pass axe and work by keyboard.

WebAuthn refuses an IP address as relying-party id, so these servers' public URL is
http://localhost:<port> (a secure context for browsers, like HTTPS).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pyotp
from playwright.sync_api import Page, expect
from support.browser import serious_violations, tab_to, virtual_authenticator
from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http

EMAIL = "ada@example.org"


def _sign_up_and_log_in(page: Page, base: str, data_dir: Path) -> None:
    with httpx.Client(base_url=base) as http:
        sign_up_over_http(http, data_dir, EMAIL)
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def _virtual_authenticator(page: Page) -> None:
    virtual_authenticator(page)


def test_a_passkey_is_enrolled_and_logs_in_alone(
    localhost: str, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    _virtual_authenticator(page)
    _sign_up_and_log_in(page, localhost, tmp_path / "var")
    page.get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Security")
    assert serious_violations(page) == []
    page.get_by_label("Name for a new passkey").fill("This browser")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status").first).to_contain_text("Passkey “This browser” added.")
    expect(page.get_by_text("This browser", exact=True)).to_be_visible()
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "security-passkey.png", full_page=True)

    page.context.clear_cookies()  # a new visit: no session, no email typed
    page.goto(f"{localhost}/portal/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def test_totp_is_set_up_and_asked_for_at_login(
    localhost: str, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    _sign_up_and_log_in(page, localhost, tmp_path / "var")
    page.goto(f"{localhost}/portal/security")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(
        page.get_by_role("img", name="QR code for your authenticator app; the same key is written below")
    ).to_be_visible()
    assert serious_violations(page) == []
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.locator(".codes li")).to_have_count(10)
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "security-totp.png", full_page=True)

    page.context.clear_cookies()
    page.goto(f"{localhost}/portal/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("One more step")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "second-factor.png", full_page=True)
    visited: list[str] = []
    tab_to(page, "Code from your authenticator app", visited)
    page.keyboard.type(pyotp.TOTP(secret).at(time.time() + 30))  # the next step's: the last one is spent
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def test_the_security_page_works_by_keyboard(localhost: str, page: Page, tmp_path: Path) -> None:
    _sign_up_and_log_in(page, localhost, tmp_path / "var")
    page.goto(f"{localhost}/portal/security")
    visited: list[str] = []
    tab_to(page, "Name for a new passkey", visited)
    tab_to(page, "Add a passkey", visited)
    tab_to(page, "Set up an authenticator app", visited)
    page.keyboard.press("Enter")
    expect(page.get_by_label("Code from the app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text()
    tab_to(page, "Code from the app", [])
    page.keyboard.type(pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    tab_to(page, "Make new recovery codes", [])
    page.keyboard.press("Enter")  # this session signed in with the password alone: confirm first
    expect(page.get_by_role("alert")).to_contain_text("Confirm it is you first")
    assert serious_violations(page) == []
    page.locator("body").focus()
    tab_to(page, "Password", [])
    page.keyboard.type(STRONG_PASSWORD)
    tab_to(page, "Code from your authenticator app", [])
    page.keyboard.type(pyotp.TOTP(secret).at(time.time() + 30))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Confirm it is you")).to_have_count(0)
    tab_to(page, "Make new recovery codes", [])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
