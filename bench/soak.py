"""Soak: ten minutes of mixed traffic against one `consentry serve`, and whether it stays well.

Starts `consentry serve` on a fresh database with webhooks on (to a receiver of this process), seeds a
brand with an offer and a webhook endpoint, and customers who log in to the portal. Then clients keep
a mix going for `--seconds`: audited profile reads (most of it), new consents through the consent
screen, refresh-token rotations, revocations (RFC 7009, of a grant's refresh token, then the customer
ends the grant), portal dashboards and customer grant lists; the broker delivers a webhook for each
grant created or ended.

Rows (goals of issue 17): errors (any answer but the expected one, any exception: goal 0), p99
latency of the last minute against the first (goal within 1.5x), the server's resident memory at the
end against the end of the first minute (goal growth < 10 %), and, reported, requests per second and
webhooks received.

Usage: python bench/soak.py [--seconds S] [--clients N] [--customers N] [--database-url URL]
                            [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import base64
import http.server
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from broker.db import migrate

sys.path.append(str(Path(__file__).parent))  # now, for `common` alone: what it would shadow is imported
from common import Row, finish, parse
from read import OFFER, PASSWORD, REDIRECT, consent, inputs, mailed_code
from servers import consentry_process

P99_GOAL, RSS_GOAL = 1.5, 0.10
# op → weight: mostly reads, as brands read far more often than customers decide
# Consents and revocations balance, so the customers' grants (what the dashboards and lists show) stay
# about as many as at the start: a soak measures the server over time, not a growing dataset.
MIX = {"read": 50, "refresh": 10, "dashboard": 8, "grants": 8, "consent": 4, "revoke": 4}


@dataclass
class Grant:
    """A live grant the clients may use: its tokens change as they rotate."""

    id: str
    owner: str  # the customer's API session token
    access: str
    refresh: str


@dataclass
class Customer:
    """A customer with an API session and a portal login."""

    token: str
    portal: httpx.Client


@dataclass
class Tally:
    """What happened, shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, latency)
    kinds: list[str] = field(default_factory=list)  # each sample's operation
    errors: list[str] = field(default_factory=list)
    done: int = 0

    def record(self, at: float, latency: float, kind: str) -> None:
        with self.lock:
            self.samples.append((at, latency))
            self.kinds.append(kind)
            self.done += 1

    def error(self, what: str) -> None:
        with self.lock:
            if len(self.errors) < 20:
                self.errors.append(what)
            self.done += 1
            self.samples.append((-1.0, 0.0))
            self.kinds.append("error")


class _Hooks(http.server.BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with _Hooks.lock:
            _Hooks.received += 1
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def webhook_receiver() -> Iterator[str]:
    """A loopback HTTP server that accepts every webhook; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()


def seed(
    base: str, data_dir: Path, url: str, hooks: str, customers: int
) -> tuple[tuple[str, str], str, list]:
    """A brand with an offer and a webhook endpoint, and `customers` customers logged in to the portal."""
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": url}
    created = subprocess.run(
        [str(Path(sys.executable).parent / "consentry"), "brands", "create", "--name", "Soak",
         "--redirect-uri", REDIRECT], env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    brand = json.loads(created.stdout)
    auth = (brand["client_id"], brand["client_secret"])
    people: list[Customer] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        scope = "offers:write webhooks:write"
        cc = http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=auth)
        headers = {"Authorization": f"Bearer {cc.json()['access_token']}"}
        offer = http.post("/v1/offers", json=OFFER, headers=headers).json()
        hook = http.post("/v1/webhooks", json={"url": hooks, "description": "soak"}, headers=headers)
        hook.raise_for_status()
    for n in range(customers):
        portal = httpx.Client(base_url=base, timeout=30)
        email = f"soak{n}@example.org"
        portal.post("/v1/customers", json={"email": email, "password": PASSWORD})
        portal.post("/v1/customers/verify", json={"code": mailed_code(data_dir, email)})
        token = portal.post("/v1/sessions", json={"email": email, "password": PASSWORD}).json()["token"]
        profile = {"email": email, "dietary": ["vegan"], "birthdate": "1990-01-01"}
        portal.put("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"})
        portal.cookies.clear()
        login = dict(inputs(portal.get("/portal/login").text))
        portal.post("/portal/login", data={**login, "email": email, "password": PASSWORD})
        people.append(Customer(token, portal))
    return auth, offer["id"], people


class Soak:
    """The client threads and what they share."""

    def __init__(self, base: str, auth: tuple[str, str], offer_id: str, people: list[Customer]) -> None:
        self.base, self.auth, self.offer_id, self.people = base, auth, offer_id, people
        self.grants: list[Grant] = []
        self.lock = threading.Lock()
        self.tally = Tally()
        self.ops: dict[str, Callable[[httpx.Client, random.Random], None]] = {
            "read": self.read, "refresh": self.refresh, "dashboard": self.dashboard,
            "grants": self.grant_list, "consent": self.consent, "revoke": self.revoke,
        }  # fmt: skip

    def _take(self, rng: random.Random) -> Grant | None:
        with self.lock:
            if not self.grants:
                return None
            return self.grants.pop(rng.randrange(len(self.grants)))

    def _give(self, grant: Grant) -> None:
        with self.lock:
            self.grants.append(grant)

    @staticmethod
    def _expect(response: httpx.Response, status: int) -> None:
        if response.status_code != status:
            raise RuntimeError(
                f"{response.request.method} {response.request.url.path}: {response.status_code}"
            )

    def read(self, http: httpx.Client, rng: random.Random) -> None:
        grant = self._take(rng)
        if grant is None:
            return self.consent(http, rng)
        try:
            self._expect(http.get("/v1/profile", headers={"Authorization": f"Bearer {grant.access}"}), 200)
        finally:
            self._give(grant)
        return None

    def refresh(self, http: httpx.Client, rng: random.Random) -> None:
        grant = self._take(rng)
        if grant is None:
            return
        answer = http.post("/oauth/token", auth=self.auth,
                           data={"grant_type": "refresh_token", "refresh_token": grant.refresh})  # fmt: skip
        if answer.status_code == 200:
            rotated = answer.json()
            grant = Grant(grant.id, grant.owner, rotated["access_token"], rotated["refresh_token"])
        self._give(grant)
        self._expect(answer, 200)
        return

    def revoke(self, http: httpx.Client, rng: random.Random) -> None:
        grant = self._take(rng)
        if grant is None:
            return
        answer = http.post("/oauth/revoke", auth=self.auth, data={"token": grant.refresh})
        self._expect(answer, 200)
        read = http.get("/v1/profile", headers={"Authorization": f"Bearer {grant.access}"})
        self._expect(read, 401)  # revocation is immediate
        ended = http.delete(f"/v1/me/grants/{grant.id}", headers={"Authorization": f"Bearer {grant.owner}"})
        self._expect(ended, 204)  # and the customer ends the grant itself
        return

    def dashboard(self, _: httpx.Client, rng: random.Random) -> None:
        person = rng.choice(self.people)
        self._expect(person.portal.get("/portal/"), 200)

    def grant_list(self, http: httpx.Client, rng: random.Random) -> None:
        person = rng.choice(self.people)
        self._expect(http.get("/v1/me/grants", headers={"Authorization": f"Bearer {person.token}"}), 200)

    def consent(self, _: httpx.Client, rng: random.Random) -> None:
        person = rng.choice(self.people)
        tokens = consent(person.portal, self.auth, self.offer_id)
        payload = tokens["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self._give(Grant(claims["grant_id"], person.token, tokens["access_token"], tokens["refresh_token"]))

    def client(self, seed: int, deadline: float, started: float) -> None:
        rng, names = random.Random(seed), list(MIX)
        weights = [MIX[name] for name in names]
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while time.perf_counter() < deadline:
                op = rng.choices(names, weights)[0]
                begun = time.perf_counter()
                try:
                    self.ops[op](http, rng)
                except Exception as exc:
                    self.tally.error(f"{op}: {exc}")
                    continue
                self.tally.record(begun - started, time.perf_counter() - begun, op)


def rss(pid: int) -> int:
    """Resident memory in KiB of `pid` and its children (the workers of `serve --workers N`)."""
    total, pids = 0, [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def main() -> int:
    """Start the server, seed, soak, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--customers", type=int, default=4)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parse(parser, quick={"seconds": 20.0, "clients": 4, "customers": 2})
    window = min(60.0, args.seconds / 4)  # the first and the last minute (a quarter of a short run)
    os.environ["CONSENTRY_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # the receiver is on loopback
    with tempfile.TemporaryDirectory() as tmp, webhook_receiver() as hooks:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{tmp}/soak.db"
        migrate(url)
        with consentry_process(data_dir, url, data_dir / "serve.log") as (base, pid):
            auth, offer_id, people = seed(base, data_dir, url, hooks, args.customers)
            soak = Soak(base, auth, offer_id, people)
            for person in people:
                soak.consent(person.portal, random.Random(0))
            started = time.perf_counter()
            deadline = started + args.seconds
            threads = [
                threading.Thread(target=soak.client, args=(n, deadline, started)) for n in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            trajectory: list[tuple[float, int]] = []  # (seconds, KiB): does memory level off or keep rising?
            while time.perf_counter() < deadline:
                time.sleep(min(window / 2, max(0.0, deadline - time.perf_counter())))
                trajectory.append((time.perf_counter() - started, rss(pid)))
            rss_first = next((kib for at, kib in trajectory if at >= window), trajectory[0][1])
            for thread in threads:
                thread.join()
            rss_last = rss(pid)
            for person in people:
                person.portal.close()
    tally = soak.tally
    first = [lat for at, lat in tally.samples if 0 <= at < window]
    last = [lat for at, lat in tally.samples if at >= args.seconds - window]
    errors = sum(at < 0 for at, _ in tally.samples)
    levels = ", ".join(f"{at:.0f}: {kib / 1024:.0f}" for at, kib in trajectory)
    print(f"server RSS over the run (s: MiB): {levels}")
    minutes = range(int(args.seconds // window))  # does latency climb, or only wander?
    by_minute = [[lat for at, lat in tally.samples if n * window <= at < (n + 1) * window] for n in minutes]
    p99s = [f"{(n + 1) * window:.0f}: {p99(lats) * 1e3:.0f}" for n, lats in enumerate(by_minute) if lats]
    print("p99 per window (s: ms): " + ", ".join(p99s))
    # Which requests got slower: each operation's p99, first window against last.
    timed = list(zip(tally.samples, tally.kinds, strict=True))
    for op in MIX:
        early = [lat for (at, lat), kind in timed if kind == op and 0 <= at < window]
        late = [lat for (at, lat), kind in timed if kind == op and at >= args.seconds - window]
        counts = f"{len(early)} / {len(late)} requests"
        print(f"  {op:>9}: p99 {p99(early) * 1e3:6.0f} -> {p99(late) * 1e3:6.0f} ms ({counts})")
    print(f"{tally.done:,} requests, {errors} errors (the first {len(tally.errors)} below)")
    for error in tally.errors:
        print("  error:", error)
    minute = f"{window:.0f} s"
    rows = [
        Row(f"soak errors ({args.seconds:.0f} s, {args.clients} clients, mixed)", errors, None, "errors",
            "0", errors == 0),
        Row(f"soak p99 latency, last {minute} vs first {minute}", p99(last) * 1e3, p99(first) * 1e3, "ms",
            f"<= {P99_GOAL}x", p99(last) <= P99_GOAL * p99(first)),
        Row(f"soak server RSS, end vs after the first {minute}", rss_last / 1024, rss_first / 1024, "MiB",
            f"growth < {RSS_GOAL:.0%}", rss_last < (1 + RSS_GOAL) * rss_first),
        Row("soak throughput, mixed requests", tally.done / args.seconds, None, "req/s"),
        Row("soak webhooks received", _Hooks.received, None, "webhooks"),
    ]  # fmt: skip
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
