"""The portal in a real browser: logging in, the grants page, framing refused, accessibility."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import httpx
from playwright.sync_api import Page, expect
from support.browser import serious_violations
from support.core import STRONG_PASSWORD
from support.mail import code_in, sign_up_over_http, text_of, wait_for_message


def test_a_customer_logs_in_sees_their_grants_and_logs_out(server: str, page: Page, artifacts: Path) -> None:
    email = "ada@example.org"
    assert (
        httpx.post(f"{server}/v1/customers", json={"email": email, "password": STRONG_PASSWORD}).status_code
        == 202
    )
    page.goto(f"{server}/portal/login")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "login.png", full_page=True)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is wrong.")
    expect(page.get_by_label("Email")).to_have_value(email)  # what was typed is kept
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "home.png", full_page=True)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


def test_the_portal_refuses_to_be_framed(server: str, page: Page) -> None:
    page.set_content(f'<iframe id="frame" src="{server}/portal/login" width="400" height="300"></iframe>')
    page.wait_for_timeout(1000)
    framed = [frame for frame in page.frames if frame.url.startswith(server)]
    assert all(frame.query_selector("form") is None for frame in framed), "the login form rendered in a frame"


def test_a_post_without_its_csrf_token_is_refused(server: str, page: Page) -> None:
    page.goto(f"{server}/portal/login")
    page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("This form expired; please try again.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


def test_a_new_customer_signs_up_confirms_the_address_from_the_mail_and_logs_in(
    server: str, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    page.goto(f"{server}/portal/login")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your account")
    page.get_by_label("Email").fill("grace@example.org")
    page.get_by_label("Password").fill("password1234")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_have_text("Please fix what is marked below.")
    expect(page.get_by_label("Email")).to_have_value("grace@example.org")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "signup.png", full_page=True)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "check-email.png", full_page=True)

    # The message's link opens the verify page with its code filled in; confirming needs a click.
    message = wait_for_message(tmp_path / "var", "grace@example.org")
    link = next(line for line in text_of(message).splitlines() if "/portal/verify?code=" in line)
    page.goto(link.split("link: ", 1)[1].strip())
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    expect(page.get_by_label("Code from the email")).to_have_value(code_in(message))
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "verify.png", full_page=True)
    page.get_by_role("button", name="Confirm my address").click()
    # (the login page's passkey button has a status line of its own, empty until it is used)
    notice = page.get_by_role("status").filter(has_text="confirmed")
    expect(notice).to_have_text("Your email address is confirmed. Log in to go on.")
    page.get_by_label("Email").fill("grace@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def test_a_used_code_is_refused_on_the_verify_page(server: str, page: Page, tmp_path: Path) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        sign_up_over_http(http, tmp_path / "var", "used@example.org")
    code = code_in(wait_for_message(tmp_path / "var", "used@example.org"))
    page.goto(f"{server}/portal/verify?code={code}")
    page.get_by_role("button", name="Confirm my address").click()
    expect(page.get_by_role("alert")).to_have_text("this code was already used; each code works once")
    expect(page.get_by_label("Code from the email")).to_have_attribute("aria-invalid", "true")


def test_a_customer_changes_their_email_address_by_keyboard(
    server: str, page: Page, artifacts: Path, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        sign_up_over_http(http, tmp_path / "var", "old@example.org")
    page.goto(f"{server}/portal/login?next=/portal/account/email")
    page.get_by_label("Email").fill("old@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your email address")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "email.png", full_page=True)
    page.get_by_label("New email address").focus()
    page.keyboard.type("new@example.org")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send a code to the new address")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("We sent a code to new@example.org")
    code = code_in(wait_for_message(tmp_path / "var", "new@example.org"))
    page.get_by_label("Code from the email").focus()
    page.keyboard.type(code.lower().replace("-", " "))  # typed loosely: case and separators do not matter
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Your email address is confirmed.")
    expect(page.get_by_text("new@example.org — confirmed.")).to_be_visible()
    assert serious_violations(page) == []
    told = wait_for_message(tmp_path / "var", "old@example.org", count=2)
    assert told["Subject"] == "Your Consentry email address was changed"


def test_deleting_the_account_needs_the_typed_phrase_and_ends_everything(
    server: str, page: Page, artifacts: Path
) -> None:
    email = "eve@example.org"
    assert (
        httpx.post(f"{server}/v1/customers", json={"email": email, "password": STRONG_PASSWORD}).status_code
        == 202
    )
    token = httpx.post(f"{server}/v1/sessions", json={"email": email, "password": STRONG_PASSWORD}).json()[
        "token"
    ]
    page.goto(f"{server}/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{server}/portal/grants/{uuid4()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("No such grant")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "error.png", full_page=True)
    page.goto(f"{server}/portal/")
    page.get_by_role("link", name="Your account").click()
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "account.png", full_page=True)
    page.get_by_label("To confirm, type").fill("delete it")
    page.get_by_role("button", name="Delete my account for good").click()
    expect(page.get_by_role("alert")).to_contain_text("delete my account")
    expect(page.get_by_label("To confirm, type")).to_have_value("delete it")
    page.get_by_label("To confirm, type").fill("delete my account")
    page.get_by_role("button", name="Delete my account for good").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account is deleted")
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "deleted.png", full_page=True)
    assert (
        httpx.get(f"{server}/v1/me/profile", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    page.goto(f"{server}/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")


def test_the_profile_editor_explains_each_mistake_and_keeps_what_was_typed(
    server: str, page: Page, artifacts: Path
) -> None:
    email = "ada@example.org"
    httpx.post(f"{server}/v1/customers", json={"email": email, "password": STRONG_PASSWORD})
    page.goto(f"{server}/portal/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Your profile").click()
    expect(page.get_by_label("Email address")).to_have_value(email)
    page.get_by_label("Given name").fill("Ada")
    page.get_by_label("Phone number").fill("not a phone")
    page.get_by_label("Household size").fill("-2")
    page.get_by_label("vegan").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_have_text("Please fix what is marked below.")
    expect(page.get_by_label("Phone number")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Household size")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Given name")).to_have_value("Ada")
    expect(page.get_by_label("Phone number")).to_have_value("not a phone")
    expect(page.get_by_label("vegan")).to_be_checked()
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "profile.png", full_page=True)
    page.get_by_label("Phone number").fill("+44 20 7946 0958")
    page.get_by_label("Household size").fill("2")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_label("Phone number")).to_have_value("+442079460958")
