"""A customer's sessions: listing them with a coarse device, ending one or all others, and the idle
and absolute timeouts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, log_in, make_settings, new_database_url, sign_up
from support.oauth import form_token, portal_login

from broker.accounts.devices import UNKNOWN_DEVICE, device_label
from broker.accounts.models import CustomerSession
from broker.accounts.service import LiveSession
from broker.db import alembic_config
from broker.errors import NotAuthenticated
from broker.runtime import Runtime, build_runtime

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("header", "label"),
    [
        (FIREFOX, "Firefox on Linux"),
        (IPHONE, "Mobile Safari on iOS"),
        (CHROME_ANDROID, "Chrome Mobile on Android"),
        ("python-httpx/0.27.0", UNKNOWN_DEVICE),
        ("", UNKNOWN_DEVICE),
        (None, UNKNOWN_DEVICE),
    ],
)
def test_the_device_is_a_coarse_label_of_the_user_agent(header: str | None, label: str) -> None:
    assert device_label(header) == label


def test_a_hostile_user_agent_is_cut_before_parsing_and_stored_bounded() -> None:
    assert len(device_label("Mozilla/5.0 " + "(" * 100_000)) <= 100


def sessions(client: TestClient, token: str) -> list[dict[str, object]]:
    response = client.get("/v1/me/sessions", headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def current_id(client: TestClient, token: str) -> object:
    return next(s["id"] for s in sessions(client, token) if s["current"])


def test_every_active_session_is_listed_with_its_device_and_the_current_one_marked(
    client: TestClient, db: Session, clock: FakeClock
) -> None:
    sign_up(client, "ada@example.org")
    clock.advance(seconds=1)
    phone = log_in(client, "ada@example.org", user_agent=IPHONE)
    clock.advance(seconds=1)
    laptop = log_in(client, "ada@example.org", user_agent=FIREFOX)
    listed = sessions(client, laptop)
    assert [s["device"] for s in listed[:2]] == ["Firefox on Linux", "Mobile Safari on iOS"]
    assert [s["current"] for s in listed] == [True, False, False]
    assert {"created_at", "last_seen_at", "expires_at", "idle_expires_at"} <= set(listed[0])
    assert sessions(client, phone)[1]["current"] is True
    stored = db.exec(select(CustomerSession)).all()
    assert {row.device for row in stored} >= {"Firefox on Linux", "Mobile Safari on iOS"}
    assert not any("Mozilla" in row.device or "128" in row.device for row in stored), "only the label"


def test_sessions_are_paginated_newest_first(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    tokens = [log_in(client, "ada@example.org") for _ in range(4)]
    first = client.get("/v1/me/sessions", params={"limit": 2}, headers=bearer(tokens[-1])).json()
    rest = client.get(
        "/v1/me/sessions", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(tokens[-1])
    ).json()
    ids = [s["id"] for s in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 4 and rest["next_cursor"] is not None
    bad = client.get("/v1/me/sessions", params={"cursor": "nonsense!"}, headers=bearer(tokens[0]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/cursor"


def test_a_revoked_session_dies_at_once(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    stolen = log_in(client, "ada@example.org", user_agent=CHROME_ANDROID)
    mine = log_in(client, "ada@example.org", user_agent=FIREFOX)
    assert client.get("/v1/me/profile", headers=bearer(stolen)).status_code == 200
    target = next(s for s in sessions(client, mine) if s["device"] == "Chrome Mobile on Android")
    ended = client.delete(f"/v1/me/sessions/{target['id']}", headers=bearer(mine))
    assert ended.status_code == 204
    refused = client.get("/v1/me/profile", headers=bearer(stolen))
    assert refused.status_code == 401 and refused.json()["type"].endswith("/unauthenticated")
    assert client.get("/v1/me/profile", headers=bearer(mine)).status_code == 200
    assert target["id"] not in [s["id"] for s in sessions(client, mine)]


def test_ending_an_ended_or_anothers_session_is_404(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    ada = log_in(client, "ada@example.org")
    sign_up(client, "bob@example.org")
    bob = log_in(client, "bob@example.org")
    bobs = current_id(client, bob)
    refused = client.delete(f"/v1/me/sessions/{bobs}", headers=bearer(ada))
    assert refused.status_code == 404 and "/v1/me/sessions" in refused.json()["detail"]
    assert client.get("/v1/me/profile", headers=bearer(bob)).status_code == 200, "bob's session lives on"
    other = log_in(client, "ada@example.org")
    other_id = current_id(client, other)
    assert client.delete(f"/v1/me/sessions/{other_id}", headers=bearer(ada)).status_code == 204
    assert client.delete(f"/v1/me/sessions/{other_id}", headers=bearer(ada)).status_code == 404
    assert client.delete("/v1/me/sessions/not-a-uuid", headers=bearer(ada)).status_code == 422


def test_ending_all_other_sessions_keeps_this_one(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    others = [log_in(client, "ada@example.org") for _ in range(3)]
    mine = log_in(client, "ada@example.org")
    ended = client.delete("/v1/me/sessions", params={"scope": "others"}, headers=bearer(mine))
    assert ended.status_code == 200 and ended.json() == {"ended": 4}  # sign-up's login, then three
    assert all(client.get("/v1/me/profile", headers=bearer(t)).status_code == 401 for t in others)
    assert [s["current"] for s in sessions(client, mine)] == [True]


@pytest.mark.parametrize("params", [{}, {"scope": "all"}, {"scope": ""}])
def test_ending_sessions_needs_the_scope_spelled_out(client: TestClient, params: dict[str, str]) -> None:
    token = sign_up(client, "ada@example.org")
    refused = client.delete("/v1/me/sessions", params=params, headers=bearer(token))
    assert refused.status_code == 422 and refused.json()["errors"][0]["pointer"] == "/scope"
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 200


def test_ending_a_session_by_cookie_needs_our_origin(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    victim = log_in(client, "ada@example.org")
    client.post(
        "/v1/sessions", json={"email": "ada@example.org", "password": "plum-otter-satchel-91-lantern"}
    )
    forged = client.delete(
        "/v1/me/sessions", params={"scope": "others"}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    assert client.get("/v1/me/profile", headers=bearer(victim)).status_code == 200


def test_an_idle_session_ends_after_the_idle_timeout(
    client: TestClient, clock: FakeClock, runtime: Runtime
) -> None:
    token = sign_up(client, "ada@example.org")
    idle = runtime.settings.session_idle_seconds
    clock.advance(seconds=idle - 1)
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 200, "used in time"
    clock.advance(seconds=idle - 1)
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 200, "the idle time restarted"
    clock.advance(seconds=idle)
    ended = client.get("/v1/me/profile", headers=bearer(token))
    assert ended.status_code == 401 and "log in again" in ended.json()["detail"]


def test_an_active_session_still_ends_at_its_absolute_expiry(
    client: TestClient, clock: FakeClock, runtime: Runtime
) -> None:
    token = sign_up(client, "ada@example.org")
    step = runtime.settings.session_idle_seconds // 2
    used = 0
    while used + step < runtime.settings.session_ttl_seconds:
        clock.advance(seconds=step)
        used += step
        assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 200
    clock.advance(seconds=runtime.settings.session_ttl_seconds - used)
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 401


def test_last_seen_is_written_at_most_once_a_minute(
    client: TestClient, clock: FakeClock, db: Session
) -> None:
    token = sign_up(client, "ada@example.org")
    opened = clock.now
    clock.advance(seconds=59)
    client.get("/v1/me/profile", headers=bearer(token))
    db.expire_all()
    (row,) = [s for s in db.exec(select(CustomerSession)).all() if s.revoked_at is None][-1:]
    assert row.last_seen_at == opened, "no write within the minute"
    clock.advance(seconds=1)
    client.get("/v1/me/profile", headers=bearer(token))
    db.expire_all()
    db.refresh(row)
    assert row.last_seen_at == opened + timedelta(seconds=60)


def test_the_sweep_forgets_sessions_that_can_never_work_again(
    client: TestClient, clock: FakeClock, runtime: Runtime, db: Session
) -> None:
    token = sign_up(client, "ada@example.org")
    ended = log_in(client, "ada@example.org")
    assert client.delete("/v1/sessions/current", headers=bearer(ended)).status_code == 204
    runtime.lifecycle.sweep(runtime.sessions)
    db.expire_all()
    assert len(db.exec(select(CustomerSession)).all()) == 1, "the logged-out one went, the live one stays"
    clock.advance(seconds=runtime.settings.session_ttl_seconds)
    runtime.lifecycle.sweep(runtime.sessions)
    db.expire_all()
    assert db.exec(select(CustomerSession)).all() == []
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 401


def test_the_portal_lists_sessions_and_ends_another_one(client: TestClient, clock: FakeClock) -> None:
    sign_up(client, "ada@example.org")
    phone = log_in(client, "ada@example.org", user_agent=IPHONE)
    clock.advance(seconds=1)
    assert portal_login(client, "ada@example.org").status_code == 303
    page = client.get("/portal/sessions")
    assert page.status_code == 200 and "Mobile Safari on iOS" in page.text and "this device" in page.text
    phone_id = next(s["id"] for s in sessions(client, phone) if s["current"])
    form = {"csrf_token": form_token(client)}
    ended = client.post(f"/portal/sessions/{phone_id}/end", data=form, follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"] == "/portal/sessions?ended=1"
    assert client.get("/v1/me/profile", headers=bearer(phone)).status_code == 401
    again = client.post(f"/portal/sessions/{phone_id}/end", data=form, follow_redirects=False)
    assert again.status_code == 404 and "already ended" in again.text
    forged = client.post("/portal/sessions/end-others", data={"csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    everywhere = client.post("/portal/sessions/end-others", data=form)
    assert everywhere.status_code == 200 and "Logged out of 1 session." in everywhere.text
    activity = client.get("/portal/security-activity")
    assert activity.status_code == 200 and "Logged out remotely" in activity.text


def test_the_portal_pages_send_a_visitor_to_log_in(client: TestClient) -> None:
    for path in ("/portal/sessions", "/portal/security-activity", "/portal/password"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/portal/login?next=")


def test_migration_0015_fills_last_seen_and_device_of_sessions_open_before_it(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "head")
    built = build_runtime(make_settings(tmp_path / "var", url), clock=FakeClock())
    try:
        with built.sessions() as session:
            customer = built.accounts.sign_up(session, "ada@example.org", STRONG_PASSWORD, verified=True)
            issued = built.accounts.open_session(session, customer.id, user_agent=FIREFOX)
            session_id, opened = issued.session.id, issued.session.created_at
            session.commit()
        command.downgrade(config, "0013")
        command.upgrade(config, "head")
        with built.sessions() as session:
            row = session.get(CustomerSession, session_id)
            assert row is not None and (row.last_seen_at, row.device) == (opened, UNKNOWN_DEVICE)
    finally:
        built.dispose()


def test_a_read_only_request_reads_the_session_as_a_record_equal_to_the_row(
    client: TestClient, db: Session, runtime: Runtime
) -> None:
    # `live_session` (the customer's read-only requests: grant lists, the dashboard) reads the row on
    # the driver's cursor; every column it carries is the ORM row's, types included.
    token = sign_up(client, "ada@example.org")
    record = runtime.accounts.live_session(db, token)
    row = db.exec(select(CustomerSession).where(CustomerSession.id == record.id)).one()
    assert record == LiveSession(**{name: getattr(row, name) for name in LiveSession.__dataclass_fields__})
    assert record.last_seen_at.tzinfo is not None and isinstance(record.second_factor, bool)
    with pytest.raises(NotAuthenticated):
        runtime.accounts.live_session(db, token + "x")
    with pytest.raises(NotAuthenticated):
        runtime.accounts.live_session(db, "")


@pytest.mark.parametrize("ending", ["revoked", "idle", "expired"])
def test_a_read_only_request_refuses_an_ended_session(
    client: TestClient, clock: FakeClock, runtime: Runtime, ending: str
) -> None:
    token = sign_up(client, "ada@example.org")
    assert client.get("/v1/me/grants", headers=bearer(token)).status_code == 200
    if ending == "revoked":
        other = log_in(client, "ada@example.org")
        client.delete("/v1/me/sessions", params={"scope": "others"}, headers=bearer(other))
    elif ending == "idle":
        clock.advance(seconds=runtime.settings.session_idle_seconds)
    else:
        step = runtime.settings.session_idle_seconds // 2
        for _ in range(-(-runtime.settings.session_ttl_seconds // step)):  # past its absolute expiry
            clock.advance(seconds=step)
            client.get("/v1/me/profile", headers=bearer(token))  # keeps it from going idle
    refused = client.get("/v1/me/grants", headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["type"].endswith("/unauthenticated")
