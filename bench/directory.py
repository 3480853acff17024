"""Directory benchmark: the offer directory's pages with 10,000 listed offers, against a bare FastAPI
endpoint.

Loads N listed offers (default 10,000) of 200 brands straight into a fresh database (their offers,
directory listings, fields and purposes, as `Offers` writes them), with a history for the track
record (ended grants and obligations of some brands), then starts `consentry serve --workers 1` and
the bare FastAPI baseline (uvicorn, uvloop + httptools, one worker). A customer signs up over HTTP
and logs in to the portal. In alternating rounds (median of the rounds), requests/s of:
- the bare endpoint (the baseline),
- GET /portal/directory: the first page (20 offers, newest first), with the customer's values, each
  brand's track record and value per field per month, as HTML (goal: the portal goal of the speed
  issue, >= 0.2x),
- the same page filtered and sorted (shared with nobody else, kept up to 30 days, most value first),
- the same page 20 pages deep (a cursor),
- GET /v1/directory/offers, the first page as JSON (reported).

Usage: python bench/directory.py [--offers N] [--seconds S] [--rounds N] [--concurrency C]
                                 [--database-url URL] [--json PATH] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import random
import statistics
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import insert

from broker.accounts.models import Brand
from broker.consent.directory import value_order
from broker.consent.models import (
    DirectoryField,
    DirectoryListing,
    DirectoryPurpose,
    Grant,
    GrantStatus,
    Offer,
)
from broker.db import create_db_engine, migrate

sys.path.append(str(Path(__file__).parent))  # now, for `common` alone: what it would shadow is imported
from common import HttpRequest, Row, finish, http_rate, parse
from read import PASSWORD, inputs, mailed_code
from servers import bare_baseline, consentry_process

GOAL = 0.2  # the portal goal of the speed issue (issue 17)
BRANDS = 200
START = datetime(2026, 1, 1, tzinfo=UTC)
FIELDS = ["email", "given_name", "postcode", "city", "household_size", "dietary", "interests", "age_band"]
PURPOSES = ["personalised_offers", "marketing", "research", "improve_service"]


def _value(rng: random.Random) -> dict[str, object]:
    due = rng.choice([{"when": "within_days", "days": 7}, {"when": "monthly"}])
    kind = rng.choice(["voucher", "cash", "points", "service", "discount"])
    if kind == "points":
        return {"kind": kind, "amount": str(rng.randrange(50, 1000)), "description": "points", "due": due}
    if kind == "service":
        return {"kind": kind, "description": "a service", "due": due}
    amount = f"{Decimal(rng.randrange(100, 5000)) / 100:.2f}"
    value = {
        "kind": kind,
        "amount": amount,
        "currency": rng.choice(["EUR", "GBP"]),
        "description": "v",
        "due": due,
    }
    if kind == "discount":
        value["unit"] = "money"
    return value


def load(url: str, offers: int) -> None:
    """`offers` listed offers of BRANDS brands, their directory rows, and some brands' history."""
    rng = random.Random(20)
    engine = create_db_engine(url)
    brands = [uuid.uuid4() for _ in range(BRANDS)]
    brand_rows = [{"id": b, "client_id": f"brd_{i}", "name": f"Brand {i}", "public": False,
                   "secret_hash": None, "redirect_uris": ["https://b.example/cb"], "scopes": [],
                   "created_at": START} for i, b in enumerate(brands)]  # fmt: skip
    offer_rows, listings, fields, purposes = [], [], [], []
    for n in range(offers):
        offer_id, brand_id = uuid.uuid4(), brands[n % BRANDS]
        asked = rng.sample(FIELDS, rng.randrange(1, 6))
        required, optional = asked[: max(1, len(asked) // 2)], asked[max(1, len(asked) // 2) :]
        value, days = _value(rng), rng.choice([30, 90, 180, 365])
        created = START + timedelta(seconds=n * 60)
        purpose = rng.choice(PURPOSES)
        offer_rows.append({
            "id": offer_id, "brand_id": brand_id, "lineage_id": offer_id, "version": 1, "status": "active",
            "title": f"Offer {n}", "description": "An offer of the benchmark.", "required_fields": required,
            "optional_fields": optional, "purpose": purpose, "purpose_explanation": "Benchmark.",
            "grant_duration_days": days, "retention_days": rng.choice([0, 30, 90, 365]),
            "recipients": rng.choice([[], [], ["Partner Ltd"]]), "value": value, "created_at": created,
            "listed": True,
        })  # fmt: skip
        listings.append({
            "offer_id": offer_id, "brand_id": brand_id, "listed_at": created, "value_kind": value["kind"],
            **value_order(value, len(asked), days), "field_count": len(asked),
            "duration_days": days, "retention_days": offer_rows[-1]["retention_days"],
            "recipient_count": len(offer_rows[-1]["recipients"]),  # type: ignore[arg-type]
        })  # fmt: skip
        fields += [{"offer_id": offer_id, "field": f, "required": f in required} for f in asked]
        purposes.append({"offer_id": offer_id, "purpose": purpose})
    # A history for some brands: ended grants (deletion and acknowledgement due), so records are not empty.
    grants = []
    for i in range(0, BRANDS, 4):
        for k in range(5):
            ended = START + timedelta(days=30 + k)
            grants.append({
                "id": uuid.uuid4(), "customer_id": uuid.uuid4(), "brand_id": brands[i],
                "offer_id": offer_rows[i]["id"], "fields": ["email"], "purpose": "marketing",
                "status": GrantStatus.REVOKED.value, "created_at": START,
                "expires_at": START + timedelta(days=365),
                "status_changed_at": ended, "ended_by": "customer", "last_confirmed_at": START,
                "deletion_due_at": ended + timedelta(days=30), "end_ack_due_at": ended + timedelta(days=3),
                "deletion_attested_at": ended + timedelta(days=k * 10) if k % 2 else None,
                "end_acknowledged_at": ended + timedelta(days=k) if k < 3 else None,
            })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(Brand), brand_rows)
        for table, rows in ((Offer, offer_rows), (DirectoryListing, listings), (DirectoryField, fields),
                            (DirectoryPurpose, purposes), (Grant, grants)):  # fmt: skip
            for start in range(0, len(rows), 2000):
                conn.execute(insert(table), rows[start : start + 2000])
    engine.dispose()


def customer(base: str, data_dir: Path) -> tuple[str, dict[str, str]]:
    """A customer with a profile, logged in to the API (its token) and the portal (its cookies)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        http.post("/v1/customers", json={"email": "bench@example.org", "password": PASSWORD})
        http.post("/v1/customers/verify", json={"code": mailed_code(data_dir)})
        token = http.post("/v1/sessions", json={"email": "bench@example.org", "password": PASSWORD}).json()[
            "token"
        ]
        profile = {"email": "bench@example.org", "dietary": ["vegan"], "household_size": 2, "city": "Leeds"}
        http.put("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"})
        http.cookies.clear()
        login = inputs(http.get("/portal/login").text)
        http.post("/portal/login", data={**dict(login), "email": "bench@example.org", "password": PASSWORD})
        page = http.get("/portal/directory")
        assert page.status_code == 200 and page.text.count('class="offer"') == 20, page.status_code
        return token, {cookie.name: cookie.value or "" for cookie in http.cookies.jar}


def deep_cursor(base: str, cookies: dict[str, str], pages: int) -> str:
    """The `after` of the directory's page `pages` + 1, newest first, followed as a browser would."""
    link = "/portal/directory"
    with httpx.Client(base_url=base, timeout=30, cookies=cookies) as http:
        for _ in range(pages):
            text = http.get(link).text
            link = "/portal/directory?" + text.split('href="/portal/directory?')[-1].split('"')[0]
            link = link.replace("&amp;", "&")
    return link


def main() -> int:
    """Load, start the servers, measure in alternating rounds, report the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    args = parse(parser, quick={"offers": 500, "seconds": 0.5, "rounds": 1, "concurrency": 4})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        migrate(url)
        load(url, args.offers)
        with (
            bare_baseline(data_dir / "bare.log") as bare,
            consentry_process(data_dir, url, data_dir / "one.log") as (one, _),
        ):
            token, cookies = customer(one, data_dir)
            filtered = "/portal/directory?nobody_else=yes&retention=30&sort=value"
            kinds = {
                "bare": (bare, HttpRequest("GET", "/json")),
                "page": (one, HttpRequest("GET", "/portal/directory", cookies=cookies)),
                "filtered": (one, HttpRequest("GET", filtered, cookies=cookies)),
                "deep": (one, HttpRequest("GET", deep_cursor(one, cookies, 20), cookies=cookies)),
                "api": (one, HttpRequest("GET", "/v1/directory/offers", bearer=token)),
            }
            rates: dict[str, list[float]] = {kind: [] for kind in kinds}
            for base, request in kinds.values():  # warm-up, not counted
                http_rate(base, request, seconds=min(args.seconds, 1.0), concurrency=args.concurrency)
            for _ in range(args.rounds):
                for kind, (base, request) in kinds.items():
                    rates[kind].append(
                        http_rate(base, request, seconds=args.seconds, concurrency=args.concurrency)
                    )
    rate = {kind: statistics.median(values) for kind, values in rates.items()}
    baseline, setup = rate["bare"], f"{args.offers:,} listed offers, 1 worker, {args.concurrency} clients"
    figures = {
        "page": "GET /portal/directory, first page of 20",
        "filtered": "GET /portal/directory, filtered and sorted by value",
        "deep": "GET /portal/directory, 20 pages deep",
    }
    rows = [
        Row(f"{figure} ({setup}) vs bare FastAPI", rate[kind], baseline, "req/s", f">= {GOAL}x",
            rate[kind] / baseline >= GOAL)
        for kind, figure in figures.items()
    ]  # fmt: skip
    rows.append(Row(f"GET /v1/directory/offers, first page of 20 ({setup}) vs bare FastAPI", rate["api"],
                    baseline, "req/s"))  # fmt: skip
    print(f"bare FastAPI baseline (uvicorn, uvloop + httptools, 1 worker): {baseline:,.0f} req/s")
    return finish(rows, args)


if __name__ == "__main__":
    sys.exit(main())
