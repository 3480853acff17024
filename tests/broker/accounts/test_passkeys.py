"""Passkeys (WebAuthn) through the API, with a software authenticator that really signs: register,
name, remove, log in alone or as a second factor, and the attacks (replay, forgery, wrong challenge,
wrong origin, counter going back)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import AnyHttpUrl, ValidationError
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, sign_up
from support.factors import (
    enrol_totp,
    passkey_log_in,
    reauthenticate_with_passkey,
    reauthenticate_with_totp,
    register_passkey,
    start_login,
)
from support.webauthn import SoftAuthenticator, b64url

from broker.accounts.factor_models import Passkey
from broker.accounts.models import CustomerSession
from broker.settings import Settings

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/" + slug), response.json()


def test_a_registered_passkey_logs_in_alone(client: TestClient, db: Session) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    created = register_passkey(client, token, authenticator, "Laptop")
    assert created["name"] == "Laptop" and created["last_used_at"] is None
    options = client.post("/v1/sessions/passkey/options").json()
    assert "allowCredentials" not in options or options["allowCredentials"] == []  # usernameless
    assert options["userVerification"] == "required" and options["rpId"] == "127.0.0.1"
    response = client.post("/v1/sessions/passkey", json={"credential": authenticator.get(options)})
    assert response.status_code == 201, response.text
    assert client.get("/v1/me/profile", headers=bearer(response.json()["token"])).status_code == 200
    session = db.exec(select(CustomerSession).where(CustomerSession.auth_method == "passkey")).one()
    assert session.second_factor
    assert client.get("/v1/me/passkeys", headers=bearer(token)).json()[0]["last_used_at"] is not None


def test_registration_options_ask_for_a_discoverable_verified_credential(client: TestClient) -> None:
    token = sign_up(client)
    first = SoftAuthenticator()
    register_passkey(client, token, first)
    reauthenticate_with_passkey(client, token, first)
    options = client.post("/v1/me/passkeys/options", headers=bearer(token)).json()
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["rp"] == {"id": "127.0.0.1", "name": "Consentry"}
    assert options["user"]["name"] == "ada@example.org"
    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(first.credential_id)]


def test_several_passkeys_are_named_renamed_and_removed(client: TestClient, db: Session) -> None:
    token = sign_up(client)
    laptop, phone = SoftAuthenticator(), SoftAuthenticator()
    first = register_passkey(client, token, laptop, "Laptop")
    reauthenticate_with_passkey(client, token, laptop)
    register_passkey(client, token, phone, "Phone")
    renamed = client.patch(
        f"/v1/me/passkeys/{first['id']}", json={"name": "Work laptop"}, headers=bearer(token)
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Work laptop"
    names = [p["name"] for p in client.get("/v1/me/passkeys", headers=bearer(token)).json()]
    assert names == ["Work laptop", "Phone"]
    fresh = passkey_log_in(client, phone).json()["token"]  # a passkey sign-in is fresh and strong
    assert client.delete(f"/v1/me/passkeys/{first['id']}", headers=bearer(fresh)).status_code == 204
    _problem(passkey_log_in(client, laptop), 401, "passkey-refused")
    assert passkey_log_in(client, phone).status_code == 201
    assert b"Laptop" not in b"".join(row.credential_id + row.public_key for row in db.exec(select(Passkey)))


def test_a_replayed_assertion_is_refused(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    options = client.post("/v1/sessions/passkey/options").json()
    assertion = authenticator.get(options)
    assert client.post("/v1/sessions/passkey", json={"credential": assertion}).status_code == 201
    _problem(client.post("/v1/sessions/passkey", json={"credential": assertion}), 401, "challenge-invalid")


def test_a_forged_signature_is_refused(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    forger = SoftAuthenticator()  # another key claiming the registered credential id
    forger.credential_id, forger.user_handle = authenticator.credential_id, authenticator.user_handle
    options = client.post("/v1/sessions/passkey/options").json()
    _problem(
        client.post("/v1/sessions/passkey", json={"credential": forger.get(options)}), 401, "passkey-refused"
    )


def test_an_invented_challenge_and_a_wrong_origin_are_refused(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    invented = {"challenge": b64url(b"x" * 32)}
    _problem(
        client.post("/v1/sessions/passkey", json={"credential": authenticator.get(invented)}),
        401,
        "challenge-invalid",
    )
    options = client.post("/v1/sessions/passkey/options").json()
    phished = authenticator.get(options, origin="https://consentry.evil.example")
    _problem(client.post("/v1/sessions/passkey", json={"credential": phished}), 401, "passkey-refused")
    options = client.post("/v1/sessions/passkey/options").json()
    other_rp = authenticator.get(options, rp_id="evil.example")
    _problem(client.post("/v1/sessions/passkey", json={"credential": other_rp}), 401, "passkey-refused")


def test_a_counter_that_goes_back_is_refused(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    assert passkey_log_in(client, authenticator).status_code == 201
    options = client.post("/v1/sessions/passkey/options").json()
    cloned = authenticator.get(options, advance_counter=False)  # a cloned authenticator's counter lags
    _problem(client.post("/v1/sessions/passkey", json={"credential": cloned}), 401, "passkey-refused")


def test_an_expired_challenge_is_refused(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    options = client.post("/v1/sessions/passkey/options").json()
    clock.advance(minutes=6)
    _problem(
        client.post("/v1/sessions/passkey", json={"credential": authenticator.get(options)}),
        401,
        "challenge-invalid",
    )


def test_a_malformed_credential_is_422(client: TestClient) -> None:
    for credential in (
        {},
        {"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "!!"}},
    ):
        response = client.post("/v1/sessions/passkey", json={"credential": credential})
        _problem(response, 422, "validation")
        assert response.json()["errors"][0]["pointer"] == "/credential"


def test_a_registration_challenge_belongs_to_its_session(client: TestClient) -> None:
    token = sign_up(client)
    other = sign_up(client, "bob@example.org")
    options = client.post("/v1/me/passkeys/options", headers=bearer(token)).json()
    credential = SoftAuthenticator().create(options)
    stolen = client.post(
        "/v1/me/passkeys", json={"name": "Mine", "credential": credential}, headers=bearer(other)
    )
    _problem(stolen, 401, "challenge-invalid")


def test_the_same_passkey_cannot_be_registered_twice(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    reauthenticate_with_passkey(client, token, authenticator)
    options = client.post("/v1/me/passkeys/options", headers=bearer(token)).json()
    again = client.post(
        "/v1/me/passkeys",
        json={"name": "Again", "credential": authenticator.create(options)},
        headers=bearer(token),
    )
    _problem(again, 409, "passkey-exists")


def test_a_passkey_is_a_second_factor_after_the_password(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    pending = start_login(client)
    assert pending["methods"] == ["passkey"]
    options = pending["passkey_options"]
    assert [c["id"] for c in options["allowCredentials"]] == [b64url(authenticator.credential_id)]
    assertion = authenticator.get(options)
    done = client.post("/v1/sessions/mfa", json={"mfa_token": pending["mfa_token"], "credential": assertion})
    assert done.status_code == 201, done.text
    again = start_login(client)  # the old assertion answers an old challenge
    replay = client.post("/v1/sessions/mfa", json={"mfa_token": again["mfa_token"], "credential": assertion})
    _problem(replay, 401, "passkey-refused")


def test_a_passkey_answer_for_another_challenge_is_refused_as_second_factor(client: TestClient) -> None:
    token = sign_up(client)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    pending = start_login(client)
    login_options = client.post("/v1/sessions/passkey/options").json()
    wrong = client.post(
        "/v1/sessions/mfa",
        json={"mfa_token": pending["mfa_token"], "credential": authenticator.get(login_options)},
    )
    _problem(wrong, 401, "passkey-refused")


def test_another_customers_passkey_is_no_second_factor(client: TestClient, clock: FakeClock) -> None:
    ada = sign_up(client)
    secret, _ = enrol_totp(client, ada, clock)
    reauthenticate_with_totp(client, ada, secret, clock)  # a second factor is added with the first
    register_passkey(client, ada, SoftAuthenticator())
    bob_key = SoftAuthenticator()
    register_passkey(client, sign_up(client, "bob@example.org"), bob_key)
    pending = start_login(client)
    forged = client.post(
        "/v1/sessions/mfa",
        json={"mfa_token": pending["mfa_token"], "credential": bob_key.get(pending["passkey_options"])},
    )
    _problem(forged, 401, "passkey-refused")
    assert (
        client.post(
            "/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD}
        ).status_code
        == 200
    )


def test_the_export_names_the_sign_in_methods_but_no_secret(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, codes = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator, "Laptop")
    fresh = passkey_log_in(client, authenticator).json()["token"]
    export = client.get("/v1/me/export", headers=bearer(fresh))
    assert export.status_code == 200
    factors = export.json()["second_factors"]
    assert [p["name"] for p in factors["passkeys"]] == ["Laptop"]
    assert factors["authenticator_app_since"] is not None and factors["recovery_codes_left"] == 10
    assert secret not in export.text and codes[0] not in export.text


def test_the_relying_party_must_cover_the_public_url() -> None:
    assert Settings(base_url=AnyHttpUrl("https://app.example.com")).rp_id == "app.example.com"
    assert (
        Settings(base_url=AnyHttpUrl("https://app.example.com"), webauthn_rp_id="example.com").rp_id
        == "example.com"
    )
    with pytest.raises(ValidationError, match="must be the host of base_url"):
        Settings(base_url=AnyHttpUrl("https://app.example.com"), webauthn_rp_id="evil.example")
