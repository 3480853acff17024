"""TOTP (RFC 6238) and recovery codes: enrolment, login with a second factor, and the attacks on them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, sign_up
from support.factors import enrol_totp, reauthenticate_with_totp, start_login, totp_code

from broker.accounts.factor_models import RecoveryCode
from broker.accounts.models import CustomerSession
from vault.models import VaultSecret

PROBLEM = "application/problem+json"


def _mfa(client: TestClient, token: str, **proof: str) -> tuple[int, dict[str, object]]:
    response = client.post("/v1/sessions/mfa", json={"mfa_token": token, **proof})
    client.cookies.clear()
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM
    return response.status_code, response.json()


def test_enrolment_shows_a_qr_code_and_keeps_the_secret_only_sealed(
    client: TestClient, db: Session, clock: FakeClock
) -> None:
    token = sign_up(client)
    started = client.post("/v1/me/totp", headers=bearer(token)).json()
    assert started["otpauth_uri"].startswith("otpauth://totp/Consentry:")
    assert f"secret={started['secret']}" in started["otpauth_uri"]
    assert started["qr_svg"].startswith("<svg") and "http" not in started["qr_svg"].split("xmlns")[0]
    sealed = db.exec(select(VaultSecret).where(VaultSecret.label == "totp")).one()
    assert started["secret"].encode() not in sealed.ciphertext
    assert client.get("/v1/me/totp", headers=bearer(token)).json() == {"enabled": False, "pending": True}


def test_a_wrong_first_code_does_not_turn_totp_on(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    client.post("/v1/me/totp", headers=bearer(token))
    wrong = client.post("/v1/me/totp/confirm", json={"code": "000000"}, headers=bearer(token))
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["pointer"] == "/code"
    assert "wrong" in wrong.json()["detail"]
    letters = client.post("/v1/me/totp/confirm", json={"code": "abcdef"}, headers=bearer(token))
    assert letters.status_code == 422 and "6 digits" in letters.json()["detail"]
    assert client.get("/v1/me/totp", headers=bearer(token)).json()["enabled"] is False
    assert (
        client.post(
            "/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD}
        ).status_code
        == 201
    )


def test_login_with_totp_needs_the_code_and_records_the_second_factor(
    client: TestClient, db: Session, clock: FakeClock
) -> None:
    token = sign_up(client)
    secret, codes = enrol_totp(client, token, clock)
    assert len(codes) == 10 and len(set(codes)) == 10
    pending = start_login(client)
    assert "token" not in pending
    assert pending["methods"] == ["totp", "recovery_code"]
    assert pending["mfa_token"].startswith("mfa_") and pending["passkey_options"] is None
    status, body = _mfa(client, pending["mfa_token"], code=totp_code(secret, clock))
    assert status == 201, body
    assert client.get("/v1/me/profile", headers=bearer(str(body["token"]))).status_code == 200
    newest = db.exec(select(CustomerSession).where(CustomerSession.auth_method == "password+totp")).one()
    assert newest.second_factor and newest.authenticated_at == clock.now


def test_a_totp_code_is_good_once(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    code = totp_code(secret, clock)
    assert _mfa(client, start_login(client)["mfa_token"], code=code)[0] == 201
    status, body = _mfa(client, start_login(client)["mfa_token"], code=code)
    assert status == 401
    assert body["type"].endswith("/second-factor-refused")
    assert "already used" in str(body["detail"])


def test_wrong_and_stale_codes_are_refused_with_a_clear_problem(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    pending = start_login(client)
    for code in ("123456", totp_code(secret, clock, seconds=-300), "12345"):
        status, body = _mfa(client, pending["mfa_token"], code=code)
        assert status == 401, code
        assert body["type"].endswith("/second-factor-refused")
    assert _mfa(client, pending["mfa_token"], code=totp_code(secret, clock, seconds=30))[0] == 201  # drift


def test_an_mfa_token_is_single_use_and_expires(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    pending = start_login(client)
    assert _mfa(client, pending["mfa_token"], code=totp_code(secret, clock))[0] == 201
    clock.advance(seconds=30)
    status, body = _mfa(client, pending["mfa_token"], code=totp_code(secret, clock))
    assert status == 401 and body["type"].endswith("/login-step-expired")
    late = start_login(client)
    clock.advance(minutes=6)
    status, body = _mfa(client, late["mfa_token"], code=totp_code(secret, clock))
    assert status == 401 and "start again with your password" in str(body["detail"])
    assert _mfa(client, "mfa_forged", code="123456")[0] == 401


def test_five_wrong_codes_void_the_pending_login(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    pending = start_login(client)
    for _ in range(5):
        assert _mfa(client, pending["mfa_token"], code="000000")[0] == 401
    status, body = _mfa(client, pending["mfa_token"], code=totp_code(secret, clock))
    assert status == 401 and body["type"].endswith("/login-step-expired")


def test_exactly_one_factor_must_be_sent(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, codes = enrol_totp(client, token, clock)
    pending = start_login(client)
    status, body = _mfa(client, pending["mfa_token"])
    assert status == 422 and "exactly one" in str(body["detail"])
    status, _ = _mfa(client, pending["mfa_token"], code=totp_code(secret, clock), recovery_code=codes[0])
    assert status == 422


def test_a_recovery_code_works_once_and_is_stored_hashed(
    client: TestClient, db: Session, clock: FakeClock
) -> None:
    token = sign_up(client)
    _, codes = enrol_totp(client, token, clock)
    stored = db.exec(select(RecoveryCode)).all()
    assert len(stored) == 10 and all(codes[0].encode() not in row.code_hash for row in stored)
    assert _mfa(client, start_login(client)["mfa_token"], recovery_code=codes[0].upper())[0] == 201
    status, body = _mfa(client, start_login(client)["mfa_token"], recovery_code=codes[0])
    assert status == 401 and "already used" in str(body["detail"])
    assert client.get("/v1/me/recovery-codes", headers=bearer(token)).json() == {"remaining": 9}


def test_new_recovery_codes_void_the_old_ones(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, old = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    made = client.post("/v1/me/recovery-codes", headers=bearer(token))
    assert made.status_code == 201
    new = made.json()["codes"]
    assert not set(new) & set(old)
    assert _mfa(client, start_login(client)["mfa_token"], recovery_code=old[1])[0] == 401
    assert _mfa(client, start_login(client)["mfa_token"], recovery_code=new[1])[0] == 201


def test_recovery_codes_need_a_second_factor(client: TestClient) -> None:
    token = sign_up(client)
    refused = client.post("/v1/me/recovery-codes", headers=bearer(token))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/no-second-factor")


def test_a_second_authenticator_needs_the_first_removed(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    again = client.post("/v1/me/totp", headers=bearer(token))
    assert again.status_code == 409 and again.json()["type"].endswith("/totp-enrolled")


def test_removing_totp_ends_the_second_step_and_voids_recovery_codes(
    client: TestClient, clock: FakeClock
) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    assert client.delete("/v1/me/totp", headers=bearer(token)).status_code == 204
    assert client.get("/v1/me/recovery-codes", headers=bearer(token)).json() == {"remaining": 0}
    assert (
        client.post(
            "/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD}
        ).status_code
        == 201
    )
    assert client.delete("/v1/me/totp", headers=bearer(token)).status_code == 404
