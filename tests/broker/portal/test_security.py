"""The portal's second-factor step, passkey login, Security page and inline step-up (in-process; the
browser journeys are in tests/e2e/test_security.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from support.core import STRONG_PASSWORD, FakeClock, sign_up
from support.factors import enrol_totp, register_passkey, totp_code
from support.oauth import portal_login
from support.webauthn import SoftAuthenticator


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def _post(client: TestClient, path: str, page: str, **data: str) -> Any:
    return client.post(path, data={"csrf_token": _hidden(page, "csrf_token"), **data}, follow_redirects=False)


def test_the_security_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/portal/security", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/portal/login")


def test_a_portal_login_with_totp_asks_for_the_code(client: TestClient, clock: FakeClock) -> None:
    secret, _ = enrol_totp(client, sign_up(client), clock)
    step = portal_login(client, "ada@example.org")
    assert step.status_code == 200 and "One more step" in step.text
    assert "consentry_session" not in step.headers.get("set-cookie", "")
    wrong = _post(
        client,
        "/portal/login/second-factor",
        step.text,
        mfa_token=_hidden(step.text, "mfa_token"),
        code="000000",
    )
    assert wrong.status_code == 401 and "wrong" in wrong.text and "One more step" in wrong.text
    done = _post(
        client,
        "/portal/login/second-factor",
        step.text,
        mfa_token=_hidden(step.text, "mfa_token"),
        code=totp_code(secret, clock),
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/"
    assert client.get("/portal/security").status_code == 200


def test_a_passkey_logs_in_to_the_portal_alone(client: TestClient) -> None:
    authenticator = SoftAuthenticator()
    register_passkey(client, sign_up(client), authenticator)
    page = client.get("/portal/login").text
    assert 'data-options-url="/v1/sessions/passkey/options"' in page
    options = client.post("/v1/sessions/passkey/options").json()
    done = _post(client, "/portal/login/passkey", page, credential=json.dumps(authenticator.get(options)))
    assert done.status_code == 303
    security = client.get("/portal/security")
    assert security.status_code == 200 and "Laptop" in security.text


def test_setting_up_totp_in_the_portal_shows_a_qr_code_then_the_recovery_codes_once(
    client: TestClient, clock: FakeClock
) -> None:
    sign_up(client)
    portal_login(client, "ada@example.org")
    page = client.get("/portal/security").text
    started = _post(client, "/portal/security/totp", page)
    text = started.text
    assert 'src="data:image/svg+xml' in text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', text)
    assert secret
    confirmed = _post(
        client, "/portal/security/totp/confirm", page, code=pyotp.TOTP(secret.group(1)).at(clock.now)
    )
    assert "Your recovery codes" in confirmed.text and confirmed.text.count("<li>") >= 10
    assert "Your recovery codes" not in client.get("/portal/security").text


def test_removing_a_factor_in_the_portal_asks_to_confirm_it_is_you(
    client: TestClient, clock: FakeClock
) -> None:
    secret, _ = enrol_totp(client, sign_up(client), clock)
    step = portal_login(client, "ada@example.org")
    _post(
        client,
        "/portal/login/second-factor",
        step.text,
        mfa_token=_hidden(step.text, "mfa_token"),
        code=totp_code(secret, clock),
    )
    clock.advance(minutes=6)
    page = client.get("/portal/security").text
    assert "Confirm it is you" in page
    refused = _post(client, "/portal/security/totp/remove", page)
    assert refused.status_code == 403 and "Confirm it is you first" in refused.text
    failed = _post(
        client,
        "/portal/reauthenticate",
        page,
        password=STRONG_PASSWORD,
        code="000000",
        next="/portal/security",
    )
    assert failed.headers["location"] == "/portal/security?reauth=failed"
    confirmed = _post(
        client,
        "/portal/reauthenticate",
        page,
        password=STRONG_PASSWORD,
        code=totp_code(secret, clock, seconds=30),
        next="/portal/security",
    )
    assert confirmed.headers["location"] == "/portal/security"
    removed = _post(client, "/portal/security/totp/remove", client.get("/portal/security").text)
    assert removed.status_code == 200 and "Authenticator app removed." in removed.text


def test_deleting_the_account_in_the_portal_needs_a_fresh_sign_in(
    client: TestClient, clock: FakeClock
) -> None:
    sign_up(client)
    portal_login(client, "ada@example.org")
    clock.advance(minutes=6)
    page = client.get("/portal/account").text
    assert "Confirm it is you" in page and 'href="/v1/me/export"' not in page
    refused = _post(client, "/portal/account/delete", page, confirm="delete my account")
    assert refused.status_code == 403
    _post(client, "/portal/reauthenticate", page, password=STRONG_PASSWORD, next="/portal/account")
    page = client.get("/portal/account").text
    assert 'href="/v1/me/export"' in page
    deleted = _post(client, "/portal/account/delete", page, confirm="delete my account")
    assert deleted.status_code == 200 and "deleted" in deleted.text


NEW_PASSWORD = "quartz-heron-lattice-72-meadow"


def test_changing_the_password_or_the_email_in_the_portal_needs_a_fresh_sign_in(
    client: TestClient, clock: FakeClock
) -> None:
    sign_up(client)
    portal_login(client, "ada@example.org")
    clock.advance(minutes=6)
    page = client.get("/portal/password").text
    assert "Confirm it is you" in page
    refused = _post(
        client, "/portal/password", page, current_password=STRONG_PASSWORD, new_password=NEW_PASSWORD
    )
    assert refused.status_code == 403 and "Confirm it is you first" in refused.text
    email_page = client.get("/portal/account/email").text
    assert "Confirm it is you" in email_page
    moved = _post(client, "/portal/account/email", email_page, email="thief@example.org")
    assert moved.status_code == 403 and "We sent a code" not in moved.text
    back = _post(client, "/portal/reauthenticate", page, password=STRONG_PASSWORD, next="/portal/password")
    assert back.headers["location"] == "/portal/password"
    page = client.get("/portal/password").text
    assert "Confirm it is you" not in page
    done = _post(
        client, "/portal/password", page, current_password=STRONG_PASSWORD, new_password=NEW_PASSWORD
    )
    assert done.status_code == 200 and "Your password is changed" in done.text
