"""What this machine allows: the ceilings under two of issue 17's goals, measured, not argued.

1. The dashboard (`GET /portal/`, a customer with `--grants` grants) as served, and again with a
   perfect cache (`perfect_cache_app.py`: the session check, the middleware and the page's bytes, and
   nothing else). If the perfect cache is below the ≥ 0.2x goal, no cache of the page can reach it:
   what is left is the cost of an authenticated request itself.
2. Audited reads through `consentry serve --workers 1` and `--workers 2`, with the CPU time of the
   server's processes, the database's processes (PostgreSQL) and the load generator, per read, from
   /proc. With 2 workers, 2 cores can serve at most 2 / (CPU per read) reads a second; against one
   worker's rate that is the ceiling of the ≥ 1.5x row at the cost per read measured here.

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
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from common import HttpRequest, Row, best, finish, http_rate, parse
from read import GOALS, WORKERS_GOAL, seed
from servers import baseline_and_broker, uvicorn_app

from broker.db import migrate

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
    cores = os.cpu_count() or 1
    per_read_two = sum(two_cpu.values())
    goal = GOALS["dashboard"]
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
    ]  # fmt: skip
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
