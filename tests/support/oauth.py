"""Test support for OAuth: brands, PKCE, brand tokens, offers, and a customer clicking through consent."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from fastapi.testclient import TestClient

from support.core import STRONG_PASSWORD, cli_env

ISSUER = "http://127.0.0.1:8000"
REDIRECT = "https://grocer.example/callback"

OFFER = {
    "title": "Weekly recipes for you",
    "description": "We tailor our weekly recipe box to your diet and household.",
    "required_fields": ["email", "dietary"],
    "optional_fields": ["household_size", "age_band", "given_name"],
    "purpose": "personalised_offers",
    "purpose_explanation": "We pick recipes that fit what you eat and how many you cook for.",
    "grant_duration_days": 180,
    "retention_days": 30,
    "recipients": [],
    "value": {"kind": "voucher", "amount": "10.00", "currency": "EUR",
              "description": "10 EUR off your next box", "due": {"when": "within_days", "days": 7}},
}  # fmt: skip


@dataclass(frozen=True)
class BrandCredentials:
    """A registered brand's client id and secret (None for a public brand)."""

    client_id: str
    client_secret: str | None

    def auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials for the token endpoint, or None for a public brand."""
        return (self.client_id, self.client_secret) if self.client_secret else None


def pkce() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class FormParser(HTMLParser):
    """Collects the inputs of the first form on a page: hidden values and checkbox states."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.checkboxes: dict[str, list[str]] = {}
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        if tag != "input" or "name" not in a:
            return
        if a.get("type") == "checkbox":
            self.checkboxes.setdefault(a["name"], []).append(a.get("value", ""))
        elif a.get("type") == "hidden":
            self.fields.append((a["name"], a.get("value", "")))


def parse_form(html: str) -> FormParser:
    """Parse a page's form."""
    parser = FormParser()
    parser.feed(html)
    return parser


def form_token(http: TestClient | httpx.Client, path: str = "/portal/") -> str:
    """The CSRF token a page's forms carry for this browser (bound to its session, or to none)."""
    return dict(parse_form(http.get(path).text).fields)["csrf_token"]


def brand_token(
    http: TestClient | httpx.Client,
    brand: BrandCredentials,
    scope: str = "offers:write offers:read grants:read grants:write",
) -> str:
    """A brand-level access token from the client credentials grant."""
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=brand.auth()
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def publish_offer(http: TestClient | httpx.Client, token: str, **changes: Any) -> dict[str, Any]:
    """Publish an offer (the defaults above, with changes) and return it."""
    response = http.post(
        "/v1/offers", json={**OFFER, **changes}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    offer: dict[str, Any] = response.json()
    return offer


def authorize_params(brand: BrandCredentials, offer_id: str, challenge: str, **extra: str) -> dict[str, str]:
    """A well-formed authorization request for an offer."""
    return {
        "response_type": "code",
        "client_id": brand.client_id,
        "redirect_uri": REDIRECT,
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "offer": offer_id,
        **extra,
    }


def portal_login(
    http: TestClient | httpx.Client, email: str, password: str = STRONG_PASSWORD, next_path: str = "/portal/"
) -> httpx.Response:
    """Log in through the portal's form (with its CSRF token); returns the redirect response."""
    page = http.get("/portal/login", params={"next": next_path})
    form = dict(parse_form(page.text).fields)
    return http.post(
        "/portal/login", data={**form, "email": email, "password": password}, follow_redirects=False
    )


def consent(
    http: TestClient | httpx.Client,
    params: dict[str, str],
    *,
    decision: str = "approve",
    untick: tuple[str, ...] = (),
    special_consent: bool = True,
    purposes: tuple[str, ...] | None = None,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    """As a logged-in customer: open the consent screen for `params` and answer it (agreeing, for an
    offer of several purposes, to `purposes`: all of them when None; `extra`: hidden fields set, as a
    script of the page would)."""
    page = http.get("/oauth/authorize", params=params, follow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.headers.get("location"), page.text[:500])
    form = parse_form(page.text)
    extra = extra or {}
    data = [*((k, v) for k, v in form.fields if k not in extra), *extra.items(), ("decision", decision)]
    data += [("fields", f) for f in form.checkboxes.get("fields", []) if f not in untick]
    offered = form.checkboxes.get("purposes", [])
    data += [("purposes", p) for p in offered if purposes is None or p in purposes]
    if special_consent and "special_consent" in form.checkboxes:
        data.append(("special_consent", "yes"))
    return http.post(
        "/oauth/authorize",
        content=urlencode(data),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect to the brand."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(
    http: TestClient | httpx.Client, brand: BrandCredentials, code: str, verifier: str, **extra: str
) -> httpx.Response:
    """Trade an authorization code for tokens."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **extra,
    }
    if brand.client_secret is None:
        data["client_id"] = brand.client_id
    return http.post("/oauth/token", data=data, auth=brand.auth())


def authorized(
    client: TestClient | httpx.Client,
    brand: BrandCredentials,
    offer: dict[str, Any],
    *,
    issuer: str = ISSUER,
    **consent_args: Any,
) -> dict[str, Any]:
    """Run the whole consent flow for the logged-in customer; the token response plus code and verifier."""
    verifier, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge)
    answer = redirect_params(consent(client, params, **consent_args))
    assert answer["state"] == params["state"] and answer["iss"] == issuer
    tokens = exchange(client, brand, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    return {"code": answer["code"], "verifier": verifier, **tokens.json()}


def grant_id_of(http: TestClient | httpx.Client, brand: BrandCredentials, tokens: dict[str, Any]) -> str:
    """The grant an access token belongs to, as the brand learns it from introspection."""
    answer = http.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth())
    assert answer.status_code == 200, answer.text
    grant_id: str = answer.json()["grant_id"]
    return grant_id


def create_brand_with_cli(
    data_dir: Path,
    database_url: str,
    name: str = "Green Grocer",
    redirect_uri: str = REDIRECT,
    jwks: Path | None = None,
) -> tuple[str, str]:
    """Register a brand with `consentry brands create` (with the public keys of the file `jwks`, if
    given): (client_id, secret)."""
    consentry = str(Path(sys.executable).parent / "consentry")
    keys = ["--jwks", str(jwks)] if jwks is not None else []
    created = subprocess.run(
        [consentry, "brands", "create", "--name", name, "--redirect-uri", redirect_uri, *keys],
        env=cli_env(data_dir, database_url), check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    credentials = json.loads(created.stdout)
    return credentials["client_id"], credentials["client_secret"]
