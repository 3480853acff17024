"""Pooled PostgreSQL connections that the server closed are discarded at checkout, without a round
trip for the ones that are fine (`broker.db._has_news`): after a restart, a failover or
`pg_terminate_backend`, the next request gets a fresh connection instead of a 503."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from support.core import PG_URL

import broker.db
from broker.db import create_db_engine, read_session_factory
from broker.errors import DatabaseMisconfigured

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
    assert queries == ['"BEGIN READ WRITE"', '"SELECT pg_backend_pid()"', '"ROLLBACK"']


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


def sent_queries(engine: Engine, trace: Path, run: Callable[[], object]) -> list[str]:
    """What libpq sent on the pool's one connection while `run()` ran, as the queries' texts."""
    with engine.connect() as conn:
        pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        try:
            run()
        finally:
            pgconn.untrace()
    sent = [line.split("\t") for line in trace.read_text().splitlines() if "\tF\t" in line]
    return [fields[-1].strip() for fields in sent if "Query" in fields or "Parse" in fields]


def test_a_read_only_request_sends_its_statements_alone(engine: Engine, tmp_path: Path) -> None:
    # A read-only session runs in autocommit: no BEGIN, no ROLLBACK, one round trip per statement.
    reads = read_session_factory(engine)

    def read() -> None:
        with reads() as session:
            session.execute(text("SELECT 1")).one()
            session.execute(text("SELECT 2")).one()

    assert sent_queries(engine, tmp_path / "read.trace", read) == ['"SELECT 1"', '"SELECT 2"']

    def write() -> None:  # the same connection, back from the read, writes in a transaction again
        with Session(engine) as session:
            session.execute(text("SELECT 3")).one()
            session.commit()

    begin, *rest = sent_queries(engine, tmp_path / "write.trace", write)
    # (SQLAlchemy restored the isolation level it found, so psycopg now names it too)
    assert begin in ('"BEGIN READ WRITE"', '"BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"')
    assert rest == ['"SELECT 3"', '"COMMIT"']


def test_a_write_through_a_read_only_session_fails_in_the_database(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch (n int)"))
    reads = read_session_factory(engine)
    with reads() as session, pytest.raises(DBAPIError, match="read-only transaction"):
        # Past the ORM's own guard (raw SQL on the driver's connection): the database refuses it.
        session.connection().exec_driver_sql("INSERT INTO scratch VALUES (1)")
    with reads() as session, pytest.raises(DBAPIError, match="read-only transaction"):
        session.connection().exec_driver_sql("SELECT n FROM scratch FOR UPDATE")
    with engine.begin() as conn:  # writers still write, on the same pooled connection
        conn.execute(text("INSERT INTO scratch VALUES (2)"))
        assert conn.execute(text("SELECT count(*) FROM scratch")).scalar_one() == 1


def test_the_urls_own_connection_options_are_kept(fresh_database_url: str) -> None:
    url = make_url(fresh_database_url).update_query_dict({"options": "-c application_name=consentry-test"})
    engine = create_db_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW application_name")).scalar_one() == "consentry-test"
            assert conn.execute(text("SHOW default_transaction_read_only")).scalar_one() == "on"
    finally:
        engine.dispose()


def test_a_connection_on_which_transactions_may_write_by_default_is_refused(
    fresh_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As behind a pooler that drops the `options` startup parameter: read-only requests, which run in
    # autocommit, would no longer be refused a write by the database. The server refuses to start.
    monkeypatch.setattr(broker.db, "_READ_ONLY_DEFAULT", "-c default_transaction_read_only=off")
    engine = create_db_engine(fresh_database_url, pool_size=1)
    try:
        with pytest.raises(DatabaseMisconfigured, match="ALTER ROLE"), engine.connect():
            pass
    finally:
        engine.dispose()
