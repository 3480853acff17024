"""The database unavailable for a moment: every request fails fast with 503 problem+json (never 500,
never a hang), a read refused for it leaves no audit entry, and the broker recovers on its own.

On SQLite "unavailable" is another process holding the database's lock (a backup, a migration, a
`sqlite3` shell): the broker waits `CONSENTRY_DATABASE_TIMEOUT_SECONDS` for it, then answers 503. On
PostgreSQL the database stops accepting connections and every connection the broker holds is
terminated (what a failover or a restart does to it); a pooled connection the server closed is
discarded at checkout (`tests/broker/test_pooled_connections.py`), so the first request after the
database is back gets a fresh one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support.core import PG_URL, STRONG_PASSWORD, bearer, running_server
from support.resilience import BROKEN, Outcomes, consent_to, set_up_brand, sign_up_customer, stored_log

from broker.app import create_app
from broker.runtime import build_runtime
from broker.settings import Settings

UNAVAILABLE = "https://consentry.dev/problems/unavailable"
READ_NOT_RECORDED = "https://consentry.dev/problems/read-not-recorded"
TIMEOUT_SECONDS = 1  # the server's CONSENTRY_DATABASE_TIMEOUT_SECONDS in this test


@contextlib.contextmanager
def database_unavailable(database_url: str) -> Iterator[None]:
    """Make the database unavailable to the broker until the block ends."""
    if PG_URL is None:
        holder = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # every writing transaction (and /healthz) needs this lock
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    name = make_url(database_url).database
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )
        yield
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    finally:
        admin.dispose()


def assert_unavailable(response: httpx.Response) -> None:
    """503 problem+json of the stable `unavailable` type, saying to retry."""
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == UNAVAILABLE
    assert response.headers["retry-after"] == "1"


@pytest.mark.slow  # ~10 s idle, 20-30 s on a loaded 2-core machine: a server start, ~6 s of outage
def test_database_outage_answers_503_and_recovers_without_restart(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir, url = tmp_path / "var", fresh_database_url
    env = {"CONSENTRY_DATABASE_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    with running_server(data_dir, url, tmp_path / "server.log", env=env) as server:
        http = httpx.Client(base_url=server.url, timeout=TIMEOUT_SECONDS + 10)
        brand = set_up_brand(url, http)
        customer = sign_up_customer(http, data_dir, "ada@example.org")
        access = consent_to(server.url, server.url, brand, "ada@example.org")
        outcomes, stop = Outcomes(), threading.Event()

        def read_until_stopped() -> None:
            with httpx.Client(base_url=server.url, timeout=TIMEOUT_SECONDS + 10) as reader:
                while not stop.is_set():
                    outcomes.read(reader, access)

        reader = threading.Thread(target=read_until_stopped)
        reader.start()
        try:
            with database_unavailable(url):
                assert_unavailable(http.get("/healthz"))
                assert_unavailable(http.get("/v1/profile", headers=bearer(access)))
                assert_unavailable(http.get("/v1/me/profile", headers=bearer(customer)))
                assert_unavailable(
                    http.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
                )
                assert_unavailable(  # a token request that writes (it spends a refresh token)
                    http.post(
                        "/oauth/token",
                        data={"grant_type": "refresh_token", "refresh_token": "rt-unknown"},
                        auth=brand.credentials.auth(),
                    )
                )
                credentials = http.post(
                    "/oauth/token",
                    data={"grant_type": "client_credentials", "scope": "offers:read"},
                    auth=brand.credentials.auth(),
                )
                if PG_URL is None:  # they store nothing: a held write lock does not stop them
                    assert credentials.status_code == 200, credentials.text
                else:
                    assert_unavailable(credentials)
                deadline = time.monotonic() + 10  # and the reader meets the outage too
                while not outcomes.with_status(503) and time.monotonic() < deadline:
                    time.sleep(0.05)
            # Back at once, without a restart: the very next request of each kind succeeds.
            assert http.get("/healthz").status_code == 200
            assert http.get("/v1/profile", headers=bearer(access)).status_code == 200
            assert http.get("/v1/me/profile", headers=bearer(customer)).status_code == 200
        finally:
            stop.set()
            reader.join(timeout=TIMEOUT_SECONDS + 15)
            http.close()

    refused = outcomes.with_status(503)
    assert refused, "the background reader never met the outage"
    assert set(outcomes.statuses) == outcomes.with_status(200) | refused, outcomes.problems
    # A read refused before its batch began is `unavailable`; one whose batch was cut off mid-commit
    # (PostgreSQL terminating the connection under it) is `read-not-recorded`: both 503, both "retry".
    assert {p["type"] for p in outcomes.problems.values()} <= {UNAVAILABLE, READ_NOT_RECORDED}
    assert BROKEN not in outcomes.statuses.values()
    recorded = set(stored_log(url).read_request_ids)
    assert outcomes.with_status(200) <= recorded, "a read was answered without its audit entry"
    assert recorded.isdisjoint(refused), "a read refused with 503 left an audit entry"


def test_no_free_database_connection_is_503_not_500(settings: Settings) -> None:
    # One pooled connection, held by someone else: the request waits `pool_timeout`, then gets 503.
    engine = create_engine(settings.resolved_database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    runtime = build_runtime(settings, engine=engine)
    try:
        with TestClient(create_app(runtime=runtime)) as http:
            with engine.connect():
                assert_unavailable(http.get("/healthz"))
            assert http.get("/healthz").status_code == 200
    finally:
        engine.dispose()
