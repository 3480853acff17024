"""Pooled PostgreSQL connections that the server closed are discarded at checkout, without a round
trip for the ones that are fine (`broker.db._has_news`): after a restart, a failover or
`pg_terminate_backend`, the next request gets a fresh connection instead of a 503."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from support.core import PG_URL

from broker.db import create_db_engine

pytestmark = pytest.mark.skipif(PG_URL is None, reason="PostgreSQL's pool: SQLite has no server to close it")


@pytest.fixture
def engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(fresh_database_url, pool_size=1)
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_the_server_terminated_is_replaced_before_it_is_used(engine: Engine) -> None:
    pid = backend_pid(engine)  # the pool's one connection, back in the pool
    assert PG_URL is not None
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            # The server has closed it once the backend is gone from the activity view.
            for _ in range(100):
                gone = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                if gone.scalar_one() == 0:
                    break
    finally:
        admin.dispose()
    assert backend_pid(engine) != pid  # a fresh connection, and no error


def test_a_live_pooled_connection_is_reused_without_a_ping(engine: Engine, tmp_path: Path) -> None:
    pid = backend_pid(engine)
    trace = tmp_path / "libpq.trace"
    with trace.open("w") as out:
        with engine.connect() as conn:
            pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
        pgconn.trace(out.fileno())  # what libpq sends from now on, the pool's checkout included
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == pid  # the same one
        finally:
            pgconn.untrace()
    sent = [line.split("\t") for line in trace.read_text().splitlines() if "\tF\t" in line]
    queries = [fields[-1].strip() for fields in sent if "Query" in fields or "Parse" in fields]
    # The checkout sent nothing (SQLAlchemy's pool_pre_ping sent ";" each time): the transaction only.
    assert queries == ['"BEGIN"', '"SELECT pg_backend_pid()"', '"ROLLBACK"']


def test_a_connection_that_only_heard_something_harmless_is_kept(engine: Engine) -> None:
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        conn.execute(text("LISTEN consentry_test"))
        conn.commit()
    assert PG_URL is not None
    admin = create_engine(
        PG_URL.rsplit("/", 1)[0] + "/" + str(engine.url.database), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as other:
            other.execute(text("NOTIFY consentry_test"))  # the pooled connection's socket turns readable
    finally:
        admin.dispose()
    time.sleep(0.2)
    assert backend_pid(engine) == pid  # pinged, not discarded
