"""Login throttling: attackers slow down and lock themselves out, never the account's owner.

The attack (issue 15, finding 2): wrong passwords from one address used to lock the account for
everyone, the owner's right password from elsewhere included. Now failures lock the (account,
address) pair and the address; the account as a whole only slows password attempts down, and a
passkey, or a password with a second factor, gets in at once.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from support.core import STRONG_PASSWORD, FakeClock, RecordedSleep, log_in, sign_up
from support.factors import (
    enrol_totp,
    passkey_log_in,
    reauthenticate_with_totp,
    register_passkey,
    start_login,
    totp_code,
)
from support.mail import deliver, sink_messages
from support.webauthn import SoftAuthenticator

from broker.runtime import Runtime

PROBLEM = "application/problem+json"
WRONG = {"email": "ada@example.org", "password": "wrong-password-entirely"}
RIGHT = {"email": "ada@example.org", "password": STRONG_PASSWORD}


def from_address(client: TestClient, address: str) -> TestClient:
    """Another client of the same app, whose requests come from `address`."""
    return TestClient(client.app, base_url=str(client.base_url), client=(address, 50000))


def _fail(client: TestClient, email: str = "ada@example.org") -> int:
    return client.post("/v1/sessions", json={**WRONG, "email": email}).status_code


def test_failures_from_one_address_slow_down_then_lock_that_pair_with_retry_after(
    client: TestClient, sleep: RecordedSleep, clock: FakeClock
) -> None:
    sign_up(client)
    for _ in range(3):
        assert _fail(client) == 401
    assert sleep.calls == []
    for _ in range(6):
        assert _fail(client) == 401
    delays = sleep.calls
    assert delays == sorted(delays) and delays[0] > 0 and max(delays) <= 2.0
    assert _fail(client) == 401  # the 10th failure locks this address out of this account
    locked = client.post("/v1/sessions", json=RIGHT)
    assert locked.status_code == 429  # even the right password waits, from this address
    assert locked.headers["content-type"] == PROBLEM
    assert locked.json()["type"].endswith("/too-many-attempts")
    assert 0 < int(locked.headers["retry-after"]) <= 300
    clock.advance(seconds=301)
    assert client.post("/v1/sessions", json=RIGHT).status_code == 201


def test_a_thousand_failures_from_one_address_do_not_lock_the_owner_out_elsewhere(
    client: TestClient, runtime: Runtime, sleep: RecordedSleep, clock: FakeClock
) -> None:
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    reauthenticate_with_totp(client, token, secret, clock)
    authenticator = SoftAuthenticator()
    register_passkey(client, token, authenticator)
    attacker = from_address(client, "203.0.113.66")
    answers = [_fail(attacker) for _ in range(1000)]
    assert answers.count(401) == runtime.settings.login_max_failures_pair
    assert set(answers[runtime.settings.login_max_failures_pair :]) == {429}

    owner = from_address(client, "198.51.100.7")
    assert passkey_log_in(owner, authenticator).status_code == 201  # at once: no delay, no lock
    assert max(sleep.calls, default=0) <= runtime.settings.login_max_delay_seconds

    sleep.calls.clear()
    clock.advance(seconds=30)  # the next code (the step-up above used this one)
    pending = start_login(owner)  # the password step is not refused from another address
    assert sum(sleep.calls) <= runtime.settings.login_max_delay_seconds
    finished = owner.post(
        "/v1/sessions/mfa", json={"mfa_token": pending["mfa_token"], "code": totp_code(secret, clock)}
    )
    assert finished.status_code == 201, finished.text
    assert _fail(attacker) == 429  # and the attacker is still locked out


def test_a_burst_from_many_addresses_only_slows_password_attempts_for_that_account(
    client: TestClient, runtime: Runtime, sleep: RecordedSleep
) -> None:
    sign_up(client)
    for i in range(200):
        assert _fail(from_address(client, f"10.{i // 250}.{i % 250}.1")) == 401  # never 429
    sleep.calls.clear()
    owner = from_address(client, "198.51.100.7")
    assert owner.post("/v1/sessions", json=RIGHT).status_code == 201
    assert sleep.calls == [runtime.settings.login_max_delay_seconds]  # slowed, bounded, not refused
    sleep.calls.clear()
    assert _fail(from_address(client, "192.0.2.99"), "someone-else@example.org") == 401
    assert sleep.calls == []  # other accounts are not slowed by it


def test_a_success_clears_the_pair_counter(client: TestClient, sleep: RecordedSleep) -> None:
    sign_up(client)
    for _ in range(5):
        _fail(client)
    log_in(client, "ada@example.org")
    before = len(sleep.calls)
    assert _fail(client) == 401
    assert len(sleep.calls) == before


def test_one_address_trying_many_accounts_is_locked(runtime: Runtime, client: TestClient) -> None:
    limit = runtime.settings.login_max_failures_address
    for i in range(limit):
        assert _fail(client, f"user{i}@example.org") == 401
    assert _fail(client, "someone-else@example.org") == 429


def test_unknown_accounts_are_throttled_like_real_ones(client: TestClient) -> None:
    for _ in range(10):
        _fail(client, "ghost@example.org")
    assert _fail(client, "ghost@example.org") == 429


def test_wrong_second_factors_lock_the_pair_too(client: TestClient, clock: FakeClock) -> None:
    token = sign_up(client)
    enrol_totp(client, token, clock)
    statuses = []
    for _ in range(4):  # the right password, then three wrong codes, four times over
        pending = client.post("/v1/sessions", json=RIGHT)
        statuses.append(pending.status_code)
        for _ in range(3):
            if pending.status_code == 200:
                answer = {"mfa_token": pending.json()["mfa_token"], "code": "000000"}
                statuses.append(client.post("/v1/sessions/mfa", json=answer).status_code)
    assert statuses[:12] == [200, 401, 401, 401] * 3  # the right password resets nothing
    assert statuses[12:] == [200, 401, 429, 429]  # the tenth wrong code locks this address out
    assert client.post("/v1/sessions", json=RIGHT).status_code == 429


def test_wrong_second_factors_from_many_addresses_slow_down_and_tell_the_owner(
    client: TestClient, runtime: Runtime, sleep: RecordedSleep, clock: FakeClock
) -> None:
    # The attack: someone who has the password guesses authenticator codes, one try per address so
    # that no (account, address) pair ever locks. The account as a whole slows the guesses down, and
    # the owner hears at once that their password is known (a few mails a window, not one a guess).
    token = sign_up(client)
    secret, _ = enrol_totp(client, token, clock)
    guesses = runtime.settings.login_account_slowdown_after + 3
    for n in range(guesses):
        guesser = from_address(client, f"203.0.113.{n + 1}")
        pending = start_login(guesser)
        wrong = guesser.post("/v1/sessions/mfa", json={"mfa_token": pending["mfa_token"], "code": "000000"})
        assert wrong.status_code == 401
    assert sleep.calls and 0 < max(sleep.calls) <= runtime.settings.login_max_delay_seconds
    activity = client.get(
        "/v1/me/security-activity", params={"limit": 200}, headers={"Authorization": f"Bearer {token}"}
    )
    failed = [e for e in activity.json()["items"] if e["kind"] == "second_factor.failed"]
    assert len(failed) == guesses
    deliver(runtime)
    told = [m for m in sink_messages(runtime.settings.data_dir, "ada@example.org")
            if m["Subject"] == "Someone has your Consentry password"]  # fmt: skip
    assert 1 <= len(told) <= 3
    clock.advance(seconds=30)
    owner = from_address(client, "198.51.100.7")  # and the owner still gets in with the right code
    pending = start_login(owner)
    right = owner.post(
        "/v1/sessions/mfa", json={"mfa_token": pending["mfa_token"], "code": totp_code(secret, clock)}
    )
    assert right.status_code == 201, right.text
