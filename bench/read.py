"""Read-path benchmark: audited profile reads against the cheapest request, on one worker.

Starts `consentry serve` (one uvicorn worker) on a fresh database, registers a brand, publishes an
offer, and has a customer consent through the portal, all over HTTP. Then, with the same lean client
(`common.http_rate`, which spends little CPU next to the server on the same cores) and
the same concurrency, in alternating rounds:
- requests/s of GET /healthz (the baseline: routing, middleware, one trivial query),
- requests/s of GET /v1/profile with a valid token (JWT check, live grant check, decryption,
  access record committed),
- client-credentials tokens/s from POST /oauth/token.
Prints the ratio profile/healthz (goal >= 0.5) and tokens/healthz. Then, in-process on the same
database, the cost of the value check every read makes (issue 6: goal < 5 % of a read): the usual
fast path (nothing can have fallen due) and the full look (something may have: a few queries, at
most once per due date or month per grant), each as a share of the time one profile read takes.

Usage: python bench/read.py [--seconds S] [--rounds N] [--concurrency C] [--database-url URL]
                            [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from urllib.parse import urlencode
from uuid import UUID

import httpx

from broker.consent.models import Grant
from broker.db import migrate
from broker.runtime import build_runtime
from broker.settings import Settings

sys.path.append(str(Path(__file__).parent))  # now, for `common` alone: what it would shadow is imported
from common import HttpRequest, Row, finish, http_rate, parse

GOAL = 0.5
VALUE_CHECK_GOAL = 0.05
REDIRECT = "http://127.0.0.1:9/callback"
PASSWORD = "plum-otter-satchel-91-lantern"  # noqa: S105 - a throwaway account in a temp database
OFFER = {
    "title": "Bench offer", "description": "Benchmark.", "required_fields": ["email", "dietary"],
    "optional_fields": ["household_size", "age_band"], "purpose": "personalised_offers",
    "purpose_explanation": "Benchmark.", "grant_duration_days": 30, "retention_days": 1, "recipients": [],
    "value": {"kind": "service", "description": "nothing", "due": {"when": "within_days", "days": 30}},
}  # fmt: skip


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name") and a.get("type") in {"hidden", "checkbox"}:
            self.values.append((a["name"], "yes" if a["name"] == "special_consent" else a.get("value", "")))


def _inputs(html: str) -> list[tuple[str, str]]:
    parser = _Inputs()
    parser.feed(html)
    return parser.values


@contextmanager
def server(data_dir: Path, database_url: str) -> Iterator[str]:
    """`consentry serve` with one worker on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": database_url,
           "CONSENTRY_BASE_URL": base}  # fmt: skip
    consentry = str(Path(sys.executable).parent / "consentry")
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [consentry, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _mailed_code(data_dir: Path) -> str:
    """The verification code the server's mail worker files under <data_dir>/mail/ (no SMTP here)."""
    for _ in range(300):
        for path in sorted((data_dir / "mail").glob("*.eml")):
            found = re.search(r"\b[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}\b", path.read_text())
            if found:
                return found.group(0)
        time.sleep(0.05)
    raise RuntimeError(f"no verification mail under {data_dir / 'mail'}")


def seed(base: str, data_dir: Path, database_url: str) -> tuple[str, tuple[str, str]]:
    """A profile access token for one consenting customer, and the brand's credentials."""
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": database_url}
    consentry = str(Path(sys.executable).parent / "consentry")
    created = subprocess.run([consentry, "brands", "create", "--name", "Bench", "--redirect-uri", REDIRECT],
                             env=env, check=True, capture_output=True, text=True)  # fmt: skip
    brand = json.loads(created.stdout)
    auth = (brand["client_id"], brand["client_secret"])
    with httpx.Client(base_url=base, timeout=30) as http:
        cc = http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": "offers:write"}, auth=auth
        )
        offer = http.post(
            "/v1/offers", json=OFFER, headers={"Authorization": f"Bearer {cc.json()['access_token']}"}
        ).json()
        http.post("/v1/customers", json={"email": "bench@example.org", "password": PASSWORD})
        http.post("/v1/customers/verify", json={"code": _mailed_code(data_dir)})
        token = http.post("/v1/sessions", json={"email": "bench@example.org", "password": PASSWORD}).json()[
            "token"
        ]
        profile = {
            "email": "bench@example.org",
            "dietary": ["vegan"],
            "household_size": 2,
            "birthdate": "1990-01-01",
        }
        http.put("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"})
        http.cookies.clear()
        login = _inputs(http.get("/portal/login").text)
        http.post("/portal/login", data={**dict(login), "email": "bench@example.org", "password": PASSWORD})
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {"response_type": "code", "client_id": auth[0], "redirect_uri": REDIRECT, "state": "s",
                  "code_challenge": challenge, "code_challenge_method": "S256",
                  "offer": offer["id"]}  # fmt: skip
        page = http.get("/oauth/authorize", params=params)
        answer = [*_inputs(page.text), ("decision", "approve")]
        decided = http.post("/oauth/authorize", content=urlencode(answer),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        code = httpx.URL(decided.headers["location"]).params["code"]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        tokens = http.post("/oauth/token", auth=auth, data=exchange)
        access: str = tokens.json()["access_token"]
        assert http.get("/v1/profile", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    return access, auth


def value_check_cost(data_dir: Path, database_url: str, access: str) -> tuple[float, float]:
    """Seconds per call of `ValueLedger.before_read` on the seeded grant: fast path, full look."""
    claims = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
    runtime = build_runtime(Settings(data_dir=data_dir, database_url=database_url))
    try:
        with runtime.sessions() as session:
            grant = session.get(Grant, UUID(claims["grant_id"]))
            assert grant is not None and grant.value_check_at is not None
            calls = 100_000
            started = time.perf_counter()
            for _ in range(calls):
                runtime.value.before_read(session, grant)
            fast = (time.perf_counter() - started) / calls
            looks, spent = 300, 0.0
            for _ in range(looks):
                grant.value_check_at = runtime.clock()  # as if something may have fallen due: look
                started = time.perf_counter()
                runtime.value.before_read(session, grant)
                spent += time.perf_counter() - started
            session.rollback()
    finally:
        runtime.engine.dispose()
    return fast, spent / looks


def main() -> int:
    """Seed, measure in alternating rounds, report the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parse(parser, quick={"seconds": 0.5, "rounds": 1, "concurrency": 4})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        migrate(url)
        with server(data_dir, url) as base:
            access, auth = seed(base, data_dir, url)
            kinds = {
                "healthz": HttpRequest("GET", "/healthz"),
                "profile": HttpRequest("GET", "/v1/profile", bearer=access),
                "token": HttpRequest("POST", "/oauth/token", basic=auth,
                                     form={"grant_type": "client_credentials", "scope": "offers:read"}),
            }  # fmt: skip
            rates: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(args.rounds):
                for kind, request in kinds.items():
                    rate = http_rate(base, request, seconds=args.seconds, concurrency=args.concurrency)
                    rates[kind].append(rate)
        fast, look = value_check_cost(data_dir, url, access)
    health, profile, tokens = (statistics.median(rates[k]) for k in kinds)
    read = 1e6 / profile  # µs of server time per profile read (one worker)
    workers = f"1 worker, {args.concurrency} clients"
    return finish(
        [
            Row(f"GET /v1/profile vs GET /healthz ({workers})", profile, health, "req/s",
                f">= {GOAL}x", profile / health >= GOAL),
            Row(f"POST /oauth/token, client credentials, vs GET /healthz ({workers})", tokens, health,
                "req/s"),
            Row("value check on the read path, usual case, vs one read", fast * 1e6, read, "µs",
                f"< {VALUE_CHECK_GOAL:.0%} of a read", fast * 1e6 / read < VALUE_CHECK_GOAL),
            Row("value check, full look (once per due date or month), vs one read", look * 1e6, read, "µs"),
        ],
        args,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
