"""Requests that only read take no lock a writer needs, and cannot write.

A route declares it only reads with `ReadSession`: on SQLite its transaction is deferred (WAL lets it
read beside a writer), on PostgreSQL it is READ ONLY (no row locks). A write through such a session
fails at once, in the ORM and in the database, so a route that was wrong to declare it is caught. A
request whose one statement reads (a client-credentials token's brand) runs it on a read connection,
with no transaction at all, and cannot write either."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import QueuePool
from support.core import PG_URL, FakeClock, bearer, make_settings
from support.oauth import OFFER, REDIRECT, BrandCredentials, authorized, brand_token

from broker.accounts.models import Brand
from broker.app import create_app
from broker.db import (
    WriteInReadOnlySession,
    create_db_engine,
    read_connection_factory,
    read_session_factory,
    reading_engine,
    session_factory,
)
from broker.oauth.clients import find_client, register_brand
from broker.runtime import build_runtime

TIMEOUT_SECONDS = 1.0


@pytest.fixture
def real_engine(fresh_database_url: str) -> Iterator[Engine]:
    """An engine on a database the test commits to (no outer transaction holding its lock)."""
    engine = create_db_engine(fresh_database_url, timeout=TIMEOUT_SECONDS)
    yield engine
    engine.dispose()


@pytest.fixture(params=["writers' engine", "reading engine"])
def reader(request: pytest.FixtureRequest, real_engine: Engine) -> Iterator[Engine]:
    """Where read sessions and read connections come from: the writers' engine itself (the factories
    mark its connections read-only), or the `reading_engine` the broker uses (on PostgreSQL a pool of
    its own, in autocommit)."""
    if request.param == "writers' engine":
        yield real_engine
        return
    engine = reading_engine(real_engine, timeout=TIMEOUT_SECONDS)
    yield engine
    if engine is not real_engine:
        engine.dispose()


def test_the_reading_engine_is_a_pool_of_autocommit_connections_on_postgresql(real_engine: Engine) -> None:
    engine = reading_engine(real_engine, pool_size=3, timeout=TIMEOUT_SECONDS)
    if real_engine.dialect.name == "sqlite":
        assert engine is real_engine  # deferred, query_only transactions on the one pool
        return
    try:
        assert engine.pool is not real_engine.pool and engine.pool.size() == 3  # type: ignore[attr-defined]
        for _ in range(2):  # born in autocommit, and still so when it comes back: never switched
            with engine.connect() as connection:
                driver: Any = connection.connection.dbapi_connection
                assert driver.autocommit and driver.read_only
                with pytest.raises(DBAPIError, match="read-only transaction"):
                    connection.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('x')")
            assert driver.autocommit
        with real_engine.connect() as connection:  # the writers' pool is left as it was
            assert not connection.connection.dbapi_connection.autocommit  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_a_write_through_a_read_session_is_refused_by_the_orm(reader: Engine) -> None:
    with read_session_factory(reader)() as db:
        db.add(Brand(client_id="c", name="Sneaky", redirect_uris=[], scopes=[], created_at=datetime.now(UTC)))
        with pytest.raises(WriteInReadOnlySession):
            db.flush()
    with read_session_factory(reader)() as db, pytest.raises(WriteInReadOnlySession):
        db.exec(delete(Brand))


def test_a_write_through_a_read_session_is_refused_by_the_database(reader: Engine) -> None:
    with read_session_factory(reader)() as db, pytest.raises(DBAPIError):  # below the ORM's guard
        db.exec(text("INSERT INTO alembic_version (version_num) VALUES ('sneaky')"))  # type: ignore[call-overload]


def test_a_write_through_a_read_connection_is_refused_by_the_database(reader: Engine) -> None:
    with read_connection_factory(reader)() as connection, pytest.raises(DBAPIError):
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('sneaky')"))


def test_a_read_connections_lookup_leaves_no_transaction_open(real_engine: Engine, reader: Engine) -> None:
    with session_factory(real_engine)() as db:
        registered = register_brand(
            db, name="Brand", redirect_uris=[REDIRECT], public=False, clock=FakeClock()
        )
        db.commit()
    client_id = registered.brand.client_id
    with read_connection_factory(reader)() as connection:
        assert find_client(connection, client_id) is not None
        assert not connection.in_transaction()  # SQLAlchemy began nothing
        driver: Any = connection.connection.dbapi_connection
        if real_engine.dialect.name == "sqlite":
            assert not driver.in_transaction  # nor did the driver: no snapshot, no lock held
        else:
            assert driver.info.transaction_status == 0  # psycopg's IDLE: autocommit, nothing open
        with session_factory(real_engine)() as db:  # a writer commits meanwhile, and is seen next time
            db.exec(delete(Brand))
            db.commit()
        assert find_client(connection, client_id) is None


def test_a_pooled_connection_writes_again_after_serving_reads(real_engine: Engine, reader: Engine) -> None:
    for _ in range(3):
        with read_session_factory(reader)() as db:
            db.exec(text("SELECT count(*) FROM alembic_version"))  # type: ignore[call-overload]
        with read_connection_factory(reader)() as connection:
            connection.execute(text("SELECT count(*) FROM alembic_version"))
        with session_factory(real_engine)() as db:
            db.exec(text("INSERT INTO alembic_version (version_num) VALUES ('w')"))  # type: ignore[call-overload]
            db.rollback()


@pytest.fixture
def served(
    tmp_path: Path, fresh_database_url: str, real_engine: Engine
) -> Iterator[tuple[TestClient, str, BrandCredentials]]:
    """The app on `real_engine`, a brand token for it and the brand's credentials."""
    settings = make_settings(tmp_path / "var", fresh_database_url, database_timeout_seconds=TIMEOUT_SECONDS)
    runtime = build_runtime(settings, engine=real_engine)
    with runtime.sessions() as db:
        registered = register_brand(
            db, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
        )
        db.commit()
    brand = BrandCredentials(registered.brand.client_id, registered.client_secret)
    with TestClient(create_app(runtime=runtime)) as http:
        yield http, brand_token(http, brand), brand


def test_read_only_routes_answer_and_writers_write_on_the_same_pool(
    served: tuple[TestClient, str, BrandCredentials],
) -> None:
    http, token, _ = served
    for _ in range(3):  # pooled connections go from reading to writing and back
        created = http.post("/v1/offers", json=OFFER, headers=bearer(token))
        assert created.status_code == 201, created.text
        read = http.get(f"/v1/offers/{created.json()['id']}", headers=bearer(token))
        assert read.status_code == 200 and read.json() == created.json()
    assert len(http.get("/v1/offers", headers=bearer(token)).json()["items"]) == 3


@pytest.mark.skipif(PG_URL is not None, reason="SQLite's database-wide write lock")
def test_a_read_only_request_proceeds_while_another_connection_holds_the_write_lock(
    served: tuple[TestClient, str, BrandCredentials], fresh_database_url: str
) -> None:
    http, token, brand = served
    holder = sqlite3.connect(make_url(fresh_database_url).database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a writer (another process, a backup) holds the lock
        started = time.monotonic()
        read = http.get("/v1/offers", headers=bearer(token))
        assert read.status_code == 200, read.text
        assert time.monotonic() - started < TIMEOUT_SECONDS  # it did not wait for the lock
        started = time.monotonic()
        issued = http.post("/oauth/token", auth=(brand.client_id, brand.client_secret),
                           data={"grant_type": "client_credentials", "scope": "offers:read"})  # fmt: skip
        assert issued.status_code == 200, issued.text  # client credentials store nothing: a read
        assert time.monotonic() - started < TIMEOUT_SECONDS
        with ThreadPoolExecutor(1) as pool:  # a token request that writes waits for the lock meanwhile
            form = {"grant_type": "refresh_token", "refresh_token": "rt_unknown"}
            refresh = pool.submit(
                http.post, "/oauth/token", auth=(brand.client_id, brand.client_secret), data=form
            )
            time.sleep(TIMEOUT_SECONDS / 4)
            started = time.monotonic()
            issued = http.post("/oauth/token", auth=(brand.client_id, brand.client_secret),
                               data={"grant_type": "client_credentials", "scope": "offers:read"})  # fmt: skip
            assert issued.status_code == 200, issued.text
            assert time.monotonic() - started < TIMEOUT_SECONDS / 2, "a read waited behind a waiting write"
            assert refresh.result().status_code == 503  # it waited its turn, up to the timeout
        write = http.post("/v1/offers", json=OFFER, headers=bearer(token))
        assert write.status_code == 503  # a writer still waits its turn, up to the timeout
        assert http.get("/healthz").status_code == 503  # health means "a writer could write"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert http.get("/healthz").status_code == 200


def test_reading_a_grant_that_expired_meanwhile_settles_it_so_those_reads_write(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    # Grant reads are not read-only routes: a lookup persists an expiry the clock already decided.
    authorized(client, brand, offer)
    grant = client.get("/v1/me/grants", headers=bearer(customer)).json()["items"][0]
    expiry = (clock.now + timedelta(seconds=60)).isoformat()
    changed = client.patch(
        f"/v1/me/grants/{grant['id']}", json={"expires_at": expiry}, headers=bearer(customer)
    )
    assert changed.status_code == 200
    clock.advance(seconds=61)
    token = brand_token(client, brand)
    for path in (f"/v1/grants/{grant['id']}", f"/v1/grants/{grant['id']}/value", "/v1/grants"):
        assert client.get(path, headers=bearer(token)).status_code == 200, path
    assert client.get(f"/v1/me/grants/{grant['id']}", headers=bearer(customer)).json()["status"] == "expired"


def test_each_process_keeps_the_pool_the_settings_ask_for(tmp_path: Path, fresh_database_url: str) -> None:
    runtime = build_runtime(make_settings(tmp_path / "var", fresh_database_url, database_pool_size=3))
    try:
        pool = runtime.engine.pool
        assert isinstance(pool, QueuePool) and pool.size() == 3 and pool._max_overflow == 3
    finally:
        runtime.dispose()


@pytest.mark.skipif(PG_URL is not None, reason="SQLite's BEGIN IMMEDIATE")
def test_a_lock_held_past_the_timeout_is_sqlalchemys_operational_error(
    real_engine: Engine, fresh_database_url: str
) -> None:
    # Transactions begin on the driver's connection directly (broker.db); its error must still be
    # SQLAlchemy's, which requests answer 503 `unavailable`, not a bare sqlite3 error (a 500).
    holder = sqlite3.connect(make_url(fresh_database_url).database or "", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with session_factory(real_engine)() as writer, pytest.raises(OperationalError, match="locked"):
            writer.connection()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
