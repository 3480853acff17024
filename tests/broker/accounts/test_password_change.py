"""Changing the password: the current one first, the sign-up strength rules, every other session
ends, and a stolen session cannot be used to guess the current password."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from support.core import STRONG_PASSWORD, bearer, log_in, sign_up
from support.oauth import form_token, portal_login

NEW_PASSWORD = "quartz-heron-mitten-47-orchard"


def change(client: TestClient, token: str, current: str, new: str) -> object:
    return client.post(
        "/v1/me/password", json={"current_password": current, "new_password": new}, headers=bearer(token)
    )


def test_changing_the_password_ends_every_other_session_and_keeps_this_one(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    other = log_in(client, "ada@example.org")
    mine = log_in(client, "ada@example.org")
    response = client.post(
        "/v1/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(mine),
    )
    assert response.status_code == 204
    assert client.get("/v1/me/profile", headers=bearer(other)).status_code == 401
    assert client.get("/v1/me/profile", headers=bearer(mine)).status_code == 200
    refused = client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    assert refused.status_code == 401, "the old password no longer works"
    log_in(client, "ada@example.org", NEW_PASSWORD)
    kinds = [e["kind"] for e in client.get("/v1/me/security-activity", headers=bearer(mine)).json()["items"]]
    assert "password.changed" in kinds and kinds.count("session.revoked") == 2


def test_a_wrong_current_password_is_refused_and_changes_nothing(client: TestClient) -> None:
    token = sign_up(client, "ada@example.org")
    other = log_in(client, "ada@example.org")
    response = client.post(
        "/v1/me/password",
        json={"current_password": "not-my-password-at-all", "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert response.status_code == 422
    problem = response.json()
    assert (
        problem["type"].endswith("/wrong-password") and problem["errors"][0]["pointer"] == "/current_password"
    )
    assert client.get("/v1/me/profile", headers=bearer(other)).status_code == 200
    log_in(client, "ada@example.org", STRONG_PASSWORD)


@pytest.mark.parametrize(
    ("new", "message"),
    [("short-pw-1", "at least 12"), ("qwerty123456", "commonly used"), (STRONG_PASSWORD, "the one you have")],
)
def test_a_weak_or_unchanged_new_password_is_refused_on_its_field(
    client: TestClient, new: str, message: str
) -> None:
    token = sign_up(client, "ada@example.org")
    response = client.post(
        "/v1/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": new},
        headers=bearer(token),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/new_password" and message in response.json()["detail"]


def test_a_stolen_session_cannot_guess_the_current_password_at_leisure(client: TestClient) -> None:
    token = sign_up(client, "ada@example.org")
    statuses = [
        client.post(
            "/v1/me/password",
            json={"current_password": f"guess-number-{i}-xyz", "new_password": NEW_PASSWORD},
            headers=bearer(token),
        ).status_code
        for i in range(11)
    ]
    assert statuses[:10] == [422] * 10 and statuses[10] == 429
    locked = client.post(
        "/v1/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0


def test_missing_fields_and_cross_site_posts_are_refused(client: TestClient) -> None:
    token = sign_up(client, "ada@example.org")
    missing = client.post("/v1/me/password", json={"new_password": NEW_PASSWORD}, headers=bearer(token))
    assert missing.status_code == 422 and missing.json()["errors"][0]["pointer"] == "/current_password"
    client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    forged = client.post(
        "/v1/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403


def test_the_portal_changes_the_password_and_says_who_was_logged_out(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    other = log_in(client, "ada@example.org")
    assert portal_login(client, "ada@example.org").status_code == 303
    form = {"csrf_token": form_token(client)}
    wrong = client.post(
        "/portal/password", data={**form, "current_password": "nope", "new_password": NEW_PASSWORD}
    )
    assert wrong.status_code == 422 and "current password is wrong" in wrong.text
    done = client.post(
        "/portal/password", data={**form, "current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert (
        done.status_code == 200
        and "Your password is changed" in done.text
        and "2 other sessions" in done.text
    )
    assert client.get("/v1/me/profile", headers=bearer(other)).status_code == 401
    forged = client.post("/portal/password", data={"csrf_token": "forged", "current_password": NEW_PASSWORD})
    assert forged.status_code == 403
