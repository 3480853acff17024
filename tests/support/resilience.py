"""Support for the resilience tests (tests/resilience): a brand and consenting customers on a live
server, brand reads that remember what every request got, and what the audit log holds afterwards.

Every read sends its own `X-Request-ID`; the broker echoes it and writes it into the read's
`profile.read` entry, so a test can match what the client saw against what the log recorded.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, col, select

from broker.audit.entries import decode
from broker.audit.models import AuditEntry, AuditHead
from broker.audit.verify import snapshot, verify_log
from broker.db import create_db_engine
from broker.oauth.clients import register_brand
from broker.runtime import build_runtime
from support.core import STRONG_PASSWORD, bearer, cli_env, make_settings
from support.mail import sign_up_over_http
from support.oauth import REDIRECT, BrandCredentials, authorized, brand_token, portal_login, publish_offer
from vault.sqltypes import utcnow

PROFILE = {"dietary": ["vegan"], "household_size": 2, "given_name": "Ada"}
BROKEN = 0  # the status recorded for a request whose connection broke before an answer came


@dataclass
class Brand:
    """A brand registered with the CLI, with a brand-level token and a published offer."""

    credentials: BrandCredentials
    token: str
    offer: dict[str, Any]


def set_up_brand(database_url: str, http: httpx.Client) -> Brand:
    """Register a brand (as `consentry brands create` does, without its start-up cost) and publish the
    standard offer through `http`."""
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            registered = register_brand(
                session, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=utcnow
            )
            session.commit()
            credentials = BrandCredentials(registered.brand.client_id, registered.client_secret)
    finally:
        engine.dispose()
    token = brand_token(http, credentials)
    return Brand(credentials, token, publish_offer(http, token))


def sign_up_customer(http: httpx.Client, data_dir: Path, email: str) -> str:
    """A customer (address confirmed from the mail the server in `data_dir` files) with a profile that
    covers the offer; returns their bearer token."""
    sign_up_over_http(http, data_dir, email)
    session = http.post("/v1/sessions", json={"email": email, "password": STRONG_PASSWORD})
    assert session.status_code == 201, session.text
    token: str = session.json()["token"]
    http.cookies.clear()
    answer = http.put("/v1/me/profile", json={"email": email, **PROFILE}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return token


def consent_to(base: str, issuer: str, brand: Brand, email: str) -> str:
    """`email` logs in to the portal at `base` and consents to the brand's offer; the access token."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        assert portal_login(browser, email).status_code == 303
        tokens = authorized(browser, brand.credentials, brand.offer, issuer=issuer)
    access: str = tokens["access_token"]
    return access


def grant_of(http: httpx.Client, access_token: str) -> str:
    """The id of the grant behind an access token (one audited read)."""
    read = http.get("/v1/profile", headers=bearer(access_token))
    assert read.status_code == 200, read.text
    grant_id: str = read.json()["grant_id"]
    return grant_id


@dataclass
class Outcomes:
    """What each brand read got, by request id: its status, or BROKEN. Safe to share between threads."""

    statuses: dict[str, int] = field(default_factory=dict)
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)  # non-200 bodies
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, http: httpx.Client, access_token: str) -> int:
        """`GET /v1/profile` with a fresh request id; records and returns the status (BROKEN: no answer)."""
        request_id = uuid.uuid4().hex
        headers = {**bearer(access_token), "X-Request-ID": request_id}
        try:
            response = http.get("/v1/profile", headers=headers)
        except httpx.TransportError:
            status, problem = BROKEN, None
        else:
            assert response.headers["x-request-id"] == request_id
            status = response.status_code
            problem = None if status == 200 else {"content-type": response.headers.get("content-type")}
            if problem is not None:
                problem.update(_json_or_text(response))
        with self.lock:
            self.statuses[request_id] = status
            if problem is not None:
                self.problems[request_id] = problem
        return status

    def with_status(self, *statuses: int) -> set[str]:
        """The request ids that got one of `statuses`."""
        with self.lock:
            return {rid for rid, status in self.statuses.items() if status in statuses}


def _json_or_text(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"text": response.text[:300]}
    return body if isinstance(body, dict) else {"body": body}


@dataclass(frozen=True)
class StoredLog:
    """The audit log as stored: every index, the head's size, and the request id of each profile.read."""

    indices: list[int]
    head_size: int
    read_request_ids: Counter[str]
    kinds: Counter[str]


def stored_log(database_url: str) -> StoredLog:
    """Read the audit log straight from the database (after the servers are done with it)."""
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            indices = list(session.exec(select(AuditEntry.index).order_by(col(AuditEntry.index))))
            head = session.get(AuditHead, 1)
            reads = session.exec(select(AuditEntry.entry).where(AuditEntry.kind == "profile.read"))
            request_ids = Counter(str(decode(entry)["request_id"]) for entry in reads)
            kinds = Counter(session.exec(select(AuditEntry.kind)))
    finally:
        engine.dispose()
    return StoredLog(indices, head.size if head else 0, request_ids, kinds)


def verify_audit_log(data_dir: Path, database_url: str) -> dict[str, Any]:
    """`consentry audit verify --json` on the stored log: asserts that it passes; returns its report."""
    consentry = str(Path(sys.executable).parent / "consentry")
    done = subprocess.run(
        [consentry, "audit", "verify", "--json"],
        env=cli_env(data_dir, database_url), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def verify_audit_log_here(data_dir: Path, database_url: str) -> dict[str, Any]:
    """What `consentry audit verify --json` checks, run in this process (no interpreter start-up)."""
    runtime = build_runtime(make_settings(data_dir, database_url))
    try:
        checkpoints = runtime.checkpoints
        with snapshot(runtime.engine) as session:
            report = verify_log(session, checkpoints.verifier, origin=checkpoints.origin)
    finally:
        runtime.dispose()
    assert report.ok, report.as_json()
    return report.as_json()
