"""A customer consenting over real HTTP, for tests that drive a live server with a third-party client."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx

from support.core import STRONG_PASSWORD
from support.mail import sign_up_over_http
from support.oauth import parse_form


def customer_consents(base: str, authorization_url: str, data_dir: Path) -> str:
    """A customer's browser: sign up (confirming the address from the server's mail), fill the profile,
    log in, approve; returns the brand callback URL."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        sign_up_over_http(browser, data_dir, "ada@example.org")
        token = browser.post(
            "/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD}
        ).json()["token"]
        profile = {"email": "ada@example.org", "dietary": ["vegetarian"], "household_size": 2}
        assert (
            browser.patch(
                "/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        browser.cookies.clear()
        return approves(browser, authorization_url, "ada@example.org", "Green Grocer")


def approves(browser: httpx.Client, authorization_url: str, email: str, brand: str) -> str:
    """A signed-up customer's browser (logged out): follow the brand's link, log in, share every
    field asked; returns the brand callback URL."""
    to_login = browser.get(authorization_url, follow_redirects=False)
    assert to_login.status_code == 303
    login_page = browser.get(to_login.headers["location"])
    form = dict(parse_form(login_page.text).fields)
    back = browser.post(
        "/portal/login",
        data={**form, "email": email, "password": STRONG_PASSWORD},
        follow_redirects=False,
    )
    assert back.status_code == 303
    consent_page = browser.get(back.headers["location"])
    assert consent_page.status_code == 200 and brand in consent_page.text
    consent = parse_form(consent_page.text)
    answer = [
        *consent.fields,
        ("decision", "approve"),
        *(("fields", f) for f in consent.checkboxes["fields"]),
        ("special_consent", "yes"),  # dietary is special category: it needs its own explicit tick
    ]
    decided = browser.post(
        "/oauth/authorize",
        content=urlencode(answer),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert decided.status_code == 302, decided.text[decided.text.find("<main") :][:1500]
    location: str = decided.headers["location"]
    return location
