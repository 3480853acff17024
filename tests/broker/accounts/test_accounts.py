"""Sign-up, log-in, log-out, and the attacks on them."""

from __future__ import annotations

import dataclasses
import statistics
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import AnyHttpUrl
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, log_in, sign_up

from broker.accounts.models import Customer, CustomerSession
from broker.accounts.passwords import Passwords
from broker.app import create_app
from broker.errors import InvalidCredentials
from broker.runtime import Runtime

PROBLEM = "application/problem+json"


def test_sign_up_creates_an_unverified_account_without_storing_the_email(
    client: TestClient, db: Session
) -> None:
    response = client.post("/v1/customers", json={"email": "Ada@Example.org", "password": STRONG_PASSWORD})
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    customer = db.exec(select(Customer)).one()
    assert customer.email_verified_at is None
    assert b"example" not in customer.email_index.lower() and len(customer.email_index) == 32
    assert customer.password_hash.startswith("$argon2id$")
    assert STRONG_PASSWORD not in customer.password_hash


def test_a_taken_email_makes_no_second_account_whatever_its_case(client: TestClient, db: Session) -> None:
    sign_up(client, "ada@example.org")
    again = client.post("/v1/customers", json={"email": " ADA@example.org ", "password": STRONG_PASSWORD})
    assert again.status_code == 202
    assert len(db.exec(select(Customer)).all()) == 1


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-pw-1", "at least 12 characters"),
        ("qwerty123456", "commonly used"),
        ("passwordpassword", "commonly used|too easy to guess"),
        ("aaaaaaaaaaaaaaaa", "too easy to guess"),
        ("x" * 257, "at most 256"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(client: TestClient, password: str, message: str) -> None:
    response = client.post("/v1/customers", json={"email": "ada@example.org", "password": password})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["pointer"] == "/password"
    assert any(part in body["detail"] for part in message.split("|")), body["detail"]


@pytest.mark.parametrize("email", ["not-an-email", "ada@", "@example.org", "ada@@example.org", ""])
def test_invalid_email_is_422_on_the_email_field(client: TestClient, email: str) -> None:
    response = client.post("/v1/customers", json={"email": email, "password": STRONG_PASSWORD})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/email"


def test_missing_or_extra_credentials_fields_are_422(client: TestClient) -> None:
    missing = client.post("/v1/customers", json={"email": "ada@example.org"})
    assert missing.status_code == 422 and "password is required" in missing.json()["detail"]
    extra = client.post(
        "/v1/customers", json={"email": "a@example.org", "password": STRONG_PASSWORD, "admin": True}
    )
    assert extra.status_code == 422 and "unknown field 'admin'" in extra.json()["detail"]


def test_log_in_returns_a_token_and_a_strict_session_cookie(client: TestClient) -> None:
    client.post("/v1/customers", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    response = client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    assert response.status_code == 201
    token = response.json()["token"]
    assert token.startswith("cst_") and len(token) > 40
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # base URL is http here; HTTPS deployments get Secure


def test_session_cookie_is_secure_behind_https(runtime: Runtime) -> None:
    https = dataclasses.replace(
        runtime,
        settings=runtime.settings.model_copy(update={"base_url": AnyHttpUrl("https://vault.example")}),
    )
    with TestClient(create_app(runtime=https)) as client:
        client.post("/v1/customers", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
        response = client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
        assert "secure" in response.headers["set-cookie"].lower()
        assert "strict-transport-security" in response.headers


def test_every_login_gets_a_new_session(client: TestClient, db: Session) -> None:
    first = sign_up(client)
    second = log_in(client, "ada@example.org")
    assert first != second
    assert len(db.exec(select(CustomerSession)).all()) == 2


def test_wrong_password_and_unknown_email_get_the_same_401(client: TestClient) -> None:
    sign_up(client)
    wrong = client.post(
        "/v1/sessions", json={"email": "ada@example.org", "password": "wrong-password-entirely"}
    )
    unknown = client.post(
        "/v1/sessions", json={"email": "nobody@example.org", "password": "wrong-password-entirely"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["content-type"] == unknown.headers["content-type"] == PROBLEM


def test_unknown_email_costs_as_much_as_a_wrong_password(runtime: Runtime, db: Session) -> None:
    # Both paths must run one full argon2 verification; compare medians with a cost that dominates.
    accounts = dataclasses.replace(
        runtime.accounts, passwords=Passwords(time_cost=2, memory_kib=16 * 1024, parallelism=1)
    )
    accounts.sign_up(db, "ada@example.org", STRONG_PASSWORD)
    db.commit()

    def attempt(email: str) -> float:
        started = time.perf_counter()
        with pytest.raises(InvalidCredentials):
            accounts.verify_password(db, email, "wrong-password-entirely", address="192.0.2.1")
        elapsed = time.perf_counter() - started
        db.rollback()  # forget the failure so the throttle never adds a delay
        return elapsed

    known = statistics.median(attempt("ada@example.org") for _ in range(5))
    unknown = statistics.median(attempt("nobody@example.org") for _ in range(5))
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def test_forged_and_malformed_tokens_are_401(client: TestClient) -> None:
    sign_up(client)
    for headers in (
        bearer("cst_forged-token-value"),
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ):
        response = client.get("/v1/me/profile", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/v1/me/profile").status_code == 401


def test_expired_session_is_401(client: TestClient, clock: FakeClock, runtime: Runtime) -> None:
    token = sign_up(client)
    clock.advance(seconds=runtime.settings.session_ttl_seconds + 1)
    response = client.get("/v1/me/profile", headers=bearer(token))
    assert response.status_code == 401
    assert "ended" in response.json()["detail"]


def test_log_out_kills_the_session_server_side(client: TestClient) -> None:
    token = sign_up(client)
    other = log_in(client, "ada@example.org")
    response = client.delete("/v1/sessions/current", headers=bearer(token))
    assert response.status_code == 204
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 401
    assert client.get("/v1/me/profile", headers=bearer(other)).status_code == 200


def test_cookie_session_works_and_cross_site_writes_are_refused(client: TestClient) -> None:
    client.post("/v1/customers", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    assert client.get("/v1/me/profile").status_code == 200
    evil = client.patch("/v1/me/profile", json={"city": "Paris"}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert evil.json()["type"].endswith("/csrf")
    fetch = client.patch("/v1/me/profile", json={"city": "Paris"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    ours = client.patch("/v1/me/profile", json={"city": "Paris"}, headers={"Origin": "http://127.0.0.1:8000"})
    assert ours.status_code == 200
