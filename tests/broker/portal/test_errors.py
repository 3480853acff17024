"""The portal answers browsers with pages, never with problem+json: a logged-out visitor is sent to
log in, a forged form gets the "form expired" page, and a bad id, an unknown page, a wrong method or
an unreadable form under /portal gets an HTML error page with the right status. The JSON API keeps
problem+json. And a grant's end can be set to what it already is from the portal as from the API."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import FakeClock, bearer
from support.oauth import BrandCredentials, authorized, form_token, grant_id_of

from broker.app import create_app
from broker.consent.models import Grant
from broker.runtime import Runtime

UNKNOWN = UUID(int=7)

PAGES = (
    "/portal/",
    f"/portal/grants/{UNKNOWN}",
    "/portal/profile",
    "/portal/account",
    "/portal/account/email",
    "/portal/security",
    "/portal/sessions",
    "/portal/security-activity",
    "/portal/password",
)

FORMS = (
    f"/portal/grants/{UNKNOWN}/revoke",
    f"/portal/grants/{UNKNOWN}/narrow",
    f"/portal/grants/{UNKNOWN}/shorten",
    f"/portal/grants/{UNKNOWN}/renew",
    f"/portal/value/{UNKNOWN}/confirm",
    f"/portal/value/{UNKNOWN}/dispute",
    f"/portal/value/{UNKNOWN}/answer-rejection",
    f"/portal/value/{UNKNOWN}/escalation",
    f"/portal/value/{UNKNOWN}/escalation/decline",
    "/portal/profile",
    "/portal/account/delete",
    "/portal/account/email",
    "/portal/email/resend",
    "/portal/password",
    "/portal/security/passkeys",
    f"/portal/security/passkeys/{UNKNOWN}/rename",
    f"/portal/security/passkeys/{UNKNOWN}/remove",
    "/portal/security/totp",
    "/portal/security/totp/confirm",
    "/portal/security/totp/remove",
    "/portal/security/recovery-codes",
    "/portal/reauthenticate",
    f"/portal/sessions/{UNKNOWN}/end",
    "/portal/sessions/end-others",
)


def post(client: TestClient, path: str, **form: str) -> httpx.Response:
    data = {"csrf_token": form_token(client), **form}
    return client.post(path, data=data, follow_redirects=False)


def assert_page(response: httpx.Response, status: int) -> None:
    """An HTML page with this status: not problem+json, not JSON at all."""
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert "problem" not in response.headers["content-type"]
    assert response.text.lstrip().startswith("<!doctype html>")
    assert "consentry.dev/problems" not in response.text


@pytest.mark.parametrize("path", PAGES)
def test_a_logged_out_browser_is_sent_to_log_in_and_back(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/portal/login?next={quote(path, safe='')}"


@pytest.mark.parametrize("path", FORMS)
def test_a_logged_out_form_post_is_sent_to_log_in(client: TestClient, path: str) -> None:
    response = client.post(
        path, data={"csrf_token": form_token(client, "/portal/login")}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/login?next=")


@pytest.mark.parametrize("path", FORMS)
def test_a_form_post_without_its_csrf_token_gets_the_expired_form_page(
    client: TestClient, customer: str, path: str
) -> None:
    response = client.post(path, data={"csrf_token": "forged"}, follow_redirects=False)
    assert_page(response, 403)
    assert "This form expired" in response.text


@pytest.mark.parametrize(
    "path",
    [
        f"/portal/grants/{UNKNOWN}/revoke",
        f"/portal/grants/{UNKNOWN}/narrow",
        f"/portal/grants/{UNKNOWN}/shorten",
        f"/portal/grants/{UNKNOWN}/renew",
        f"/portal/value/{UNKNOWN}/confirm",
        f"/portal/value/{UNKNOWN}/dispute",
        f"/portal/value/{UNKNOWN}/answer-rejection",
        f"/portal/value/{UNKNOWN}/escalation",
        f"/portal/value/{UNKNOWN}/escalation/decline",
    ],
)
def test_a_form_naming_an_unknown_grant_or_obligation_gets_a_404_page(
    client: TestClient, customer: str, path: str
) -> None:
    assert_page(post(client, path, confirm="yes", until="2026-12-01", reason="late", share="yes"), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/portal/grants/not-a-grant/revoke",
        "/portal/grants/1/narrow",
        "/portal/grants/%27%3B--/shorten",
        "/portal/grants/not-a-grant/renew",
        "/portal/value/not-an-obligation/confirm",
        "/portal/value/not-an-obligation/dispute",
        "/portal/sessions/not-a-session/end",
        "/portal/security/passkeys/not-a-passkey/remove",
    ],
)
def test_a_form_naming_a_malformed_id_gets_a_404_page(client: TestClient, customer: str, path: str) -> None:
    assert_page(post(client, path, confirm="yes", until="2026-12-01", reason="late", share="yes"), 404)


def test_a_malformed_grant_link_gets_a_404_page(client: TestClient, customer: str) -> None:
    assert_page(client.get("/portal/grants/not-a-grant"), 404)


def test_an_unknown_portal_page_and_a_wrong_method_get_pages(client: TestClient, customer: str) -> None:
    assert_page(client.get("/portal/no-such-page"), 404)
    wrong = client.delete("/portal/profile")
    assert_page(wrong, 405)
    assert wrong.headers["allow"] == "GET, POST"


def test_an_unreadable_form_gets_a_page_saying_what_was_wrong(client: TestClient, customer: str) -> None:
    too_long = post(client, f"/portal/value/{UNKNOWN}/dispute", reason="x" * 2001)
    assert_page(too_long, 422)
    assert "Reason: String should have at most 2000 characters." in too_long.text


def test_a_body_over_the_limit_gets_a_413_page(client: TestClient, customer: str) -> None:
    big = post(client, "/portal/profile", given_name="x" * 70_000)
    assert_page(big, 413)
    assert "frame-ancestors 'none'" in big.headers["content-security-policy"]


def test_an_unexpected_error_under_the_portal_gets_a_500_page(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)

    @app.get("/portal/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/portal/boom", headers={"X-Request-ID": "req-500"})
    assert_page(response, 500)
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["cache-control"] == "no-store"
    assert "a bug" not in response.text


def test_the_consent_screen_is_a_page_and_answers_its_errors_with_pages(
    client: TestClient, customer: str
) -> None:
    """/oauth/authorize is read by browsers (the portal draws it): the errors no OAuth redirect can
    carry are pages too, never problem+json."""
    wrong = client.put("/oauth/authorize")
    assert_page(wrong, 405)
    assert wrong.headers["allow"] == "GET, POST"
    big = client.post("/oauth/authorize", data={"state": "x" * 70_000}, follow_redirects=False)
    assert_page(big, 413)


def test_the_json_api_keeps_problem_json(client: TestClient, customer: str) -> None:
    for response, status in (
        (client.get("/v1/me/grants/not-a-grant", headers=bearer(customer)), 422),
        (client.get(f"/v1/me/grants/{UNKNOWN}", headers=bearer(customer)), 404),
        (client.get("/v1/no-such-thing"), 404),
        (client.delete("/v1/me/profile", headers=bearer(customer)), 405),
    ):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


def test_an_unchanged_end_of_sharing_is_accepted_from_the_portal_as_from_the_api(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    clock: FakeClock,
) -> None:
    grant_id = grant_id_of(client, brand, authorized(client, brand, offer))
    last_day = (clock.now + timedelta(days=10)).date()
    end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=UTC)
    assert post(client, f"/portal/grants/{grant_id}/shorten", until=last_day.isoformat()).status_code == 303
    again = post(client, f"/portal/grants/{grant_id}/shorten", until=last_day.isoformat())
    assert again.status_code == 303, again.text
    same = client.patch(
        f"/v1/me/grants/{grant_id}", json={"expires_at": end.isoformat()}, headers=bearer(customer)
    )
    assert same.status_code == 200, same.text
    db.expire_all()
    grant = db.get(Grant, UUID(grant_id))
    assert grant is not None and grant.expires_at == end
