"""Step-up: deleting the account, exporting everything and removing a factor need a recent sign-in,
with the second factor when one is set up. The attack: a session token stolen hours ago (or opened
with a stolen password alone) must not be enough to take everything or to strip a second factor."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, sign_up
from support.factors import enrol_totp, passkey_log_in, reauthenticate_with_totp, register_passkey, totp_code
from support.webauthn import SoftAuthenticator

from broker.accounts.factor_models import LoginChallenge, Passkey, RecoveryCode, TotpFactor

PROBLEM = "application/problem+json"
REAUTH = "/v1/sessions/current/reauthenticate"


def _needs_reauthentication(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://consentry.dev/problems/reauthentication-required"
    assert body["reauthenticate"] == REAUTH and "password" in body["methods"]
    assert REAUTH in body["detail"]


def test_an_old_session_must_confirm_before_export_and_deletion(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    assert client.get("/v1/me/export", headers=bearer(token)).status_code == 200  # just opened: fresh
    clock.advance(minutes=6)
    _needs_reauthentication(client.get("/v1/me/export", headers=bearer(token)))
    _needs_reauthentication(client.delete("/v1/me", headers=bearer(token)))
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 200  # the rest still works
    renewed = client.post(REAUTH, json={"password": STRONG_PASSWORD}, headers=bearer(token))
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["second_factor"] is False and renewed.json()["method"] == "password"
    assert client.delete("/v1/me", headers=bearer(token)).status_code == 200


def test_a_wrong_password_does_not_renew_the_session(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    clock.advance(minutes=6)
    wrong = client.post(REAUTH, json={"password": "not-my-password-at-all"}, headers=bearer(token))
    assert wrong.status_code == 401 and wrong.json()["type"].endswith("/invalid-credentials")
    _needs_reauthentication(client.get("/v1/me/export", headers=bearer(token)))
    missing = client.post(REAUTH, json={}, headers=bearer(token))
    assert missing.status_code == 422 and "password" in missing.json()["detail"]


def test_with_a_second_factor_the_password_alone_is_not_enough(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    _needs_reauthentication(client.get("/v1/me/export", headers=bearer(token)))  # opened with a password only
    _needs_reauthentication(client.delete("/v1/me/totp", headers=bearer(token)))
    alone = client.post(REAUTH, json={"password": STRONG_PASSWORD}, headers=bearer(token))
    assert alone.status_code == 422 and "code" in alone.json()["detail"]
    wrong = client.post(REAUTH, json={"password": STRONG_PASSWORD, "code": "000000"}, headers=bearer(token))
    assert wrong.status_code == 401 and wrong.json()["type"].endswith("/second-factor-refused")
    right = client.post(
        REAUTH, json={"password": STRONG_PASSWORD, "code": totp_code(secret, clock)}, headers=bearer(token)
    )
    assert right.status_code == 200 and right.json()["second_factor"] is True
    assert client.get("/v1/me/export", headers=bearer(token)).status_code == 200
    clock.advance(minutes=6)
    _needs_reauthentication(client.delete("/v1/me/totp", headers=bearer(token)))


def test_a_passkey_confirms_it_is_you(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    passkey = register_passkey(client, token, authenticator)
    _needs_reauthentication(client.delete(f"/v1/me/passkeys/{passkey['id']}", headers=bearer(token)))
    options = client.post(f"{REAUTH}/options", headers=bearer(token)).json()
    assert len(options["allowCredentials"]) == 1
    renewed = client.post(REAUTH, json={"credential": authenticator.get(options)}, headers=bearer(token))
    assert renewed.status_code == 200 and renewed.json() == {
        "authenticated_at": renewed.json()["authenticated_at"],
        "second_factor": True,
        "method": "passkey",
    }
    assert client.delete(f"/v1/me/passkeys/{passkey['id']}", headers=bearer(token)).status_code == 204


def test_a_reauthentication_challenge_belongs_to_its_session(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    other = passkey_log_in(client, authenticator).json()["token"]
    options = client.post(f"{REAUTH}/options", headers=bearer(token)).json()
    stolen = client.post(REAUTH, json={"credential": authenticator.get(options)}, headers=bearer(other))
    assert stolen.status_code == 401 and stolen.json()["type"].endswith("/challenge-invalid")


def test_a_password_does_not_excuse_a_replayed_passkey_answer(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    options = client.post(f"{REAUTH}/options", headers=bearer(token)).json()
    answer = authenticator.get(options)
    assert client.post(REAUTH, json={"credential": answer}, headers=bearer(token)).status_code == 200
    replayed = client.post(
        REAUTH, json={"password": STRONG_PASSWORD, "credential": answer}, headers=bearer(token)
    )
    assert replayed.status_code == 401 and replayed.json()["type"].endswith("/challenge-invalid")


def test_a_login_challenge_cannot_renew_a_session(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    login_options = client.post("/v1/sessions/passkey/options").json()
    crossed = client.post(
        REAUTH, json={"credential": authenticator.get(login_options)}, headers=bearer(token)
    )
    assert crossed.status_code == 401 and crossed.json()["type"].endswith("/challenge-invalid")


def test_deleting_the_account_takes_its_factors_and_challenges_along(
    client: TestClient, db: Session, clock: FakeClock
) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    fresh = passkey_log_in(client, authenticator).json()["token"]
    client.post(f"{REAUTH}/options", headers=bearer(fresh))
    client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})  # pending
    assert client.delete("/v1/me", headers=bearer(fresh)).status_code == 200
    for table in (Passkey, TotpFactor, RecoveryCode, LoginChallenge):
        assert db.exec(select(table)).all() == [], table.__name__
    assert passkey_log_in(client, authenticator).status_code == 401


NEW_PASSWORD = "quartz-heron-lattice-72-meadow"


def test_an_old_session_must_confirm_before_changing_the_password_or_the_email(
    client: TestClient, clock: FakeClock
) -> None:
    # A session token stolen an hour ago must not be enough to take the account over by changing
    # the password or pointing the login at the thief's mailbox.
    token = sign_up(client)
    clock.advance(minutes=6)
    change = {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    _needs_reauthentication(client.post("/v1/me/password", json=change, headers=bearer(token)))
    _needs_reauthentication(
        client.post("/v1/me/email", json={"email": "thief@example.org"}, headers=bearer(token))
    )
    renewed = client.post(REAUTH, json={"password": STRONG_PASSWORD}, headers=bearer(token))
    assert renewed.status_code == 200, renewed.text
    assert client.post("/v1/me/password", json=change, headers=bearer(token)).status_code == 204
    moved = client.post("/v1/me/email", json={"email": "new@example.org"}, headers=bearer(token))
    assert moved.status_code == 202, moved.text


def test_with_a_second_factor_the_password_change_needs_it_too(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    enrol_totp(client, token, clock)
    change = {"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    # The session was opened with the password alone: knowing the password is not the second factor.
    _needs_reauthentication(client.post("/v1/me/password", json=change, headers=bearer(token)))


def test_adding_a_second_factor_needs_a_fresh_sign_in(client: TestClient, clock: FakeClock) -> None:
    # The attack: a stolen session adds the thief's own passkey (or authenticator app), then uses it
    # to "confirm it is you" and takes everything. Adding a factor is itself a step-up action.
    token = sign_up(client)
    clock.advance(minutes=6)
    _needs_reauthentication(client.post("/v1/me/passkeys/options", headers=bearer(token)))
    _needs_reauthentication(
        client.post("/v1/me/passkeys", json={"name": "Thief", "credential": {}}, headers=bearer(token))
    )
    _needs_reauthentication(client.post("/v1/me/totp", headers=bearer(token)))
    _needs_reauthentication(
        client.post("/v1/me/totp/confirm", json={"code": "123456"}, headers=bearer(token))
    )
    assert client.post(REAUTH, json={"password": STRONG_PASSWORD}, headers=bearer(token)).status_code == 200
    register_passkey(client, token, SoftAuthenticator())


def test_an_unconfirmed_address_cannot_have_second_factors(client: TestClient) -> None:
    # The attack: someone signs up with another person's address (the account waits unconfirmed)
    # and adds their own factors, so that the owner who later takes the address back by a reset
    # still finds the door held by the squatter's passkey or authenticator app.
    token = sign_up(client, verify=False)
    for response in (
        client.post("/v1/me/passkeys/options", headers=bearer(token)),
        client.post("/v1/me/totp", headers=bearer(token)),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "https://consentry.dev/problems/email-unverified"
        assert "confirm your email address" in response.json()["detail"]
