"""The installed consentry-brand wheel against a live broker.

`tests/dists` (run by `make test`) installs the wheel alone, with pytest, in a fresh virtual
environment, starts a broker from the server's own environment, and runs these tests with its
address and accounts in the environment:

    CONSENTRY_URL                          the broker's base URL
    CONSENTRY_BRAND_ID, _SECRET, _REDIRECT a registered brand (`consentry brands create`)
    CONSENTRY_CUSTOMER_EMAIL, _PASSWORD    a customer with a confirmed address and a profile

The customer's part of the consent flow is done here as a browser would, over HTTP (`Browser`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlencode

import httpx
import pytest


@dataclass(frozen=True)
class Broker:
    url: str
    brand_id: str
    brand_secret: str
    redirect_uri: str
    email: str
    password: str


@pytest.fixture(scope="session")
def broker() -> Broker:
    names = ("URL", "BRAND_ID", "BRAND_SECRET", "BRAND_REDIRECT", "CUSTOMER_EMAIL", "CUSTOMER_PASSWORD")
    missing = [f"CONSENTRY_{name}" for name in names if not os.environ.get(f"CONSENTRY_{name}")]
    if missing:
        pytest.fail(f"run by tests/dists against a live broker (`make test`); {', '.join(missing)} unset")
    url, brand_id, secret, redirect, email, password = (os.environ[f"CONSENTRY_{name}"] for name in names)
    return Broker(url, brand_id, secret, redirect, email, password)


class _Form(HTMLParser):
    """The first form of a page: its hidden values and the values of its checkboxes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hidden: list[tuple[str, str]] = []
        self.checkboxes: dict[str, list[str]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag != "input" or "name" not in found:
            return
        if found.get("type") == "checkbox":
            self.checkboxes.setdefault(found["name"], []).append(found.get("value", ""))
        elif found.get("type") == "hidden":
            self.hidden.append((found["name"], found.get("value", "")))


class Browser:
    """The customer's browser: logs in at the broker's portal and approves what a brand asks."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def approve(self, authorization_url: str) -> str:
        """Follow a brand's authorization URL, log in, approve every field; the brand's callback URL."""
        with httpx.Client(base_url=self.broker.url, timeout=30) as http:
            to_login = http.get(authorization_url)
            assert to_login.status_code == 303, to_login.text
            login = _Form(http.get(to_login.headers["location"]).text)
            credentials = {"email": self.broker.email, "password": self.broker.password}
            back = http.post("/portal/login", data={**dict(login.hidden), **credentials})
            assert back.status_code == 303, back.text
            consent = _Form(http.get(back.headers["location"]).text)
            answer = [
                *consent.hidden,
                ("decision", "approve"),
                *(("fields", field) for field in consent.checkboxes.get("fields", [])),
            ]
            decided = http.post(
                "/oauth/authorize",
                content=urlencode(answer),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert decided.status_code == 302, decided.text
            callback: str = decided.headers["location"]
            return callback


@pytest.fixture
def browser(broker: Broker) -> Browser:
    return Browser(broker)
