"""Listing benchmark: keyset pages of grants over a table of 1 M grants.

Loads N grants (default 1,000,000) into a fresh database, spread over 200 brands and 100,000
customers (one brand and one customer are heavy), then times `Grants.listing` pages for one brand
and one customer: first pages, and pages deep in the listing reached through real cursors. Prints
p50/p95 in milliseconds against the goal p95 < 10 ms, and as a ratio against the same-run cost of
fetching one grant by primary key (the floor of any query through the same session).

Usage: python bench/listing.py [--grants N] [--database-url URL] [--samples N] [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from broker.accounts.models import Brand, Customer
from broker.audit.log import AuditLog
from broker.consent.grants import Grants
from broker.consent.models import Grant, GrantStatus, Offer
from broker.consent.notices import Notices
from broker.db import create_db_engine, migrate, session_factory

sys.path.append(str(Path(__file__).parent))  # now, for `common` alone: what it would shadow is imported
from common import Row, finish, parse

GOAL_P95_MS = 10.0
BRANDS, CUSTOMERS = 200, 100_000
START = datetime(2025, 1, 1, tzinfo=UTC)


def _brand(i: int, brand_id: uuid.UUID) -> dict[str, object]:
    return {"id": brand_id, "client_id": f"brd_{i}", "name": f"Brand {i}", "public": False,
            "secret_hash": None, "redirect_uris": ["https://b.example/cb"], "scopes": [],
            "created_at": START}  # fmt: skip


def _offer(offer_id: uuid.UUID, brand_id: uuid.UUID) -> dict[str, object]:
    return {"id": offer_id, "brand_id": brand_id, "lineage_id": offer_id, "version": 1, "status": "active",
            "title": "t", "description": "d", "required_fields": ["email"], "optional_fields": [],
            "purpose": "marketing", "purpose_explanation": "p", "grant_duration_days": 365,
            "retention_days": 30, "recipients": [], "value": {}, "created_at": START}  # fmt: skip


def _grant(n: int, customer_id: uuid.UUID, brand_id: uuid.UUID, offer_id: uuid.UUID) -> dict[str, object]:
    at = START + timedelta(seconds=n * 7)
    return {"id": uuid.uuid4(), "customer_id": customer_id, "brand_id": brand_id, "offer_id": offer_id,
            "fields": ["email"], "purpose": "marketing", "status": GrantStatus.ACTIVE.value, "created_at": at,
            "expires_at": at + timedelta(days=365), "status_changed_at": at, "ended_by": None,
            "last_confirmed_at": at}  # fmt: skip


def _load(url: str, grants: int) -> tuple[uuid.UUID, uuid.UUID]:
    engine = create_db_engine(url)
    brands = [uuid.uuid4() for _ in range(BRANDS)]
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    offers = [uuid.uuid4() for _ in range(BRANDS)]
    with engine.begin() as conn:
        conn.execute(insert(Brand), [_brand(i, b) for i, b in enumerate(brands)])
        rows = [
            {"id": c, "email_index": os.urandom(32), "password_hash": "x", "created_at": START}
            for c in customers
        ]
        conn.execute(insert(Customer), rows)
        conn.execute(insert(Offer), [_offer(o, b) for o, b in zip(offers, brands, strict=True)])
    rng = random.Random(7)
    batch: list[dict[str, object]] = []
    started = time.perf_counter()
    for n in range(grants):
        # A tenth of all grants go to brand 0; customer 0 has one grant in a thousand.
        b = 0 if n % 10 == 0 else rng.randrange(BRANDS)
        c = 0 if n % 1000 == 0 else rng.randrange(CUSTOMERS)
        batch.append(_grant(n, customers[c], brands[b], offers[b]))
        if len(batch) == 20_000 or n == grants - 1:
            with engine.begin() as conn:
                conn.execute(insert(Grant), batch)
            batch.clear()
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"loaded {grants:,} grants in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    engine.dispose()
    return brands[0], customers[0]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def measure(url: str, brand_id: uuid.UUID, customer_id: uuid.UUID, samples: int) -> list[Row]:
    """p95 (ms) of first and deep pages per owner against that of a primary-key get."""
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    now = START + timedelta(days=30)
    audit = AuditLog(clock=lambda: now, subject=lambda *_: "unused")
    grants = Grants(clock=lambda: now, audit=audit, notices=Notices())
    rows = []
    with sessions() as session:
        some_id = session.exec(Grant.__table__.select().limit(1)).first()[0]  # type: ignore[attr-defined]
        baseline = []
        for _ in range(samples):
            t = time.perf_counter()
            session.get(Grant, some_id, populate_existing=True)
            baseline.append((time.perf_counter() - t) * 1000)
        base_p95 = _percentiles(baseline)[1]
        for label, owner in (("brand", ("brand_id", brand_id)), ("customer", ("customer_id", customer_id))):
            cursors: list[str | None] = [None]
            page = grants.listing(session, owner=owner, limit=50)
            while page.next_cursor and len(cursors) < 200:
                cursors.append(page.next_cursor)
                page = grants.listing(session, owner=owner, limit=50, cursor=page.next_cursor)
            timings = []
            for i in range(samples):
                cursor = cursors[i % len(cursors)]
                t = time.perf_counter()
                grants.listing(session, owner=owner, limit=50, cursor=cursor)
                timings.append((time.perf_counter() - t) * 1000)
                session.expunge_all()
            p50, p95 = _percentiles(timings)
            figure = f"keyset page of 50, one {label}, {len(cursors)} pages deep (p50 {p50:.2f} ms), p95"
            rows.append(Row(figure, p95, base_p95, "ms", f"p95 < {GOAL_P95_MS:g} ms", p95 < GOAL_P95_MS))
    engine.dispose()
    return rows


def main() -> int:
    """Load, measure, report; exit 1 when a p95 misses the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parse(parser, quick={"grants": 5_000, "samples": 40})
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/listing.db"
        migrate(url)
        brand_id, customer_id = _load(url, args.grants)
        rows = measure(url, brand_id, customer_id, args.samples)
    print(f"{args.grants:,} grants; baseline: p95 of a primary-key get of one grant")
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
