"""Test helpers for second factors: enrol TOTP and passkeys through the API, make codes."""

from __future__ import annotations

from typing import Any

import pyotp
from fastapi.testclient import TestClient

from support.core import STRONG_PASSWORD, FakeClock, bearer
from support.webauthn import SoftAuthenticator


def totp_code(secret: str, clock: FakeClock, *, seconds: float = 0) -> str:
    """The code an authenticator app shows at the fake clock's time (plus `seconds`)."""
    return pyotp.TOTP(secret).at(clock.now.timestamp() + seconds)


def enrol_totp(client: TestClient, token: str, clock: FakeClock) -> tuple[str, list[str]]:
    """Set up an authenticator app and confirm it; the secret and the first recovery codes.
    The clock moves on one step, so the confirming code is not the next login's code."""
    started = client.post("/v1/me/totp", headers=bearer(token))
    assert started.status_code == 201, started.text
    secret: str = started.json()["secret"]
    confirmed = client.post(
        "/v1/me/totp/confirm", json={"code": totp_code(secret, clock)}, headers=bearer(token)
    )
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(seconds=30)
    return secret, confirmed.json()["codes"]


def register_passkey(
    client: TestClient, token: str, authenticator: SoftAuthenticator, name: str = "Laptop"
) -> dict[str, Any]:
    """Add the software authenticator's passkey to the account; its public form."""
    options = client.post("/v1/me/passkeys/options", headers=bearer(token))
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json())
    created = client.post(
        "/v1/me/passkeys", json={"name": name, "credential": credential}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def start_login(
    client: TestClient, email: str = "ada@example.org", password: str = STRONG_PASSWORD
) -> dict[str, Any]:
    """The password step of a login on an account with a second factor: the pending state."""
    response = client.post("/v1/sessions", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    pending: dict[str, Any] = response.json()
    return pending


def passkey_log_in(client: TestClient, authenticator: SoftAuthenticator) -> Any:
    """A passwordless login with the authenticator's passkey; the HTTP response."""
    options = client.post("/v1/sessions/passkey/options").json()
    response = client.post("/v1/sessions/passkey", json={"credential": authenticator.get(options)})
    client.cookies.clear()
    return response


def reauthenticate_with_passkey(client: TestClient, token: str, authenticator: SoftAuthenticator) -> None:
    """Renew the session's proof with one of the account's passkeys."""
    options = client.post("/v1/sessions/current/reauthenticate/options", headers=bearer(token))
    assert options.status_code == 200, options.text
    answer = client.post(
        "/v1/sessions/current/reauthenticate",
        json={"credential": authenticator.get(options.json())},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text


def reauthenticate_with_totp(client: TestClient, token: str, secret: str, clock: FakeClock) -> None:
    """Renew the session's proof with the password and a fresh code (the clock moves on a step)."""
    clock.advance(seconds=30)
    answer = client.post(
        "/v1/sessions/current/reauthenticate",
        json={"password": STRONG_PASSWORD, "code": totp_code(secret, clock)},
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["second_factor"] is True
