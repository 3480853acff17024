"""Email addresses, verified: sign-up that enumerates nothing, codes that confirm once, addresses compared
as people read them (NFKC, case folding, TS #39 look-alikes), a change of address verified first.

Each attack is written first, then what stops it."""

from __future__ import annotations

import dataclasses
import html
import statistics
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, log_in, sign_up
from support.mail import code_in, deliver, last_code, last_message, runtime_of, sink_messages, text_of
from support.oauth import (
    BrandCredentials,
    authorize_params,
    authorized,
    brand_token,
    consent,
    form_token,
    pkce,
    portal_login,
    publish_offer,
)

from broker.accounts.addresses import canonical, skeleton
from broker.accounts.codes import new_code, normalise_code
from broker.accounts.models import Customer, EmailCode
from broker.accounts.passwords import Passwords
from broker.portal.consent_screen import UNCONFIRMED_EMAIL
from broker.runtime import Runtime
from broker.usecases.verification import SIGNUP_ATTEMPT_NOTICES
from vault.blind_index import blind_token

PROBLEMS = "https://consentry.dev/problems/"
FULLWIDTH_U = "\uff55"  # FULLWIDTH LATIN SMALL LETTER U
FI_LIGATURE = "\ufb01"  # LATIN SMALL LIGATURE FI
CYRILLIC_A = "\u0430"  # CYRILLIC SMALL LETTER A


def signup(client: TestClient, email: str, password: str = STRONG_PASSWORD) -> Any:
    return client.post("/v1/customers", json={"email": email, "password": password})


def verify(client: TestClient, code: str) -> Any:
    return client.post("/v1/customers/verify", json={"code": code})


def accounts(db: Session) -> list[Customer]:
    db.expire_all()
    return list(db.exec(select(Customer)).all())


class TestNoEnumeration:
    def test_sign_up_answers_the_same_whether_or_not_the_address_has_an_account(
        self, client: TestClient
    ) -> None:
        sign_up(client, "ada@example.org")
        taken, new = signup(client, "ada@example.org"), signup(client, "grace@example.org")
        assert taken.status_code == new.status_code == 202
        assert taken.json() == new.json()
        same_headers = {k for k in taken.headers if k not in ("x-request-id", "date", "content-length")}
        assert {k: taken.headers[k] for k in same_headers} == {k: new.headers[k] for k in same_headers}

    def test_sign_up_takes_as_long_whether_or_not_the_address_has_an_account(
        self, runtime: Runtime, db: Session
    ) -> None:
        # Both branches hash the password with argon2id; with a cost that dominates, the medians agree.
        costly = dataclasses.replace(
            runtime.accounts, passwords=Passwords(time_cost=3, memory_kib=32 * 1024, parallelism=1)
        )
        flows = dataclasses.replace(runtime.verification, accounts=costly)
        flows.sign_up(db, "ada@example.org", STRONG_PASSWORD, address="192.0.2.1")
        db.commit()

        def attempt(email: str) -> float:
            started = time.perf_counter()
            flows.sign_up(db, email, STRONG_PASSWORD, address="192.0.2.1")
            elapsed = time.perf_counter() - started
            db.rollback()  # forget it, so the sign-up counter never throttles
            return elapsed

        # interleaved, so a burst of load on the machine slows both alike
        pairs = [(attempt("ada@example.org"), attempt("grace@example.org")) for _ in range(7)]
        taken, new = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        assert 0.5 < taken / new < 2.0, (taken, new)

    def test_the_owner_of_a_taken_address_is_told_and_gets_no_code(
        self, client: TestClient, db: Session
    ) -> None:
        sign_up(client, "ada@example.org")
        signup(client, "ADA@example.org", "another-password-entirely-42")
        told = last_message(runtime_of(client), "ada@example.org")
        assert told["Subject"] == "Someone tried to sign up to Consentry with your address"
        assert "log in" in text_of(told) and "Reset it" in text_of(told)
        assert code_in_or_none(told) is None
        assert len(accounts(db)) == 1
        log_in(client, "ada@example.org")  # the owner's password still works, the attempt's does not
        wrong = client.post(
            "/v1/sessions", json={"email": "ada@example.org", "password": "another-password-entirely-42"}
        )
        assert wrong.status_code == 401

    def test_sign_ups_with_a_taken_address_do_not_flood_its_owner(
        self, client: TestClient, runtime: Runtime
    ) -> None:
        # The attack: sign up again and again with someone's address (from many networks) so that
        # their mailbox fills with "someone tried to sign up" messages. A few per window reach them;
        # the answer stays the same 202 either way.
        sign_up(client, "ada@example.org")
        before = len(sink_messages(runtime.settings.data_dir, "ada@example.org"))
        answers = {
            signup(client, "ada@example.org", f"another-password-{n}-entirely").status_code for n in range(6)
        }
        assert answers == {202}
        deliver(runtime)
        told = sink_messages(runtime.settings.data_dir, "ada@example.org")[before:]
        assert len(told) == SIGNUP_ATTEMPT_NOTICES

    def test_sign_up_is_throttled_per_client_address(self, client: TestClient, runtime: Runtime) -> None:
        limit = runtime.settings.signup_max_per_address
        for n in range(limit):
            assert signup(client, f"user{n}@example.org").status_code == 202
        refused = signup(client, "one-more@example.org")
        assert refused.status_code == 429
        assert refused.json()["type"] == PROBLEMS + "too-many-attempts"
        assert int(refused.headers["retry-after"]) > 0
        assert "sign-ups" in refused.json()["detail"]

    def test_a_weak_password_is_refused_for_any_address(self, client: TestClient) -> None:
        sign_up(client, "ada@example.org")
        for email in ("ada@example.org", "grace@example.org"):
            response = signup(client, email, "password1234")
            assert response.status_code == 422 and response.json()["errors"][0]["pointer"] == "/password"


def code_in_or_none(message: Any) -> str | None:
    try:
        return code_in(message)
    except AssertionError:
        return None


class TestCodes:
    def test_a_new_account_is_unverified_until_its_code_is_used(
        self, client: TestClient, db: Session
    ) -> None:
        assert signup(client, "ada@example.org").status_code == 202
        (customer,) = accounts(db)
        assert customer.email_verified_at is None
        token = log_in(client, "ada@example.org")  # an unverified account may log in
        assert client.get("/v1/me/email", headers=bearer(token)).json()["verified"] is False
        message = last_message(runtime_of(client), "ada@example.org")
        assert "/portal/verify?code=" in text_of(message)
        assert "cst_" not in message.as_string()  # links carry codes, never session tokens
        answer = verify(client, code_in(message))
        assert answer.status_code == 200 and answer.json() == {"email_verified": True, "purpose": "sign-up"}
        assert client.get("/v1/me/email", headers=bearer(token)).json()["verified"] is True

    def test_a_code_is_stored_only_as_its_digest(self, client: TestClient, db: Session) -> None:
        signup(client, "ada@example.org")
        code = last_code(runtime_of(client), "ada@example.org")
        (row,) = db.exec(select(EmailCode)).all()
        assert code.encode() not in row.code_hash and len(row.code_hash) == 32

    def test_a_used_code_is_refused(self, client: TestClient) -> None:
        signup(client, "ada@example.org")
        code = last_code(runtime_of(client), "ada@example.org")
        assert verify(client, code).status_code == 200
        again = verify(client, code)
        assert again.status_code == 400 and again.json()["type"] == PROBLEMS + "code-used"

    def test_an_expired_code_is_refused(self, client: TestClient, clock: FakeClock, runtime: Runtime) -> None:
        signup(client, "ada@example.org")
        code = last_code(runtime_of(client), "ada@example.org")
        clock.advance(seconds=runtime.settings.email_code_ttl_seconds)
        expired = verify(client, code)
        assert expired.status_code == 400 and expired.json()["type"] == PROBLEMS + "code-expired"
        assert "ask for a new one" in expired.json()["detail"]

    def test_a_wrong_code_is_refused_and_wrong_codes_are_throttled(
        self, client: TestClient, runtime: Runtime
    ) -> None:
        signup(client, "ada@example.org")
        for _ in range(runtime.settings.verify_max_failures):
            wrong = verify(client, new_code())
            assert wrong.status_code == 400 and wrong.json()["type"] == PROBLEMS + "invalid-code"
        right = last_code(runtime_of(client), "ada@example.org")
        locked = verify(client, right)  # even the right code waits: guessing is over for this address
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0

    @pytest.mark.parametrize("garbage", ["", " ", "x" * 64, "🙂", "AAAA-AAAA"])
    def test_garbage_codes_are_4xx_problems(self, client: TestClient, garbage: str) -> None:
        response = verify(client, garbage)
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"] == "application/problem+json"

    def test_a_code_may_be_typed_loosely(self, client: TestClient) -> None:
        signup(client, "ada@example.org")
        code = last_code(runtime_of(client), "ada@example.org")
        assert verify(client, " " + code.lower().replace("-", " ") + " ").status_code == 200

    def test_reading_o_as_zero_and_i_as_one(self) -> None:
        assert normalise_code("oooo-iiii-llll-0000-1111") == "0000-1111-1111-0000-1111"

    def test_a_resent_code_replaces_the_earlier_one(self, client: TestClient) -> None:
        signup(client, "ada@example.org")
        first = last_code(runtime_of(client), "ada@example.org")
        token = log_in(client, "ada@example.org")
        assert client.post("/v1/me/email/verification", headers=bearer(token)).status_code == 202
        second = last_code(runtime_of(client), "ada@example.org")
        assert first != second
        assert verify(client, first).json()["type"] == PROBLEMS + "invalid-code"
        assert verify(client, second).status_code == 200
        done = client.post("/v1/me/email/verification", headers=bearer(token))
        assert done.status_code == 409 and done.json()["type"] == PROBLEMS + "email-already-verified"


LOOK_ALIKES = [
    (f"{FULLWIDTH_U}nicode@example.org", "unicode@example.org"),
    (f"{FI_LIGATURE}sh@example.org", "fish@example.org"),
    (f"p{CYRILLIC_A}ypal@example.org", "paypal@example.org"),
    ("Stra\u00dfe@example.org", "strasse@example.org"),
]


class TestAddressesAsPeopleReadThem:
    @pytest.mark.parametrize(("lookalike", "original"), LOOK_ALIKES)
    def test_a_look_alike_of_an_address_makes_no_second_account(
        self, client: TestClient, db: Session, lookalike: str, original: str
    ) -> None:
        sign_up(client, original)
        deliver(runtime_of(client))
        answer = signup(client, lookalike)
        assert answer.status_code == 202  # exactly as for a new address: nothing is told here
        assert len(accounts(db)) == 1
        told = last_message(runtime_of(client), original)
        assert told["Subject"] == "Someone tried to sign up to Consentry with your address"
        assert lookalike not in told.as_string()  # the owner is never told the other address
        assert sink_messages(runtime_of(client).settings.data_dir, lookalike) == [] or canonical(
            lookalike
        ) == canonical(original)

    def test_a_script_mix_is_a_look_alike_not_the_same_address(self, client: TestClient) -> None:
        sign_up(client, "paypal@example.org")
        signup(client, f"p{CYRILLIC_A}ypal@example.org")
        told = last_message(runtime_of(client), "paypal@example.org")
        assert "an address that looks like yours" in text_of(told)
        assert canonical(f"p{CYRILLIC_A}ypal@example.org") != "paypal@example.org"
        assert skeleton(f"p{CYRILLIC_A}ypal@example.org") == skeleton("paypal@example.org")

    @pytest.mark.parametrize(("typed", "original"), LOOK_ALIKES[:2] + LOOK_ALIKES[3:])
    def test_the_login_reads_the_address_as_people_do(
        self, client: TestClient, typed: str, original: str
    ) -> None:
        sign_up(client, original)
        log_in(client, typed)

    def test_a_look_alike_is_not_a_login(self, client: TestClient) -> None:
        sign_up(client, "paypal@example.org")
        wrong = client.post(
            "/v1/sessions", json={"email": f"p{CYRILLIC_A}ypal@example.org", "password": STRONG_PASSWORD}
        )
        assert wrong.status_code == 401


class TestChangeOfAddress:
    def test_the_new_address_is_confirmed_before_it_replaces_the_old_which_is_told(
        self, client: TestClient
    ) -> None:
        token = sign_up(client, "ada@example.org")
        asked = client.post("/v1/me/email", json={"email": "lovelace@example.org"}, headers=bearer(token))
        assert asked.status_code == 202 and asked.json()["pending_email"] == "lovelace@example.org"
        log_in(client, "ada@example.org")  # nothing changed yet
        assert client.get("/v1/me/email", headers=bearer(token)).json()["email"] == "ada@example.org"
        code = last_code(runtime_of(client), "lovelace@example.org")
        assert verify(client, code).json() == {"email_verified": True, "purpose": "change"}
        log_in(client, "lovelace@example.org")
        old = client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
        assert old.status_code == 401
        profile = client.get("/v1/me/profile", headers=bearer(token)).json()["fields"]
        assert profile["email"] == "lovelace@example.org"
        told = last_message(runtime_of(client), "ada@example.org")
        assert told["Subject"] == "Your Consentry email address was changed"
        assert "lovelace" not in told.as_string()

    @pytest.mark.parametrize(("lookalike", "original"), LOOK_ALIKES)
    def test_a_look_alike_of_another_account_is_refused_with_a_clear_message(
        self, client: TestClient, lookalike: str, original: str
    ) -> None:
        sign_up(client, original)
        token = sign_up(client, "mallory@example.org")
        refused = client.post("/v1/me/email", json={"email": lookalike}, headers=bearer(token))
        assert refused.status_code == 409
        kind = refused.json()["type"].removeprefix(PROBLEMS)
        assert kind in ("email-taken", "email-lookalike")
        if kind == "email-lookalike":
            assert "looks like another account's" in refused.json()["detail"]

    def test_an_address_taken_while_its_code_waited_is_refused_at_the_code(self, client: TestClient) -> None:
        token = sign_up(client, "ada@example.org")
        client.post("/v1/me/email", json={"email": "grace@example.org"}, headers=bearer(token))
        code = last_code(runtime_of(client), "grace@example.org")
        sign_up(client, "grace@example.org")
        taken = verify(client, code)
        assert taken.status_code == 409 and taken.json()["type"] == PROBLEMS + "email-taken"
        log_in(client, "ada@example.org")

    def test_a_refused_code_is_not_used_up_by_the_portal_either(self, client: TestClient) -> None:
        # The portal answers a refusal with a page, not an error: what the refused step wrote (the
        # code marked used) must still be undone, as the API's unit of work undoes it.
        token = sign_up(client, "ada@example.org")
        client.post("/v1/me/email", json={"email": "grace@example.org"}, headers=bearer(token))
        code = last_code(runtime_of(client), "grace@example.org")
        sign_up(client, "grace@example.org")
        page = client.post(
            "/portal/verify", data={"csrf_token": form_token(client, "/portal/verify"), "code": code}
        )
        assert page.status_code == 409
        again = verify(client, code)
        assert again.status_code == 409 and again.json()["type"] == PROBLEMS + "email-taken"

    def test_an_earlier_change_request_is_replaced_by_a_later_one(self, client: TestClient) -> None:
        token = sign_up(client, "ada@example.org")
        client.post("/v1/me/email", json={"email": "first@example.org"}, headers=bearer(token))
        first = last_code(runtime_of(client), "first@example.org")
        client.post("/v1/me/email", json={"email": "second@example.org"}, headers=bearer(token))
        second = last_code(runtime_of(client), "second@example.org")
        assert verify(client, first).json()["type"] == PROBLEMS + "invalid-code"
        assert verify(client, second).status_code == 200
        log_in(client, "second@example.org")

    def test_changing_to_the_same_address_or_garbage_is_422(self, client: TestClient) -> None:
        token = sign_up(client, "ada@example.org")
        for email in ("ADA@example.org", "not an email"):
            response = client.post("/v1/me/email", json={"email": email}, headers=bearer(token))
            assert response.status_code == 422 and response.json()["errors"][0]["pointer"] == "/email"

    def test_a_change_needs_a_login(self, client: TestClient) -> None:
        assert client.post("/v1/me/email", json={"email": "x@example.org"}).status_code == 401


class TestBrandsGetOnlyConfirmedAddresses:
    @pytest.fixture
    def unconfirmed(self, client: TestClient) -> str:
        token = sign_up(client, "ada@example.org", verify=False)
        profile = {"email": "ada@example.org", "dietary": ["vegan"], "household_size": 2}
        assert client.put("/v1/me/profile", json=profile, headers=bearer(token)).status_code == 200
        assert portal_login(client, "ada@example.org").status_code == 303
        return token

    def test_a_consent_that_requires_email_waits_for_confirmation(
        self, client: TestClient, brand: BrandCredentials, offer: dict[str, Any], unconfirmed: str
    ) -> None:
        params = authorize_params(brand, offer["id"], pkce()[1])
        screen = client.get("/oauth/authorize", params=params)
        assert "you have not confirmed yet" in screen.text and "Email me a new code" in screen.text
        refused = consent(client, params)
        assert refused.status_code == 400 and UNCONFIRMED_EMAIL in html.unescape(refused.text)
        verify(client, last_code(runtime_of(client), "ada@example.org"))
        tokens = authorized(client, brand, offer)
        read = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()["fields"]
        assert read["email"] == "ada@example.org" and read["email_verified"] is True

    def test_an_optional_email_is_left_out_until_confirmed(
        self, client: TestClient, brand: BrandCredentials, unconfirmed: str
    ) -> None:
        optional = publish_offer(
            client, brand_token(client, brand), required_fields=["dietary"], optional_fields=["email"]
        )
        tokens = authorized(client, brand, optional)
        read = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()["fields"]
        assert read == {"dietary": ["vegan"]}

    def test_a_grant_of_an_unconfirmed_address_reads_only_that_it_is_unconfirmed(
        self, client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
    ) -> None:
        tokens = authorized(client, brand, offer)
        (ada,) = accounts(db)
        ada.email_verified_at = None  # an account from before verification existed (migration 0013)
        db.add(ada)
        db.commit()
        read = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()["fields"]
        assert "email" not in read and read["email_verified"] is False


class TestOlderAccounts:
    """Accounts made before migration 0013: no skeleton index, a login index made before case folding."""

    def _as_before(self, db: Session, email: str, runtime: Runtime) -> Customer:
        (customer,) = [c for c in accounts(db) if c.email_index == runtime.accounts.email_token(email)]
        customer.email_skeleton = None
        customer.email_index = blind_token(runtime.accounts.blind_key, "email", email)  # NFC + lower only
        db.add(customer)
        db.commit()
        return customer

    def test_the_next_login_indexes_an_older_account(
        self, client: TestClient, runtime: Runtime, db: Session
    ) -> None:
        sign_up(client, "Stra\u00dfe@example.org")
        older = self._as_before(db, "Stra\u00dfe@example.org", runtime)
        assert older.email_index != runtime.accounts.email_token("strasse@example.org")
        log_in(client, "Stra\u00dfe@example.org")
        db.refresh(older)
        assert older.email_index == runtime.accounts.email_token("strasse@example.org")
        assert older.email_skeleton == runtime.accounts.skeleton_token("strasse@example.org")

    def test_reindexing_indexes_older_accounts_from_their_vault(
        self, client: TestClient, runtime: Runtime, db: Session
    ) -> None:
        sign_up(client, "paypal@example.org")
        older = self._as_before(db, "paypal@example.org", runtime)
        assert signup(client, f"p{CYRILLIC_A}ypal@example.org").status_code == 202
        assert len(accounts(db)) == 2  # unseen: the older account had no skeleton yet
        with runtime.sessions() as session:
            assert runtime.accounts.reindex(session) == 1
            session.commit()
        db.refresh(older)
        assert older.email_skeleton == runtime.accounts.skeleton_token("paypal@example.org")
        with runtime.sessions() as session:
            assert runtime.accounts.reindex(session) == 0


def test_probing_addresses_through_a_change_of_address_is_throttled(
    client: TestClient, runtime: Runtime
) -> None:
    # The attack: sign up once, then ask to move to address after address: a 409 `email-taken` tells
    # which have accounts. Every attempt counts, refused or not, per account (any network).
    sign_up(client, "owner@example.org")
    prober = sign_up(client, "prober@example.org")
    limit = runtime.settings.signup_max_per_address
    answers = [
        client.post("/v1/me/email", json={"email": "owner@example.org"}, headers=bearer(prober)).status_code
        for _ in range(limit + 1)
    ]
    # (the two sign-ups above came from the same network and count against it too)
    assert answers[: limit - 2] == [409] * (limit - 2) and answers[-1] == 429
