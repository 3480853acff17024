"""What this machine allows: the ceilings under three of issue 17's goals, measured, not argued.

1. The dashboard (`GET /portal/`, a customer with `--grants` grants) as served, and again with a
   perfect cache (`perfect_cache_app.py`: the session check, the middleware and the page's bytes, and
   nothing else). If the perfect cache is below the ≥ 0.2x goal, no cache of the page can reach it:
   what is left is the cost of an authenticated request itself.
2. Audited reads through `consentry serve --workers 1` and `--workers 2`, with the CPU time of the
   server's processes, the database's processes (PostgreSQL) and the load generator, per read, from
   /proc. With 2 workers, 2 cores can serve at most 2 / (CPU per read) reads a second; against one
   worker's rate that is the ceiling of the ≥ 1.5x row at the cost per read measured here.
3. The work of a customer's grant list (`GET /v1/me/grants`) and of the dashboard's data, in this
   process, without HTTP: the CPU time of the session check, the page's query, its rows, the views and
   (for the list) the JSON, per request. One worker runs its Python one thread at a time, so it cannot
   serve more requests a second than 1 / (this work): against the time per request that the ≥ 0.2x
   rows allow (1 / (0.2 x the baseline's rate)), a ratio above 1.00x means that no faster HTTP stack
   reaches the goal; only not doing the work (serving the page from a cache) would.

Every rate is against the bare FastAPI baseline (uvicorn, uvloop + httptools) of `bench/servers.py`,
with the same lean client (`common.http_rate`), in alternating rounds (the best of each). Linux only
(/proc).

Usage: python bench/ceilings.py [--seconds S] [--rounds N] [--concurrency C] [--grants G]
                                [--database-url URL] [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from common import HttpRequest, Row, best, finish, http_rate, parse
from read import GOALS, WORKERS_GOAL, seed
from servers import baseline_and_broker, uvicorn_app

from broker.api.grant_schemas import GrantPage
from broker.db import migrate
from broker.runtime import build_runtime
from broker.settings import Settings

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> set[int]:
    found = {pid}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found |= _children(int(entry))
    return found


def _named(name: str) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.add(int(entry))
            except OSError:
                continue
    return found


def _cpu_seconds(pids: set[int]) -> float:
    """User + system CPU seconds of these processes so far (those that ended are left out)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICK


@contextmanager
def perfect_cache(data_dir: Path, database_url: str, issuer: str, page_bytes: int) -> Iterator[str]:
    """The broker with a perfect dashboard cache (`perfect_cache_app.py`) under uvicorn on uvloop +
    httptools, one worker, on the same database and data directory; yields its base URL."""
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": database_url,
           "CONSENTRY_BASE_URL": issuer, "CONSENTRY_PERFECT_CACHE_BYTES": str(page_bytes)}  # fmt: skip
    with uvicorn_app("perfect_cache_app:app", data_dir / "perfect.log", ready="/healthz", env=env) as base:
        yield base


def _check_instrument(base: str, cookies: dict[str, str], size: int) -> None:
    """The perfect cache still checks the session (no cookie, or one of no session in the database:
    sent to log in) and answers the page's size: else its figure would not bound a real cache."""
    for sent in ({}, dict.fromkeys(cookies, "forged")):  # no cookie; a cookie of no session
        anonymous = httpx.get(base + "/portal/", cookies=sent)
        if anonymous.status_code != 303 or "/portal/login" not in anonymous.headers.get("location", ""):
            raise SystemExit(f"the perfect cache answered {anonymous.status_code} without a session")
    cached = httpx.get(base + "/portal/", cookies=cookies)
    if cached.status_code != 200 or len(cached.content) != size:
        raise SystemExit(f"the perfect cache answered {cached.status_code}, {len(cached.content)} bytes")


def page_work(data_dir: Path, database_url: str, token: str, rounds: int, calls: int) -> tuple[float, float]:
    """CPU µs per request, in this process, of the work of a customer's grant list (`GET /v1/me/grants`
    as its route does it: read session, session check, page, views, JSON) and of the dashboard's data
    (the same with its last reads, value states and totals; no HTML): the best of `rounds`."""
    runtime = build_runtime(Settings(data_dir=data_dir, database_url=database_url))

    def listing() -> None:
        with runtime.read_sessions() as db:
            customer = runtime.accounts.live_session(db, token).customer_id
            page = runtime.grant_views.customer_page(
                db, customer, status=None, brand_client_id=None, cursor=None, limit=50
            )
            GrantPage.json_of(page)

    def dashboard() -> None:
        with runtime.read_sessions() as db:
            runtime.grant_views.dashboard(db, runtime.accounts.live_session(db, token).customer_id)

    def cost(work: Callable[[], None]) -> float:
        for _ in range(max(1, calls // 10)):  # warm: statements compiled, caches filled
            work()
        spent = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(calls):
                work()
            spent.append((time.process_time() - started) / calls * 1e6)
        return min(spent)

    try:
        return cost(listing), cost(dashboard)
    finally:
        runtime.dispose()


def _split(per_read: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f} µs" for name, value in per_read.items())


def main() -> int:
    """Start the servers, seed, measure, report the ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--grants", type=int, default=20)
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
            page = httpx.get(one + "/portal/", cookies=seeded.portal)
            page.raise_for_status()
            dashboard = HttpRequest("GET", "/portal/", cookies=seeded.portal)
            profile = HttpRequest("GET", "/v1/profile", bearer=seeded.access)

            def rate(base: str, request: HttpRequest) -> float:
                return http_rate(base, request, seconds=args.seconds, concurrency=args.concurrency)

            def accounted(base: str, pid: int) -> tuple[float, dict[str, float], float]:
                """Reads/s, CPU µs per read of the server, database and load generator, cores busy."""
                http_rate(base, profile, seconds=min(args.seconds, 1.0), concurrency=args.concurrency)
                groups = {"server": _children(pid), "load generator": {os.getpid()}}
                if postgres:
                    groups["database"] = _named("postgres")
                before = {name: _cpu_seconds(pids) for name, pids in groups.items()}
                began = time.perf_counter()
                reads = rate(base, profile)
                spent = time.perf_counter() - began
                used = {name: _cpu_seconds(pids) - before[name] for name, pids in groups.items()}
                per_read = {name: seconds / (reads * spent) * 1e6 for name, seconds in used.items()}
                return reads, per_read, sum(used.values()) / spent

            with perfect_cache(data_dir, url, one, len(page.content)) as cached:
                _check_instrument(cached, seeded.portal, len(page.content))
                bare_json = HttpRequest("GET", "/json")
                for base, request in ((bare, bare_json), (one, dashboard), (cached, dashboard)):
                    http_rate(base, request, seconds=min(args.seconds, 1.0), concurrency=args.concurrency)
                baseline = best(lambda: rate(bare, bare_json), args.rounds)
                served = best(lambda: rate(one, dashboard), args.rounds)
                ceiling = best(lambda: rate(cached, dashboard), args.rounds)
            one_reads, one_cpu, one_busy = accounted(one, servers.one_pid)
            two_reads, two_cpu, two_busy = accounted(two, servers.two_pid)
            calls = 20 if args.quick else 1000
            list_work, dashboard_work = page_work(data_dir, url, seeded.session, args.rounds + 1, calls)
    cores = os.cpu_count() or 1
    per_read_two = sum(two_cpu.values())
    goal = GOALS["dashboard"]
    allowed = {kind: 1e6 / (GOALS[kind] * baseline) for kind in ("grants", "dashboard")}  # µs a request
    beyond = "reported: above 1.00x, out of reach without caching the page"
    rows = [
        Row(f"GET /portal/ as served, {args.grants} grants, vs bare FastAPI", served, baseline, "req/s"),
        Row(f"GET /portal/, a perfect cache (session check, {len(page.content):,} bytes), vs bare FastAPI",
            ceiling, baseline, "req/s", f"reported: ceiling of the >= {goal}x row"),
        Row(f"audited reads, 1 worker ({one_reads:,.0f}/s): CPU per read ({_split(one_cpu)}; "
            f"{one_busy:.2f} cores busy)", sum(one_cpu.values()), None, "µs"),
        Row(f"audited reads, 2 workers ({two_reads:,.0f}/s): CPU per read ({_split(two_cpu)}; "
            f"{two_busy:.2f} cores busy)", per_read_two, None, "µs"),
        Row(f"workers 2 vs 1 at {cores} cores fully busy: {cores} / CPU per read, vs 1 worker's reads/s",
            cores / (per_read_two / 1e6), one_reads, "req/s",
            f"reported: ceiling of the >= {WORKERS_GOAL}x row"),
        Row(f"GET /v1/me/grants, {args.grants} grants: its work in process, no HTTP (session check, query, "
            f"views, JSON), vs the time per request of the >= {GOALS['grants']}x row",
            list_work, allowed["grants"], "µs", beyond),
        Row(f"GET /portal/, {args.grants} grants: its data in process, no HTTP and no HTML (the list's work, "
            f"last reads, value states, totals), vs the time per request of the >= {goal}x row",
            dashboard_work, allowed["dashboard"], "µs", beyond),
    ]  # fmt: skip
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
