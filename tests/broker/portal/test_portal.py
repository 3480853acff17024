"""The portal's server side, without a browser: session and CSRF rotation at login, shortening a
grant, and the grant's timeline (what is coming, then its logged events a page at a time)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import FakeClock, bearer, sign_up
from support.oauth import (
    BrandCredentials,
    authorized,
    brand_token,
    form_token,
    grant_id_of,
    portal_login,
    publish_offer,
)

from broker.consent.models import Grant, Offer
from broker.portal import views
from broker.runtime import Runtime
from broker.usecases.grant_views import DASHBOARD_PAGE
from broker.web.deps import SESSION_COOKIE
from broker.web.pages import CSRF_COOKIE


def post(client: TestClient, path: str, **form: str) -> Any:
    data = {"csrf_token": form_token(client), **form}
    return client.post(path, data=data, follow_redirects=False)


def rows(html: str) -> list[str]:
    """The timeline's rows as text, in page order."""
    body = html.split('aria-label="Timeline"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.split("<tr")[2:]]


def test_logging_in_replaces_the_session_and_the_csrf_token_the_browser_had(
    client: TestClient, customer: str, runtime: Runtime
) -> None:
    before_session = client.cookies.get(SESSION_COOKIE)
    before_csrf = client.cookies.get(CSRF_COOKIE)
    assert before_session and before_csrf
    assert client.get("/v1/me/profile").status_code == 200  # the cookie session works
    assert portal_login(client, "ada@example.org").status_code == 303
    after_session, after_csrf = client.cookies.get(SESSION_COOKIE), client.cookies.get(CSRF_COOKIE)
    assert after_session and after_session != before_session
    assert after_csrf and after_csrf != before_csrf
    stale = client.get("/v1/me/profile", headers=bearer(before_session))
    assert stale.status_code == 401, "the session from before the login ended server-side"
    assert client.get("/v1/me/profile", headers=bearer(after_session)).status_code == 200


def test_a_session_id_planted_before_login_is_never_adopted(client: TestClient, customer: str) -> None:
    client.cookies.clear()
    planted = "attacker-chosen-session-id-0123456789"
    client.cookies.set(SESSION_COOKIE, planted, domain=client.base_url.host)
    assert portal_login(client, "ada@example.org").status_code == 303
    issued = client.cookies.get(SESSION_COOKIE)
    assert issued and issued != planted
    assert client.get("/v1/me/profile", headers=bearer(planted)).status_code == 401


def test_a_csrf_pair_from_another_session_or_from_before_login_does_not_validate(
    client: TestClient, customer: str
) -> None:
    """Cookie tossing: Eve plants her own CSRF cookie in Ada's browser and posts her own form token.
    Tokens are bound to the session, so a pair minted for Eve's session (or for no session) fails."""
    with TestClient(client.app, base_url=str(client.base_url)) as eve:
        sign_up(eve, "eve@example.org")
        token = form_token(eve, "/portal/login")
        before_login = (eve.cookies.get(CSRF_COOKIE), token)
        assert portal_login(eve, "eve@example.org").status_code == 303
        token = form_token(eve)
        eves_session = (eve.cookies.get(CSRF_COOKIE), token)
    for cookie, token in (eves_session, before_login):
        assert cookie and token
        client.cookies.set(CSRF_COOKIE, cookie, domain=client.base_url.host)
        forged = client.post("/portal/logout", data={"csrf_token": token}, follow_redirects=False)
        assert forged.status_code == 403
    assert client.get("/v1/me/profile").status_code == 200, "Ada's session is untouched"
    assert post(client, "/portal/logout").status_code == 303, "her own page's token still works"


def test_the_customer_shortens_a_grant_to_the_end_of_a_day(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    clock: FakeClock,
) -> None:
    grant_id = grant_id_of(client, brand, authorized(client, brand, offer))
    page = client.get(f"/portal/grants/{grant_id}")
    assert 'name="until"' in page.text and "Share for less time" in page.text
    last_day = (clock.now + timedelta(days=10)).date()
    done = post(client, f"/portal/grants/{grant_id}/shorten", until=last_day.isoformat())
    assert done.status_code == 303, done.text
    db.expire_all()
    grant = db.get(Grant, UUID(grant_id))
    assert grant is not None
    assert grant.expires_at == datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    timeline = rows(client.get(f"/portal/grants/{grant_id}").text)
    assert any("you changed what is shared" in row for row in timeline)
    assert any(f"{last_day + timedelta(days=1)} 00:00 UTC sharing ends" in row for row in timeline)


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("next tuesday", "as a date, like 2026-12-31"),
        ("2026-13-01", "as a date, like 2026-12-31"),
        ("2026-11-22", "cannot be in the past"),
        ("2027-12-31", "pick an earlier day"),
        ("", "as a date"),
    ],
)
def test_a_bad_last_day_is_explained_and_what_was_typed_kept(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    until: str,
    message: str,
) -> None:
    grant_id = grant_id_of(client, brand, authorized(client, brand, offer))
    before = db.get(Grant, UUID(grant_id))
    assert before is not None
    expires_at = before.expires_at
    refused = post(client, f"/portal/grants/{grant_id}/shorten", until=until)
    assert refused.status_code == 422
    assert message in refused.text and 'role="alert"' in refused.text
    if until:
        assert f'value="{until}"' in refused.text
    db.expire_all()
    assert db.get(Grant, UUID(grant_id)).expires_at == expires_at  # type: ignore[union-attr]


def test_shortening_needs_the_csrf_token_and_the_owner(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    grant_id = grant_id_of(client, brand, authorized(client, brand, offer))
    forged = client.post(
        f"/portal/grants/{grant_id}/shorten", data={"until": "2026-12-01"}, follow_redirects=False
    )
    assert forged.status_code == 403
    client.cookies.clear()
    portal_login(client, "ada@example.org")
    unknown = post(client, f"/portal/grants/{UUID(int=7)}/shorten", until="2026-12-01")
    assert unknown.status_code == 404


def test_the_timeline_shows_what_is_coming_then_this_grants_events_only(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
) -> None:
    ours = authorized(client, brand, offer)
    theirs = authorized(client, rival, publish_offer(client, brand_token(client, rival)))
    for tokens in (ours, theirs):
        assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
    grant_id = grant_id_of(client, brand, ours)
    page = client.get(f"/portal/grants/{grant_id}")
    timeline = rows(page.text)
    coming = [row for row in timeline if row.endswith("coming")]
    assert [row.split(" UTC ", 1)[1] for row in coming] == [
        f"{offer['retention_days']} days later, they must have deleted your data coming",
        "sharing ends, unless you renew coming",
        "reads stop until you reconfirm, as every 90 days coming",
        "value due: 10 EUR off your next box coming",
    ]
    history = [row for row in timeline if not row.endswith("coming")]
    assert [row.split(" UTC ", 1)[1].split(" ")[0:3] for row in history] == [
        ["read", "your", "data,"], ["value", "owed", "to"], ["you", "agreed", "Email"]
    ]  # fmt: skip
    assert "read your data, for personalised offers" in history[0], "each read says what it was for"
    assert all(row.endswith("verified") for row in history)
    assert "1 read in the last 30 days" in page.text


def test_the_timeline_pages_back_through_older_entries(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(views, "TIMELINE_PAGE", 2)
    tokens = authorized(client, brand, offer)
    for _ in range(3):
        client.get("/v1/profile", headers=bearer(tokens["access_token"]))
    grant_id = grant_id_of(client, brand, tokens)
    seen, page = [], client.get(f"/portal/grants/{grant_id}")
    while True:
        seen += [row for row in rows(page.text) if not row.endswith("coming")]
        older = re.search(r'href="(/portal/grants/[^"]+before=[^"#]+)', page.text)
        if older is None:
            break
        page = client.get(older.group(1).replace("&amp;", "&"))
        assert page.status_code == 200 and "Back to the newest" in page.text
        assert not any(row.endswith("coming") for row in rows(page.text))
    assert len(seen) == 5  # three reads, value owed, agreed
    broken = client.get(f"/portal/grants/{grant_id}", params={"before": "not-a-cursor"})
    assert broken.status_code == 400 and "That link is broken" in broken.text


def test_the_dashboard_shows_each_grants_own_last_read_and_time_left(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    clock: FakeClock,
) -> None:
    ours = authorized(client, brand, offer)
    theirs = authorized(client, rival, publish_offer(client, brand_token(client, rival)))
    assert client.get("/v1/profile", headers=bearer(ours["access_token"])).status_code == 200
    read_at = clock.now
    clock.advance(minutes=5)  # the access tokens live 10 minutes
    for _ in range(3):
        assert client.get("/v1/profile", headers=bearer(theirs["access_token"])).status_code == 200
    dashboard = client.get("/portal/").text
    cells = {
        name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dashboard.split(name, 1)[1].split("</tr>", 1)[0]))
        for name in ("Green Grocer", "Rival Foods")
    }
    assert f"{read_at:%Y-%m-%d %H:%M} UTC" in cells["Green Grocer"]
    assert f"{clock.now:%Y-%m-%d %H:%M} UTC" in cells["Rival Foods"]
    assert "(in 180 days)" in cells["Green Grocer"]


def test_the_customer_renews_from_the_prompt_and_downloads_receipts(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    clock: FakeClock,
) -> None:
    grant_id = grant_id_of(client, brand, authorized(client, brand, offer))
    page = client.get(f"/portal/grants/{grant_id}").text
    assert "Renew for" not in page and "consent given" in page
    download = re.search(r'href="(/v1/me/receipts/[^"]+\?download=true)"', page)
    assert download is not None
    receipt = client.get(download.group(1))
    assert receipt.status_code == 200 and "attachment" in receipt.headers["content-disposition"]
    assert receipt.json()["grant_id"] == grant_id

    early = post(client, f"/portal/grants/{grant_id}/renew")
    assert early.status_code == 409 and "can be renewed from" in early.text
    clock.advance(days=80)  # within 14 days of the 90-day reconfirmation
    portal_login(client, "ada@example.org")  # the portal session has long expired
    dashboard = client.get("/portal/").text
    assert ">renew</a>" in dashboard
    page = client.get(f"/portal/grants/{grant_id}").text
    assert "Reconfirm by" in page and "Renew for 180 days" in page
    done = post(client, f"/portal/grants/{grant_id}/renew")
    assert done.status_code == 303, done.text
    db.expire_all()
    grant = db.get(Grant, UUID(grant_id))
    assert grant is not None and grant.expires_at == clock.now + timedelta(days=180)
    page = client.get(f"/portal/grants/{grant_id}").text
    assert "you renewed" in page and "Renew for" not in page
    forged = client.post(f"/portal/grants/{grant_id}/renew", data={"csrf_token": "forged"})
    assert forged.status_code == 403


def test_an_ended_grant_shows_where_its_deletion_stands(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    clock: FakeClock,
) -> None:
    grant_id = grant_id_of(client, brand, authorized(client, brand, offer))
    assert post(client, f"/portal/grants/{grant_id}/revoke", confirm="yes").status_code == 303
    page = client.get(f"/portal/grants/{grant_id}").text
    due = (clock.now + timedelta(days=offer["retention_days"])).strftime("%Y-%m-%d %H:%M UTC")
    assert f"due by {due}" in page and "consent withdrawn" in page
    clock.advance(days=offer["retention_days"] + 1)
    portal_login(client, "ada@example.org")
    assert "overdue" in client.get(f"/portal/grants/{grant_id}").text
    attested = client.post(
        f"/v1/grants/{grant_id}/deletion",
        json={"outcome": "deleted", "completed_at": clock.now.isoformat()},
        headers=bearer(brand_token(client, brand)),
    )
    assert attested.status_code == 201, attested.text
    page = client.get(f"/portal/grants/{grant_id}").text
    assert "attested on" in page and "they attested deleting your data" in page


def test_the_dashboard_shows_every_grant_a_page_at_a_time(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    clock: FakeClock,
) -> None:
    first = grant_id_of(client, brand, authorized(client, brand, offer))
    customer_id = runtime.accounts.live_session(db, customer).customer_id
    accepted = db.get(Grant, UUID(first))
    assert accepted is not None
    terms = db.get(Offer, accepted.offer_id)
    assert terms is not None
    for _ in range(DASHBOARD_PAGE + 4):  # newer than the first: it is on the second page, with 4 more
        clock.advance(seconds=1)
        runtime.grants.create(db, customer_id=customer_id, offer=terms, fields=["email"])
    db.commit()
    newest = client.get("/portal/")
    assert newest.status_code == 200
    assert newest.text.count("/portal/grants/") == DASHBOARD_PAGE
    assert first not in newest.text and "Newest grants" not in newest.text
    older = re.search(r'href="(/portal/\?older=[^"]+)"', newest.text)
    assert older is not None
    rest = client.get(older.group(1).replace("&amp;", "&"))
    assert rest.status_code == 200 and rest.text.count("/portal/grants/") == 5
    assert first in rest.text and "Older grants" not in rest.text and "Newest grants" in rest.text
    broken = client.get("/portal/", params={"older": "not-a-cursor"})
    assert broken.status_code == 400 and "That link is broken" in broken.text
    too_long = client.get("/portal/", params={"older": "x" * 201})
    assert too_long.status_code in (400, 422) and "csrf" not in too_long.text.lower()
