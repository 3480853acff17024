"""Key rotation under load, against a real server: a brand's reads (`GET /v1/profile`: JWT, live
grant, decryption, audit append) of several customers, and those customers' reads of their own
profiles, hammer the broker while the operator rotates the KEK and then the token signing key with
the `consentry` command. Not one read may fail; tokens signed before the signing rotation keep
working (their key stays in the JWKS until they have expired); every answered brand read has its
audit entry, the log verifies, and it holds each rotation.

Marked slow: 45-60 s on the shared 2-core machine at load average ~5, nearly all of it the Python
start-up of the server and of three `consentry` runs competing with the readers for the CPU.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select
from support.core import STRONG_PASSWORD, cli_env, live_server, make_settings
from support.mail import sign_up_over_http
from support.oauth import (
    REDIRECT,
    BrandCredentials,
    authorize_params,
    brand_token,
    consent,
    exchange,
    pkce,
    portal_login,
    publish_offer,
    redirect_params,
)

from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.audit.verify import snapshot, verify_log
from broker.db import create_db_engine
from broker.oauth.clients import register_brand
from broker.oauth.context import ACCESS_TOKEN_LIFETIME
from broker.runtime import build_runtime

CUSTOMERS = 6
READERS = 3
OFFER_FIELDS = {"required_fields": ["email"], "optional_fields": ["household_size"]}
CUSTOMER = "customer"  # in place of a kid: a read by the customer with their session token
CONSENTRY = str(Path(sys.executable).parent / "consentry")


def _jose_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@dataclass(frozen=True)
class Reader:
    """One customer's grant as a brand holds it (its tokens), the customer's own session token, and
    the email the profile must show."""

    email: str
    session_token: str
    access_token: str
    refresh_token: str

    @property
    def kid(self) -> str:
        """The signing key id in the access token's JOSE header."""
        kid: str = _jose_part(self.access_token, 0)["kid"]
        return kid

    @property
    def lifetime(self) -> int:
        """Seconds from the access token's `iat` to its `exp`."""
        claims = _jose_part(self.access_token, 1)
        return int(claims["exp"]) - int(claims["iat"])


@dataclass
class Load:
    """Reader threads cycling through every grant's token until stopped; what each read answered."""

    base: str
    tokens: list[Reader]
    outcomes: list[tuple[str, int, bool]] = field(default_factory=list)  # (kid or CUSTOMER, status, right)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.threads = [threading.Thread(target=self._read, args=(n,)) for n in range(READERS)]
        for thread in self.threads:
            thread.start()

    def _read(self, offset: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            for n in itertools.count(offset):
                if self.stop.is_set():
                    return
                with self.lock:
                    reader = self.tokens[n % len(self.tokens)]  # the list grows: fresh tokens join
                if n % 4 == 3:  # now and then the customer reads their own profile (no token, no audit entry)
                    kid, path, token = CUSTOMER, "/v1/me/profile", reader.session_token
                else:
                    kid, path, token = reader.kid, "/v1/profile", reader.access_token
                response = http.get(path, headers={"Authorization": f"Bearer {token}"})
                right = response.status_code == 200 and response.json()["fields"]["email"] == reader.email
                with self.lock:
                    self.outcomes.append((kid, response.status_code, right))

    def reads_so_far(self) -> int:
        """How many reads have been answered."""
        with self.lock:
            return len(self.outcomes)

    def join(self) -> None:
        """Stop the readers and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def consentry(data_dir: Path, database_url: str, *args: str) -> dict[str, Any]:
    """Run a `consentry` command; its JSON output."""
    done = subprocess.run(
        [CONSENTRY, *args], env=cli_env(data_dir, database_url), check=True, capture_output=True, timeout=60
    )
    output: dict[str, Any] = json.loads(done.stdout)
    return output


def register(data_dir: Path, database_url: str) -> BrandCredentials:
    """Register the brand in this process (what `consentry brands create` does, without its start-up)."""
    runtime = build_runtime(make_settings(data_dir, database_url))
    try:
        with runtime.sessions() as session:
            registered = register_brand(
                session, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
            )
            session.commit()
    finally:
        runtime.dispose()
    return BrandCredentials(registered.brand.client_id, registered.client_secret)


def grant_for(base: str, data_dir: Path, brand: BrandCredentials, offer_id: str, n: int) -> Reader:
    """A customer signs up (confirming the address), fills in the profile and approves the brand's
    offer: their session token and the brand's tokens."""
    email = f"reader{n}@example.org"
    with httpx.Client(base_url=base, timeout=30) as browser:
        sign_up_over_http(browser, data_dir, email)
        token = browser.post("/v1/sessions", json={"email": email, "password": STRONG_PASSWORD}).json()[
            "token"
        ]
        profile = {"email": email, "household_size": n + 1}
        headers = {"Authorization": f"Bearer {token}"}
        assert browser.patch("/v1/me/profile", json=profile, headers=headers).status_code == 200
        browser.cookies.clear()
        assert portal_login(browser, email).status_code == 303
        verifier, challenge = pkce()
        code = redirect_params(consent(browser, authorize_params(brand, offer_id, challenge)))["code"]
        tokens = exchange(browser, brand, code, verifier)
        assert tokens.status_code == 200, tokens.text
    return Reader(email, token, tokens.json()["access_token"], tokens.json()["refresh_token"])


def refreshed(base: str, brand: BrandCredentials, reader: Reader) -> Reader:
    """The brand refreshes a grant's tokens: the new access token is signed by the newest key."""
    response = httpx.post(
        base + "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": reader.refresh_token},
        auth=brand.auth(),
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    return replace(reader, access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])


def wait_for_reads(load: Load, more: int) -> None:
    """Let the readers answer `more` reads (at most 10 s), so each phase really ran under load."""
    target, deadline = load.reads_so_far() + more, time.monotonic() + 10
    while load.reads_so_far() < target and time.monotonic() < deadline:
        time.sleep(0.05)


def published_kids(base: str) -> set[str]:
    """The kids in the live JWKS."""
    return {key["kid"] for key in httpx.get(base + "/.well-known/jwks.json").json()["keys"]}


@pytest.mark.slow
def test_kek_and_signing_key_rotation_under_load_fail_no_read(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir, url = tmp_path / "var", fresh_database_url
    brand = register(data_dir, url)
    with live_server(data_dir, url, tmp_path / "server.log") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            offer = publish_offer(http, brand_token(http, brand, "offers:write"), **OFFER_FIELDS)
        before = [grant_for(base, data_dir, brand, offer["id"], n) for n in range(CUSTOMERS)]
        (old_kid,) = {reader.kid for reader in before}
        load = Load(base, list(before))
        try:
            wait_for_reads(load, 20)
            kek = consentry(data_dir, url, "keys", "rotate", "--batch-size", "2", "--grace", "0.5")
            wait_for_reads(load, 20)
            first = consentry(data_dir, url, "keys", "rotate-signing")
            rotated_at = load.reads_so_far()
            with load.lock:
                load.tokens.extend(refreshed(base, brand, reader) for reader in before)
            wait_for_reads(load, 40)
            # Rotating again at once retires nothing: the old key signed tokens that are still live.
            second = consentry(data_dir, url, "keys", "rotate-signing")
            wait_for_reads(load, 20)
            published = {old_kid, first["kid"], second["kid"], first["id_token_kid"], second["id_token_kid"]}
            assert published_kids(base) == published
        finally:
            load.join()

    assert kek == {"kek_version": 2, "rewrapped": CUSTOMERS, "retired": [1]}
    assert first["retired"] == [] and second["retired"] == []
    assert sorted(p.name for p in (data_dir / "keys").glob("kek-*.key")) == ["kek-2.key"]
    failures = Counter(status for _, status, right in load.outcomes if not right)
    assert failures == Counter(), f"{failures.total()} of {len(load.outcomes)} reads failed during rotation"
    old_kid_reads_after = sum(kid == old_kid for kid, _, _ in load.outcomes[rotated_at:])
    new_kid_reads = sum(kid == first["kid"] for kid, _, _ in load.outcomes)
    assert old_kid_reads_after > 20 and new_kid_reads > 10, "both generations of token must have been read"
    assert sum(kid == CUSTOMER for kid, _, _ in load.outcomes) > 10, "customers read their own profiles too"
    brand_reads = sum(kid != CUSTOMER for kid, _, _ in load.outcomes)
    assert logged_reads(url) == brand_reads, "every answered brand read has exactly one audit entry"
    # The old kid stays published until its successor has signed for a token lifetime, and the
    # server gives its tokens no longer than that: no token outlives its key (ACCESS_TOKEN_LIFETIME).
    assert {reader.lifetime for reader in before} == {int(ACCESS_TOKEN_LIFETIME.total_seconds())}
    assert rotations(url) == [
        ("kek", "2"),
        ("token-signing", first["kid"]),
        ("id-token-signing", first["id_token_kid"]),
        ("token-signing", second["kid"]),
        ("id-token-signing", second["id_token_kid"]),
    ]
    assert log_verifies(data_dir, url)


def log_verifies(data_dir: Path, database_url: str) -> bool:
    """What `consentry audit verify` checks: every entry, subtree hash and signed checkpoint."""
    runtime = build_runtime(make_settings(data_dir, database_url))
    try:
        checkpoints = runtime.checkpoints
        with snapshot(runtime.engine) as session:
            report = verify_log(session, checkpoints.verifier, origin=checkpoints.origin)
    finally:
        runtime.dispose()
    assert report.ok, report.as_json()
    return report.entries > 0


def logged_reads(database_url: str) -> int:
    """How many `profile.read` entries the audit log holds."""
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            query = select(func.count()).where(AuditEntry.kind == "profile.read")
            return session.exec(query).one()
    finally:
        engine.dispose()


def rotations(database_url: str) -> list[tuple[str, str]]:
    """The key rotations in the audit log, in order, each by the operator."""
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            query = (
                select(AuditEntry.entry)
                .where(AuditEntry.kind == "key.rotated")
                .order_by(col(AuditEntry.index))
            )
            entries = [decode(entry) for entry in session.exec(query)]
    finally:
        engine.dispose()
    assert {e["actor"] for e in entries} == {"operator"}
    return [(e["key"], e["version"]) for e in entries]
