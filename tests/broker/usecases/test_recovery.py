"""Getting back in by email: password reset by an emailed code and one-time sign-in links, and the
attacks on them (guessed, replayed, expired and cross-purpose codes; enumeration; lockout)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support.core import STRONG_PASSWORD, FakeClock, bearer, log_in, sign_up
from support.factors import enrol_totp, totp_code
from support.mail import code_in, deliver, last_message, sink_messages, text_of
from support.oauth import form_token

from broker.runtime import Runtime

NEW_PASSWORD = "quartz-heron-mitten-47-orchard"
OWNER = "ada@example.org"


def ask_reset(client: TestClient, email: str = OWNER) -> Any:
    return client.post("/v1/password-resets", json={"email": email})


def reset(client: TestClient, code: str, password: str = NEW_PASSWORD) -> Any:
    return client.post("/v1/password-resets/complete", json={"code": code, "new_password": password})


def reset_code(runtime: Runtime, email: str = OWNER) -> str:
    message = last_message(runtime, email)
    assert "reset" in str(message["Subject"]).lower(), message["Subject"]
    return code_in(message)


def problem_type(response: Any) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    kind: str = response.json()["type"]
    return kind.rsplit("/", 1)[1]


@pytest.fixture
def elsewhere(client: TestClient) -> Iterator[TestClient]:
    """The same app seen from another client address (the owner's own network)."""
    with TestClient(client.app, base_url=str(client.base_url), client=("198.51.100.23", 50000)) as other:
        yield other


def test_a_forgotten_password_is_reset_with_the_emailed_code(
    client: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    token = sign_up(client, OWNER)
    other = log_in(client, OWNER)
    clock.advance(seconds=1)
    asked = ask_reset(client)
    assert asked.status_code == 202 and "15 minutes" in asked.json()["detail"]
    clock.advance(seconds=1)
    done = reset(client, reset_code(runtime))
    clock.advance(seconds=1)
    assert done.status_code == 204, done.text
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 401, "every session ended"
    assert client.get("/v1/me/profile", headers=bearer(other)).status_code == 401
    old = client.post("/v1/sessions", json={"email": OWNER, "password": STRONG_PASSWORD})
    assert old.status_code == 401
    again = log_in(client, OWNER, NEW_PASSWORD)
    told = last_message(runtime, OWNER)
    assert "was reset" in str(told["Subject"]) and "logged out everywhere" in text_of(told)
    kinds = [e["kind"] for e in client.get("/v1/me/security-activity", headers=bearer(again)).json()["items"]]
    assert kinds[:3] == ["sign_in", "password.reset", "password_reset.requested"]


def test_a_reset_for_an_unknown_address_is_answered_identically(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER)
    deliver(runtime)
    before = len(sink_messages(runtime.settings.data_dir))
    known, unknown = ask_reset(client, OWNER), ask_reset(client, "nobody@example.org")
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (202, known.json())
    assert known.headers["content-type"] == unknown.headers["content-type"]
    deliver(runtime)
    sent = sink_messages(runtime.settings.data_dir)[before:]
    assert [str(m["To"]) for m in sent] == [OWNER], "nothing goes to an address without an account"


@pytest.mark.parametrize("path", ["/v1/password-resets", "/v1/sign-in-links"])
def test_known_and_unknown_addresses_take_about_the_same_time(
    client: TestClient, runtime: Runtime, path: str
) -> None:
    sign_up(client, OWNER)
    timings: dict[str, list[float]] = {OWNER: [], "nobody@example.org": []}
    for _ in range(runtime.settings.recovery_requests_per_client // 2):
        for email, times in timings.items():
            started = time.perf_counter()
            assert client.post(path, json={"email": email}).status_code == 202
            times.append(time.perf_counter() - started)
    known, unknown = (statistics.median(times) for times in timings.values())
    # Sending costs a code row and a sealed outbox row: a few milliseconds at most, within the jitter
    # of any network; a difference an attacker could use remotely would be far larger.
    assert abs(known - unknown) < max(0.010, 0.5 * unknown), (known, unknown)


def test_an_expired_reset_code_is_refused(client: TestClient, runtime: Runtime, clock: FakeClock) -> None:
    sign_up(client, OWNER)
    ask_reset(client)
    code = reset_code(runtime)
    clock.advance(minutes=15)
    refused = reset(client, code)
    assert refused.status_code == 400 and problem_type(refused) == "code-expired"
    assert "ask for a new one" in refused.json()["detail"]
    log_in(client, OWNER, STRONG_PASSWORD)


def test_a_used_reset_code_is_refused(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER)
    ask_reset(client)
    code = reset_code(runtime)
    assert reset(client, code).status_code == 204
    replayed = reset(client, code, "another-long-phrase-88-harbour")
    assert replayed.status_code == 400 and problem_type(replayed) in {"code-used", "invalid-code"}
    log_in(client, OWNER, NEW_PASSWORD)


@pytest.mark.parametrize("code", ["0000-0000-0000-0000-0000", "nonsense", "K7QX-M2PD"])
def test_a_wrong_reset_code_is_refused(client: TestClient, code: str) -> None:
    sign_up(client, OWNER)
    ask_reset(client)
    refused = reset(client, code)
    assert refused.status_code == 400 and problem_type(refused) == "invalid-code"


def test_wrong_codes_are_counted_per_client_address(
    client: TestClient, runtime: Runtime, elsewhere: TestClient
) -> None:
    sign_up(client, OWNER)
    ask_reset(client)
    code = reset_code(runtime)
    limit = runtime.settings.recovery_max_failures
    statuses = [reset(client, f"AAAA-AAAA-AAAA-AAAA-{i:04d}").status_code for i in range(limit + 1)]
    assert statuses == [400] * limit + [429]
    assert reset(client, code).status_code == 429, "even the right code waits, from that address"
    assert reset(elsewhere, code).status_code == 204, "the owner's own network is not held up"


def test_empty_and_malformed_requests_are_refused_with_a_reason(client: TestClient) -> None:
    assert ask_reset(client, "not-an-email").status_code == 422
    missing = client.post("/v1/password-resets/complete", json={"code": "AAAA"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["pointer"] == "/new_password"
    extra = client.post("/v1/sign-in-links", json={"email": OWNER, "admin": True})
    assert extra.status_code == 422 and "unknown field 'admin'" in extra.json()["detail"]


def test_a_weak_new_password_is_refused_and_the_code_still_works(
    client: TestClient, runtime: Runtime
) -> None:
    sign_up(client, OWNER)
    ask_reset(client)
    code = reset_code(runtime)
    weak = reset(client, code, "password1234")
    assert weak.status_code == 422 and weak.json()["errors"][0]["pointer"] == "/new_password"
    assert reset(client, code).status_code == 204


def test_a_reset_ends_every_other_outstanding_reset_and_link(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER)
    ask_reset(client)
    first = reset_code(runtime)
    ask_reset(client)
    second = reset_code(runtime)
    client.post("/v1/sign-in-links", json={"email": OWNER})
    link = code_in(last_message(runtime, OWNER))
    assert problem_type(reset(client, first)) == "invalid-code", "a newer reset replaced it"
    assert reset(client, second).status_code == 204
    refused = client.post("/v1/sign-in-links/complete", json={"code": link})
    assert refused.status_code == 400, "the reset withdrew the outstanding sign-in link"


def test_codes_work_only_for_their_own_purpose(client: TestClient, runtime: Runtime) -> None:
    client.post("/v1/customers", json={"email": OWNER, "password": STRONG_PASSWORD})
    verification = code_in(last_message(runtime, OWNER))
    assert problem_type(reset(client, verification)) == "invalid-code"
    ask_reset(client)
    code = reset_code(runtime)
    assert problem_type(client.post("/v1/customers/verify", json={"code": code})) == "invalid-code"
    assert problem_type(client.post("/v1/sign-in-links/complete", json={"code": code})) == "invalid-code"
    assert client.post("/v1/customers/verify", json={"code": verification}).status_code == 200
    assert reset(client, code).status_code == 204, "each still works where it belongs"


def test_messages_to_one_address_are_limited_without_saying_so(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER)
    deliver(runtime)
    before = len(sink_messages(runtime.settings.data_dir, OWNER))
    limit = runtime.settings.recovery_mails_per_address
    answers = {ask_reset(client, OWNER).text for _ in range(limit + 3)}
    answers |= {ask_reset(client, "nobody@example.org").text for _ in range(limit + 3)}
    assert len(answers) == 1, "the same answer, within the limit or past it, known or not"
    deliver(runtime)
    sent = sink_messages(runtime.settings.data_dir, OWNER)[before:]
    assert len(sent) == limit
    assert reset(client, code_in(sent[-1])).status_code == 204, "the last message sent still works"


def test_requests_from_one_client_address_are_throttled(client: TestClient, runtime: Runtime) -> None:
    limit = runtime.settings.recovery_requests_per_client
    statuses = [ask_reset(client, f"person{i}@example.org").status_code for i in range(limit + 1)]
    assert statuses == [202] * limit + [429]
    refused = client.post("/v1/sign-in-links", json={"email": OWNER})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0


def test_an_emailed_link_signs_in_once(client: TestClient, runtime: Runtime, clock: FakeClock) -> None:
    sign_up(client, OWNER)
    clock.advance(seconds=1)
    asked = client.post("/v1/sign-in-links", json={"email": OWNER})
    assert asked.status_code == 202 and "link" in asked.json()["detail"]
    message = last_message(runtime, OWNER)
    code = code_in(message)
    assert f"/portal/sign-in?code={code}" in text_of(message)
    signed_in = client.post("/v1/sign-in-links/complete", json={"code": code.lower().replace("-", " ")})
    assert signed_in.status_code == 201, signed_in.text
    token = signed_in.json()["token"]
    assert client.get("/v1/me/profile", headers=bearer(token)).status_code == 200
    replayed = client.post("/v1/sign-in-links/complete", json={"code": code})
    assert replayed.status_code == 400 and problem_type(replayed) == "code-used"
    latest = client.get("/v1/me/security-activity", headers=bearer(token)).json()["items"][0]
    assert (latest["kind"], latest["detail"]) == ("sign_in.link", "emailed link")


def test_an_expired_link_is_refused(client: TestClient, runtime: Runtime, clock: FakeClock) -> None:
    sign_up(client, OWNER)
    client.post("/v1/sign-in-links", json={"email": OWNER})
    code = code_in(last_message(runtime, OWNER))
    clock.advance(minutes=15, seconds=1)
    refused = client.post("/v1/sign-in-links/complete", json={"code": code})
    assert refused.status_code == 400 and problem_type(refused) == "code-expired"


def test_the_owner_gets_in_by_an_emailed_link_after_a_thousand_failed_logins(
    client: TestClient, runtime: Runtime, elsewhere: TestClient
) -> None:
    sign_up(client, OWNER)
    statuses = {
        client.post("/v1/sessions", json={"email": OWNER, "password": f"guess-{i}-tries-hard"}).status_code
        for i in range(1000)
    }
    assert statuses <= {401, 429} and 429 in statuses
    # The burst locked its own address only: the owner's password from elsewhere still works ...
    password = elsewhere.post("/v1/sessions", json={"email": OWNER, "password": STRONG_PASSWORD})
    assert password.status_code == 201, password.text
    # ... and so does an emailed link, which no password throttle ever holds up.
    assert elsewhere.post("/v1/sign-in-links", json={"email": OWNER}).status_code == 202
    signed_in = elsewhere.post(
        "/v1/sign-in-links/complete", json={"code": code_in(last_message(runtime, OWNER))}
    )
    assert signed_in.status_code == 201, signed_in.text
    assert elsewhere.get("/v1/me/profile", headers=bearer(signed_in.json()["token"])).status_code == 200


def test_important_changes_are_told_by_mail(client: TestClient, runtime: Runtime, clock: FakeClock) -> None:
    token = sign_up(client, OWNER)
    deliver(runtime)
    before = len(sink_messages(runtime.settings.data_dir, OWNER))
    clock.advance(minutes=1)
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Mobile/15E148 Safari/604.1"
    log_in(client, OWNER, user_agent=phone)
    log_in(client, OWNER, user_agent=phone)
    changed = client.post(
        "/v1/me/password",
        json={"current_password": STRONG_PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    deliver(runtime)
    subjects = [str(m["Subject"]) for m in sink_messages(runtime.settings.data_dir, OWNER)[before:]]
    assert subjects == ["New sign-in to your Consentry account", "Your Consentry password was changed"]
    new_device = sink_messages(runtime.settings.data_dir, OWNER)[before]
    assert "Mobile Safari on iOS" in text_of(new_device) and "/portal/sessions" in text_of(new_device)


def portal_post(client: TestClient, path: str, **form: str) -> Any:
    data = {"csrf_token": form_token(client), **form}
    return client.post(path, data=data, follow_redirects=False)


def test_the_portal_resets_a_forgotten_password(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER)
    login = client.get("/portal/login")
    assert 'href="/portal/password-reset"' in login.text
    page = client.get("/portal/password-reset")
    assert page.status_code == 200 and "Send me a code" in page.text
    asked = portal_post(client, "/portal/password-reset", email=OWNER)
    assert asked.status_code == 200 and "is on its way" in asked.text
    unknown = portal_post(client, "/portal/password-reset", email="nobody@example.org")
    assert unknown.text.replace("nobody@example.org", OWNER) == asked.text.replace(
        "nobody@example.org", OWNER
    )
    code = reset_code(runtime)
    from_link = client.get("/portal/password-reset", params={"code": code})
    assert f'value="{code}"' in from_link.text
    weak = portal_post(client, "/portal/password-reset/complete", code=code, new_password="password1234")
    assert weak.status_code == 422 and 'aria-invalid="true"' in weak.text
    done = portal_post(client, "/portal/password-reset/complete", code=code, new_password=NEW_PASSWORD)
    assert done.status_code == 200 and "Your password is reset" in done.text
    used = portal_post(client, "/portal/password-reset/complete", code=code, new_password=NEW_PASSWORD)
    assert used.status_code == 400 and "already used" in used.text
    forged = client.post("/portal/password-reset", data={"csrf_token": "forged", "email": OWNER})
    assert forged.status_code == 403
    log_in(client, OWNER, NEW_PASSWORD)


def test_the_portal_signs_in_by_link_and_opening_it_alone_uses_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    sign_up(client, OWNER)
    client.get("/portal/sign-in")
    asked = portal_post(client, "/portal/sign-in/request", email=OWNER)
    assert asked.status_code == 200 and "sign-in link is on its way" in asked.text
    code = code_in(last_message(runtime, OWNER))
    for _ in range(2):  # a mail scanner opening the link first does not use it up
        opened = client.get("/portal/sign-in", params={"code": code})
        assert opened.status_code == 200 and "Press the button to sign in" in opened.text
    signed_in = portal_post(client, "/portal/sign-in", code=code, next="/portal/sessions")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal/sessions"
    assert client.get("/portal/sessions").status_code == 200
    again = portal_post(client, "/portal/sign-in", code=code)
    assert again.status_code == 400 and "already used" in again.text


def test_a_code_sent_before_the_address_changed_is_refused(
    client: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    token = sign_up(client, OWNER)
    ask_reset(client)
    old_code = reset_code(runtime)
    new_address = "ada.lovelace@example.org"
    changing = client.post("/v1/me/email", json={"email": new_address}, headers=bearer(token))
    assert changing.status_code == 202, changing.text
    clock.advance(seconds=1)
    confirmed = client.post(
        "/v1/customers/verify", json={"code": code_in(last_message(runtime, new_address))}
    )
    assert confirmed.status_code == 200, confirmed.text
    refused = reset(client, old_code)
    assert refused.status_code == 400 and problem_type(refused) == "code-expired"
    assert "no longer uses" in refused.json()["detail"]
    latest = client.get("/v1/me/security-activity", headers=bearer(token)).json()["items"][0]
    assert latest["kind"] == "email.changed"


def test_a_sign_in_link_confirms_an_unconfirmed_address(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER, verify=False)
    client.post("/v1/sign-in-links", json={"email": OWNER})
    signed_in = client.post(
        "/v1/sign-in-links/complete", json={"code": code_in(last_message(runtime, OWNER))}
    )
    assert signed_in.status_code == 201
    email = client.get("/v1/me/email", headers=bearer(signed_in.json()["token"])).json()
    assert email["verified"] is True


def test_a_reset_lifts_the_login_lock_of_the_owners_address(client: TestClient, runtime: Runtime) -> None:
    sign_up(client, OWNER)
    for i in range(runtime.settings.login_max_failures_pair):
        client.post("/v1/sessions", json={"email": OWNER, "password": f"guess-{i}-tries-hard"})
    locked = client.post("/v1/sessions", json={"email": OWNER, "password": STRONG_PASSWORD})
    assert locked.status_code == 429
    ask_reset(client)
    assert reset(client, reset_code(runtime)).status_code == 204
    log_in(client, OWNER, NEW_PASSWORD)


def test_a_sign_in_link_is_only_a_first_factor_when_a_second_one_is_set_up(
    client: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    # The attack: someone who took over the mailbox asks for a sign-in link. With an authenticator
    # app set up, the link must lead to the second-factor step, never straight into the account.
    secret, _ = enrol_totp(client, sign_up(client, OWNER), clock)
    assert client.post("/v1/sign-in-links", json={"email": OWNER}).status_code == 202
    step = client.post("/v1/sign-in-links/complete", json={"code": code_in(last_message(runtime, OWNER))})
    assert step.status_code == 200, step.text
    pending = step.json()
    assert "token" not in pending and "consentry_session" not in step.headers.get("set-cookie", "")
    assert pending["methods"] == ["totp", "recovery_code"]
    done = client.post(
        "/v1/sessions/mfa", json={"mfa_token": pending["mfa_token"], "code": totp_code(secret, clock)}
    )
    assert done.status_code == 201, done.text
    assert client.get("/v1/me/profile", headers=bearer(done.json()["token"])).status_code == 200


def test_the_portal_asks_for_the_second_factor_after_a_sign_in_link(
    client: TestClient, runtime: Runtime, clock: FakeClock
) -> None:
    enrol_totp(client, sign_up(client, OWNER), clock)
    portal_post(client, "/portal/sign-in/request", email=OWNER)
    step = portal_post(client, "/portal/sign-in", code=code_in(last_message(runtime, OWNER)))
    assert step.status_code == 200 and "One more step" in step.text
    assert "consentry_session" not in step.headers.get("set-cookie", "")
    assert client.get("/portal/sessions", follow_redirects=False).status_code == 303  # not logged in
