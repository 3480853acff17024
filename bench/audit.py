"""Audit log benchmark: appends against plain inserts, offline verification speed, proof times.

Figures, each against a baseline measured in the same run (alternating rounds where it matters):
- append throughput of realistic entries (~400-byte `profile.read`), one per transaction (one audited
  read = one commit) and 1,000 per transaction (group commit), against plain INSERTs of the same rows
  into a copy of `audit_entry` in transactions of the same shape (no tree nodes, no head lock);
- `consentry-audit verify` speed (goal >= 300 k entries/s): `StreamingTree` over N entries in pages of
  10,000, and `verify_log` end to end against an in-memory auditor API (httpx.MockTransport serving
  C2SP tlog-tiles: 256-entry bundles and the hash tiles of the root; and, reported, the JSON + base64
  pages it falls back to), against one SHA-256 per entry in a plain loop;
- inclusion and consistency proof times as one log grows to 1 M entries (at 10 k, 100 k, 1 M), each
  call in its own transaction like an API request, against a primary-key fetch of one entry; their
  growth per 10x, and the extrapolation to 10 M (goal < 5 ms).

The database must be a throwaway (default: SQLite in a temp dir): the benchmark refuses a non-empty
audit log, and empties the one it writes between parts. `--max-size 10000000` measures 10 M directly.

Usage: python bench/audit.py [--max-size N] [--verify-entries N] [--single N] [--batched N]
                             [--rounds N] [--samples N] [--budget SECONDS] [--database-url URL]
                             [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import base64
import hashlib
import itertools
import json
import math
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine, MetaData, Table, insert, quoted_name
from sqlmodel import Session, SQLModel

from broker.audit import tree
from broker.audit.entries import Actor, Event, Kind
from broker.audit.models import AuditEntry
from broker.db import SessionFactory, create_db_engine, migrate, session_factory
from clients.auditor import AuditorClient, Checkpoint, StreamingTree, verify_log
from clients.auditor.tlog import (
    TILE_WIDTH,
    encode_bundle,
    format_checkpoint,
    generate_private_key,
    leaf_hash,
    parse_private_key,
    parse_tile_path,
)

sys.path.append(str(Path(__file__).parent))  # now, for `common` alone: what it would shadow is imported
from common import Row, finish, parse

GOAL_VERIFY = 300_000  # entries/s
GOAL_PROOF_MS, GOAL_SIZE = 5.0, 10_000_000
PAGE = tree.MAX_ENTRIES_PER_READ  # entries per page of the auditor API
BUILD_BATCH = 50_000  # entries per transaction while building the proofs' log
START = datetime(2026, 11, 23, tzinfo=UTC)
FIELDS = ["email", "dietary", "household_size", "age_band", "postcode"]
ORIGIN = "bench.example/audit"
JSON = {"content-type": "application/json"}


def realistic_entries(count: int, seed: int = 1) -> list[bytes]:
    """`profile.read` entries as the broker writes them: RFC 8785 JSON, ~400 bytes each."""
    rng = random.Random(seed)

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    return [
        Event(kind=Kind.PROFILE_READ, at=START + timedelta(milliseconds=i), actor=Actor.BRAND,
              request_id=uid().hex, brand=uid(), subject=rng.randbytes(32).hex(), grant=uid(),
              fields=FIELDS, purpose="personalised_offers").canonical()
        for i in range(count)
    ]  # fmt: skip


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[math.ceil(len(ordered) * 0.95) - 1]


# 1. Appends


def plain_table(engine: Engine) -> Table:
    """A copy of `audit_entry` (same columns and indexes, renamed) for the plain inserts."""
    table = SQLModel.metadata.tables["audit_entry"].to_metadata(MetaData(), name="bench_plain_entry")
    for index in table.indexes:
        index.name = quoted_name(f"bench_{index.name}", quote=None)
    table.drop(engine, checkfirst=True)
    table.create(engine)
    return table


def appends(sessions: SessionFactory, plain: Table, indices: Iterator[int], entries: list[bytes],
            per_tx: int, rounds: int) -> tuple[float, float]:  # fmt: skip
    """Median entries/s of `append_many` and of plain inserts of the same rows, `per_tx` per transaction."""
    lookup = tree.Lookup(Kind.PROFILE_READ.value, uuid.uuid4(), uuid.uuid4())
    batches = [entries[i : i + per_tx] for i in range(0, len(entries), per_tx)]

    def log(session: Session, batch: list[bytes]) -> None:
        tree.append_many(session, [(entry, lookup) for entry in batch], at=START)

    def rows(session: Session, batch: list[bytes]) -> None:
        session.exec(insert(plain), params=[  # the row append_many writes, computed alike
            {"index": next(indices), "entry": entry, "leaf_hash": leaf_hash(entry), "created_at": START,
             "kind": lookup.kind, "customer_id": lookup.customer_id, "brand_id": lookup.brand_id}
            for entry in batch
        ])  # fmt: skip

    rates: dict[Callable[[Session, list[bytes]], None], list[float]] = {log: [], rows: []}
    for _ in range(rounds):
        for write, samples in rates.items():
            began = time.perf_counter()
            for batch in batches:
                with sessions() as session:
                    write(session, batch)
                    session.commit()
            samples.append(len(entries) / (time.perf_counter() - began))
    return statistics.median(rates[log]), statistics.median(rates[rows])


def empty_log(engine: Engine) -> None:
    """Delete the audit log the append figures wrote, so the proofs' log starts at 0."""
    with engine.begin() as conn:
        for table in ("audit_entry", "audit_node", "audit_head"):
            conn.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - fixed names


# 2. Verification


class FakeAuditor:
    """The auditor API over a log whose entry i is `pool[i % len(pool)]`, as an httpx transport: the
    C2SP tlog-tiles the verifier reads (entry bundles rendered on demand, the hash tiles it needs
    computed up front), and the JSON pages it falls back to when `tiles` is off."""

    def __init__(self, pool: list[bytes], size: int) -> None:
        self.pool, self.encoded = pool, [base64.b64encode(entry).decode() for entry in pool]
        self.size, self.tiles = size, True
        self.nodes: dict[tuple[int, int], bytes] = {}  # (tile level, position): nodes at height 8·level
        edge = size // TILE_WIDTH * TILE_WIDTH  # level 0: only the right edge's partial tile is asked for

        def keep(height: int, position: int, hashes: list[bytes]) -> None:
            if height % 8 == 0:
                for i, digest in enumerate(hashes, position):
                    if height or i >= edge:
                        self.nodes[height // 8, i] = digest

        leaves, log = [leaf_hash(entry) for entry in pool], StreamingTree()
        for start in range(0, size, PAGE):
            stop = min(start + PAGE, size)
            log.extend_hashes([leaves[i % len(pool)] for i in range(start, stop)], keep)
        self.root = log.root()
        self.signer = parse_private_key(generate_private_key(ORIGIN))
        self.note = self.signer.sign(format_checkpoint(Checkpoint(ORIGIN, size, self.root)))
        self.seconds = 0.0  # spent rendering answers: the server's time, not the verifier's

    def handle(self, request: httpx.Request) -> httpx.Response:
        match request.url.path:
            case "/v1/audit/key":
                return httpx.Response(200, text=self.signer.verifier_key() + "\n")
            case "/v1/audit/checkpoint":
                return httpx.Response(200, text=self.note)
        began = time.perf_counter()
        if request.url.path.startswith("/v1/audit/tile/"):
            response = self.tile(request.url.path.removeprefix("/v1/audit/"))
        else:
            params = request.url.params
            response = self.page(int(params["start"]), int(params.get("end", self.size)))
        self.seconds += time.perf_counter() - began
        return response

    def tile(self, path: str) -> httpx.Response:
        if not self.tiles:
            return httpx.Response(404, json={"title": "Not Found"})
        tile, pool = parse_tile_path(path), self.pool
        first = tile.index * TILE_WIDTH
        if tile.level is None:
            bundle = encode_bundle([pool[i % len(pool)] for i in range(first, first + tile.width)])
            return httpx.Response(200, content=bundle)
        hashes = [self.nodes[tile.level, first + i] for i in range(tile.width)]
        return httpx.Response(200, content=b"".join(hashes))

    def page(self, start: int, stop: int) -> httpx.Response:
        end, encoded = min(stop, start + PAGE), self.encoded
        items = [{"index": i, "entry": encoded[i % len(encoded)]} for i in range(start, end)]
        body = {"start": start, "end": end, "tree_size": self.size, "entries": items,
                "next": end if end < stop else None}  # fmt: skip
        return httpx.Response(200, content=json.dumps(body).encode(), headers=JSON)


def verification(count: int, rounds: int) -> dict[str, float]:
    """Median entries/s of raw SHA-256, `StreamingTree`, and `verify_log` over tiles (with and without
    the in-memory server's time) and over the JSON pages (the verifier's own time)."""
    pool = realistic_entries(PAGE)  # the log repeats one page: hashing costs the same, memory stays small
    pages = [pool[: min(PAGE, count - start)] for start in range(0, count, PAGE)]

    def raw() -> None:
        sha256 = hashlib.sha256
        for page in pages:
            for entry in page:
                sha256(entry).digest()

    def streaming() -> bytes:
        hasher = StreamingTree()
        for page in pages:
            hasher.extend(page)
        return hasher.root()

    server = FakeAuditor(pool, count)
    names = ("raw", "streaming", "verify", "verify+server", "json")
    rates: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name, run in (("raw", raw), ("streaming", streaming)):
            began = time.perf_counter()
            run()
            rates[name].append(count / (time.perf_counter() - began))
        for tiles in (True, False):
            server.seconds, server.tiles = 0.0, tiles
            transport = httpx.MockTransport(server.handle)
            with AuditorClient("http://auditor.test", "token", transport=transport) as client:
                # One request at a time, so that the server's time can be taken out of the verifier's (the
                # CLI keeps 4 in flight, which hides a network's latency, not CPU work).
                report = verify_log(client, key=server.signer.verifier, fetch_ahead=1)
            if not report.verified or report.source != ("tiles" if tiles else "json"):
                raise RuntimeError(f"verify_log failed: {report.source} {report.problems}")
            own = report.entries / (report.seconds - server.seconds)
            if tiles:
                rates["verify"].append(own)
                rates["verify+server"].append(report.entries_per_second)
            else:
                rates["json"].append(own)
    return {name: statistics.median(samples) for name, samples in rates.items()}


# 3. Proofs


def proof_times(
    sessions: SessionFactory, size: int, samples: int, budget: float, rng: random.Random
) -> dict[str, list[float]]:
    """Milliseconds per call, each in its own committed transaction like an API request: `samples`
    calls of each kind, or as many as `budget` seconds allow (at least 10), after 3 to warm up."""
    calls: dict[str, Callable[[Session, int], object]] = {
        "pk-get": lambda session, i: session.get(AuditEntry, i),
        "inclusion": lambda session, i: tree.inclusion_proof(session, i, size),
        "consistency": lambda session, first: tree.consistency_proof(session, first, size),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + budget
    n = -3
    while n < samples and (n < 10 or time.perf_counter() < deadline):
        for name, call in calls.items():
            argument = rng.randrange(1, size)
            began = time.perf_counter()
            with sessions() as session:
                call(session, argument)
                session.commit()
            if n >= 0:
                times[name].append((time.perf_counter() - began) * 1000)
        n += 1
    return times


def build_and_prove(
    engine: Engine, sessions: SessionFactory, max_size: int, samples: int, budget: float
) -> list[tuple[int, dict[str, list[float]]]]:
    """Grow one log to `max_size` in batches of small entries, timing proofs at 10 k, 100 k, … and the end."""
    marks = sorted({10**k for k in range(4, 19) if 10**k <= max_size} | {max_size})
    rng, results, size, began = random.Random(7), [], 0, time.perf_counter()
    for mark in marks:
        while size < mark:
            batch = [rng.randbytes(32) for _ in range(min(BUILD_BATCH, mark - size))]
            with sessions() as session:
                tree.append_many(session, batch, at=START)
                session.commit()
            size += len(batch)
        with engine.begin() as conn:  # fresh planner statistics, as autovacuum would keep them
            for table in ("audit_entry", "audit_node"):
                conn.exec_driver_sql(f"ANALYZE {table}")
        print(f"log at {size:,} entries after {time.perf_counter() - began:.0f} s", file=sys.stderr)
        results.append((mark, proof_times(sessions, mark, samples, budget, rng)))
    return results


# Report


def report(dialect: str, entry: int, appended: dict[str, tuple[float, float]], verify: dict[str, float],
           proofs: list[tuple[int, dict[str, list[float]]]]) -> list[Row]:  # fmt: skip
    """Print the three tables, each figure against its same-run baseline; return the summary rows."""
    summary = [Row(f"audit appends of {entry}-byte entries, {shape}, vs plain inserts", log, plain,
                   "entries/s") for shape, (log, plain) in appended.items()]  # fmt: skip
    verifiers = (("streaming", "StreamingTree"), ("verify", "verify_log over tiles (its own time)"))
    summary += [Row(f"consentry-audit verify: {figure} vs raw SHA-256", verify[name], verify["raw"],
                    "entries/s", f">= {GOAL_VERIFY:,}/s", verify[name] >= GOAL_VERIFY)
                for name, figure in verifiers]  # fmt: skip
    print(f"appends of {entry}-byte entries on {dialect}: {'append/s':>11} {'plain insert/s':>15} ratio")
    for shape, (log, rows) in appended.items():
        print(f"  {shape:<46} {log:>10,.0f} {rows:>15,.0f} {log / rows:.2f}x")
    print(f"\nverification in pages of {PAGE:,}: {'entries/s':>24} {'raw sha256/s':>13} {'ratio':>6}  goal")
    for name, figure in (("streaming", "StreamingTree"), ("verify", "verify_log over tiles, its own time"),
                         ("verify+server", "verify_log over tiles, with the API's time"),
                         ("json", "verify_log over JSON pages, its own time")):  # fmt: skip
        rate, raw = verify[name], verify["raw"]
        goal = f">= {GOAL_VERIFY:,}/s {_met(rate >= GOAL_VERIFY)}" if name in ("streaming", "verify") else ""
        print(f"  {figure:<46} {rate:>10,.0f} {raw:>13,.0f} {rate / raw:>5.2f}x  {goal or '(reported)'}")
    print("\nproofs, one transaction per call (ms): pk-get p50; inclusion, consistency p50 / p95 (x pk-get)")
    for size, times in proofs:
        pk = _ms(times["pk-get"])[0]
        (i50, i95), (c50, c95) = _ms(times["inclusion"]), _ms(times["consistency"])
        print(f"  {size:>10,} entries, {len(times['pk-get']):>3} calls: {pk:6.2f}   {i50:7.2f} / {i95:7.2f} "
              f"({i50 / pk:5.1f}x)   {c50:7.2f} / {c95:7.2f} ({c50 / pk:5.1f}x)")  # fmt: skip
    size, times = proofs[-1]
    pk = _ms(times["pk-get"])[0]
    summary += [Row(f"{kind} proof p50 at {size:,} entries vs a primary-key get", _ms(times[kind])[0], pk,
                    "ms") for kind in ("inclusion", "consistency")]  # fmt: skip
    if len(proofs) < 2:
        return summary
    # The growth per 10x over the last step up to 10 M, and the p50 there (measured if reached).
    last = max([1] + [i for i, (size, _) in enumerate(proofs) if size <= GOAL_SIZE])
    (small, before), (large, after) = proofs[last - 1], proofs[last]
    how = "measured" if large == GOAL_SIZE else "extrapolated"
    print(f"  p50 growth per 10x from {small:,} to {large:,} entries; p50 at {GOAL_SIZE:,} ({how}):")
    for kind in ("inclusion", "consistency"):
        p50 = _ms(after[kind])[0]
        growth = (p50 / _ms(before[kind])[0]) ** (1 / math.log10(large / small))
        at_goal = p50 * growth ** math.log10(GOAL_SIZE / large)
        print(f"    {kind:<12} {growth:5.2f}x per 10x -> {at_goal:8.2f} ms   "
              f"goal < {GOAL_PROOF_MS:g} ms {_met(at_goal < GOAL_PROOF_MS)}")  # fmt: skip
        figure = f"{kind} proof p50 at {GOAL_SIZE:,} entries ({how} from {large:,})"
        summary.append(Row(figure, at_goal, pk, "ms", f"< {GOAL_PROOF_MS:g} ms", at_goal < GOAL_PROOF_MS))
    return summary


def _met(ok: bool) -> str:
    return "goal met" if ok else "goal NOT met"


def main() -> int:
    """Measure the three parts and print them; exit 1 when a goal is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--max-size", type=int, default=1_000_000, help="the size the proofs' log grows to")
    add("--verify-entries", type=int, default=1_000_000)
    add("--single", type=int, default=1_000, help="entries per round, one per transaction")
    add("--batched", type=int, default=20_000, help="entries per round, 1,000 per transaction")
    add("--rounds", type=int, default=3)
    add("--samples", type=int, default=200, help="calls of each kind per log size, at most")
    add("--budget", type=float, default=10.0, help="seconds of proof calls per log size, at most")
    add("--database-url", default=None, help="a throwaway database; default: SQLite in a temp dir")
    quick = {"max_size": 20_000, "verify_entries": 20_000, "single": 50, "batched": 2_000, "rounds": 1,
             "samples": 20, "budget": 1.0}  # fmt: skip
    args = parse(parser, quick=quick)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/audit.db"
        migrate(url)
        engine = create_db_engine(url)
        sessions = session_factory(engine)
        with sessions() as session:
            if tree.size(session):
                print("this database already holds an audit log: give a throwaway one", file=sys.stderr)
                return 2
        began, plain, indices = time.perf_counter(), plain_table(engine), itertools.count()
        entries = realistic_entries(max(args.single, args.batched))
        appended = {
            f"{per_tx:,} {'entry' if per_tx == 1 else 'entries'} per transaction": appends(
                sessions, plain, indices, entries[:count], per_tx, args.rounds
            )
            for count, per_tx in ((args.single, 1), (args.batched, 1_000))
        }
        plain.drop(engine)
        empty_log(engine)
        print(f"appends measured after {time.perf_counter() - began:.0f} s", file=sys.stderr)
        verify = verification(args.verify_entries, args.rounds)
        print(f"verification measured after {time.perf_counter() - began:.0f} s", file=sys.stderr)
        proofs = build_and_prove(engine, sessions, args.max_size, args.samples, args.budget)
        engine.dispose()
    print()
    return finish(report(engine.dialect.name, len(entries[0]), appended, verify, proofs), args)


if __name__ == "__main__":
    sys.exit(main())
