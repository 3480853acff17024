"""Request benchmark: every request-speed row of issue 17, each against a bare FastAPI endpoint.

The baseline is `bare_app.py` (a bare FastAPI JSON endpoint) served by uvicorn with uvloop +
httptools, one worker, started here; never one of our endpoints. Beside it, `consentry serve
--workers 1` and `consentry serve --workers 2` on a fresh database (one broker: same data directory
and issuer). A brand, its offers and one customer who consents to `--grants` of them are set up over
HTTP. Then, with the same lean client (`common.http_rate`) and concurrency, in alternating rounds
(median of the rounds), requests/s of:
- the bare endpoint (the baseline),
- GET /healthz (goal >= 0.8x),
- GET /v1/profile with a valid token: JWT check, live grant and value check, decryption, durable
  audit entry before the answer (goal >= 0.3x),
- POST /oauth/token, client credentials (goal >= 0.3x),
- GET /v1/me/grants and the portal dashboard GET /portal/ for the customer with 20 grants (>= 0.2x),
- GET /v1/profile through `--workers 2` against `--workers 1` (goal >= 1.5x on PostgreSQL; on
  SQLite reported: its one writer at a time is the limit there). This row compares capacities: each
  server's best rate over 1, 2, 4 and 8 times `--concurrency` clients. One worker is saturated by 32
  clients; two are not, as each then has only 16 reads in flight, and a worker whose reads all wait
  on its batch's WAL flush has nothing else to do. The same two figures at `--concurrency` clients
  are reported beside it.
Then, in-process on the same database, the cost of the value check every read makes (issue 6: goal
< 5 % of a read): the usual fast path and the full look, each as a share of one profile read.

Usage: python bench/read.py [--seconds S] [--rounds N] [--concurrency C] [--grants G]
                            [--database-url URL] [--json PATH] [--quick]
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
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx

from broker.consent.models import Grant
from broker.db import migrate
from broker.runtime import build_runtime
from broker.settings import Settings

sys.path.append(str(Path(__file__).parent))  # now, for `common` alone: what it would shadow is imported
from common import HttpRequest, Row, finish, http_rate, parse
from servers import baseline_and_broker

GOALS = {"healthz": 0.8, "profile": 0.3, "token": 0.3, "grants": 0.2, "dashboard": 0.2}
WORKERS_GOAL = 1.5
CAPACITY_FACTORS = (1, 2, 4, 8)  # the workers row: client counts, as multiples of --concurrency
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


def inputs(html: str) -> list[tuple[str, str]]:
    """The hidden inputs and checkboxes of a form page, as the browser would send them."""
    parser = _Inputs()
    parser.feed(html)
    return parser.values


def mailed_code(data_dir: Path, to: str | None = None) -> str:
    """The verification code the server's mail worker files under <data_dir>/mail/ (no SMTP here),
    in the first message (to `to`, when given)."""
    for _ in range(300):
        for path in sorted((data_dir / "mail").glob("*.eml")):
            text = path.read_text()
            if to is not None and to not in text:
                continue
            found = re.search(r"\b[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}\b", text)
            if found:
                return found.group(0)
        time.sleep(0.05)
    raise RuntimeError(f"no verification mail under {data_dir / 'mail'}")


@dataclass(frozen=True)
class Seeded:
    """What the measured requests need: a profile access token, the brand's credentials, and the
    customer's API session token and portal cookies."""

    access: str
    brand: tuple[str, str]
    session: str
    portal: dict[str, str]


def consent(http: httpx.Client, auth: tuple[str, str], offer_id: str) -> dict[str, Any]:
    """The logged-in customer approves `offer_id` in the consent screen; the brand's token response
    (access and refresh tokens) for the code."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": auth[0], "redirect_uri": REDIRECT, "state": "s",
              "code_challenge": challenge, "code_challenge_method": "S256", "offer": offer_id}  # fmt: skip
    page = http.get("/oauth/authorize", params=params)
    page.raise_for_status()
    answer = [*inputs(page.text), ("decision", "approve")]
    decided = http.post("/oauth/authorize", content=urlencode(answer),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    code = httpx.URL(decided.headers["location"]).params["code"]
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier}  # fmt: skip
    tokens = http.post("/oauth/token", auth=auth, data=exchange)
    tokens.raise_for_status()
    answered: dict[str, Any] = tokens.json()
    return answered


def seed(base: str, data_dir: Path, database_url: str, grants: int) -> Seeded:
    """A brand with `grants` offers and one customer who consents to every one of them."""
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": database_url}
    consentry_cli = str(Path(sys.executable).parent / "consentry")
    created = subprocess.run(
        [consentry_cli, "brands", "create", "--name", "Bench", "--redirect-uri", REDIRECT],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    brand = json.loads(created.stdout)
    auth = (brand["client_id"], brand["client_secret"])
    with httpx.Client(base_url=base, timeout=30) as http:
        cc = http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "scope": "offers:write"}, auth=auth
        )
        brand_auth = {"Authorization": f"Bearer {cc.json()['access_token']}"}
        offers = [
            http.post("/v1/offers", json={**OFFER, "title": f"Bench offer {n}"}, headers=brand_auth).json()
            for n in range(grants)
        ]
        http.post("/v1/customers", json={"email": "bench@example.org", "password": PASSWORD})
        http.post("/v1/customers/verify", json={"code": mailed_code(data_dir)})
        signed_in = http.post("/v1/sessions", json={"email": "bench@example.org", "password": PASSWORD})
        token: str = signed_in.json()["token"]
        profile = {"email": "bench@example.org", "dietary": ["vegan"], "household_size": 2,
                   "birthdate": "1990-01-01"}  # fmt: skip
        http.put("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"})
        http.cookies.clear()
        login = inputs(http.get("/portal/login").text)
        http.post("/portal/login", data={**dict(login), "email": "bench@example.org", "password": PASSWORD})
        accesses = [consent(http, auth, offer["id"])["access_token"] for offer in offers]
        assert http.get("/v1/profile", headers={"Authorization": f"Bearer {accesses[0]}"}).status_code == 200
        listed = http.get("/v1/me/grants", headers={"Authorization": f"Bearer {token}"}).json()
        assert len(listed["items"]) == grants, listed
        portal = {cookie.name: cookie.value or "" for cookie in http.cookies.jar}
    return Seeded(accesses[0], auth, token, portal)


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
        runtime.dispose()
    return fast, spent / looks


def _rates(
    bases: dict[str, str], kinds: dict[str, HttpRequest], args: argparse.Namespace
) -> dict[str, float]:
    """Requests/s of each kind, at the base URL of the same name: the median of alternating rounds."""
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for kind, request in kinds.items():  # warm-up, not counted: every worker started, caches filled
        http_rate(bases[kind], request, seconds=min(args.seconds, 1.0), concurrency=args.concurrency)
    for _ in range(args.rounds):
        for kind, request in kinds.items():
            rate = http_rate(bases[kind], request, seconds=args.seconds, concurrency=args.concurrency)
            rates[kind].append(rate)
    return {kind: statistics.median(values) for kind, values in rates.items()}


def _capacities(
    bases: dict[str, str], request: HttpRequest, args: argparse.Namespace
) -> dict[str, tuple[float, int]]:
    """Each server's capacity for `request`: its best rate (median of alternating rounds) over 1, 2, 4
    and 8 times `--concurrency` clients, with the client count it was reached at."""
    counts = [args.concurrency * factor for factor in CAPACITY_FACTORS]
    rates: dict[tuple[str, int], list[float]] = {(name, n): [] for name in bases for n in counts}
    for _ in range(args.rounds):
        for n in counts:
            for name, base in bases.items():
                rates[name, n].append(http_rate(base, request, seconds=args.seconds, concurrency=n))
    return {name: max((statistics.median(rates[name, n]), n) for n in counts) for name in bases}


def main() -> int:
    """Start the servers, seed, measure in alternating rounds, report the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--grants", type=int, default=20, help="grants of the customer whose lists are read")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parse(parser, quick={"seconds": 0.5, "rounds": 1, "concurrency": 4, "grants": 2})
    postgres = bool(args.database_url and args.database_url.startswith("postgresql"))
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        migrate(url)
        with baseline_and_broker(data_dir, url) as servers:
            bare, one, two = servers.bare, servers.one, servers.two
            seeded = seed(one, data_dir, url, args.grants)
            kinds = {
                "bare": HttpRequest("GET", "/json"),
                "healthz": HttpRequest("GET", "/healthz"),
                "profile": HttpRequest("GET", "/v1/profile", bearer=seeded.access),
                "token": HttpRequest("POST", "/oauth/token", basic=seeded.brand,
                                     form={"grant_type": "client_credentials", "scope": "offers:read"}),
                "grants": HttpRequest("GET", "/v1/me/grants", bearer=seeded.session),
                "dashboard": HttpRequest("GET", "/portal/", cookies=seeded.portal),
                "profile2": HttpRequest("GET", "/v1/profile", bearer=seeded.access),
            }  # fmt: skip
            bases = dict.fromkeys(kinds, one) | {"bare": bare, "profile2": two}
            rate = _rates(bases, kinds, args)
            capacity = _capacities({"one": one, "two": two}, kinds["profile"], args)
        fast, look = value_check_cost(data_dir, url, access=seeded.access)
    base, read = rate["bare"], 1e6 / rate["profile"]  # µs of server time per profile read (one worker)
    setup = f"1 worker, {args.concurrency} clients"
    figures = {
        "healthz": "GET /healthz",
        "profile": "audited GET /v1/profile",
        "token": "POST /oauth/token, client credentials",
        "grants": f"GET /v1/me/grants, a customer with {args.grants} grants",
        "dashboard": f"GET /portal/ (dashboard), a customer with {args.grants} grants",
    }
    rows = [
        Row(f"{figure} vs bare FastAPI ({setup})", rate[kind], base, "req/s", f">= {GOALS[kind]}x",
            rate[kind] / base >= GOALS[kind])
        for kind, figure in figures.items()
    ]  # fmt: skip
    (two_rate, two_clients), (one_rate, one_clients) = capacity["two"], capacity["one"]
    workers = two_rate / one_rate
    rows += [
        Row(f"audited GET /v1/profile, capacity, serve --workers 2 ({two_clients} clients) vs --workers 1 "
            f"({one_clients} clients)", two_rate, one_rate, "req/s",
            f">= {WORKERS_GOAL}x" if postgres else "reported (goal on PostgreSQL)",
            workers >= WORKERS_GOAL if postgres else None),
        Row(f"audited GET /v1/profile, serve --workers 2 vs --workers 1, {args.concurrency} clients each",
            rate["profile2"], rate["profile"], "req/s"),
        Row("value check on the read path, usual case, vs one read", fast * 1e6, read, "µs",
            f"< {VALUE_CHECK_GOAL:.0%} of a read", fast * 1e6 / read < VALUE_CHECK_GOAL),
        Row("value check, full look (once per due date or month), vs one read", look * 1e6, read, "µs"),
    ]  # fmt: skip
    print(f"bare FastAPI baseline (uvicorn, uvloop + httptools, 1 worker): {base:,.0f} req/s")
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
