"""Database engine, session factory and schema checks for SQLite (WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from broker.errors import DatabaseNotMigrated
from vault.private_files import private_file, tighten

SessionFactory = Callable[[], Session]
READ_ONLY = "consentry_read_only"  # execution option: this connection never writes


def create_db_engine(url: str, *, pool_size: int = 10, timeout: float = 30) -> Engine:
    """Build an engine with the settings each backend needs to be safe under concurrency.

    `timeout` bounds how long a request waits for the database before it fails (and is answered
    503): SQLite's busy timeout on its lock; PostgreSQL's connect timeout and the wait for a pooled
    connection. Pooled PostgreSQL connections are pinged on checkout, so after the server restarts
    or terminates them the next request gets a fresh one instead of an error.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, timeout)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeout,
        connect_args={"connect_timeout": max(2, math.ceil(timeout))},  # libpq's minimum is 2 s
    )


def _sqlite_engine(url: str, timeout: float) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        # Owner-only: SQLite gives the WAL and SHM the database file's mode, so 0600 covers all three.
        private_file(Path(path))
        for companion in ("-wal", "-shm", "-journal"):
            tighten(Path(path + companion))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin: SAVEPOINTs then work
        # (tests roll each one back) and our BEGIN is the one that runs.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # IMMEDIATE: take the write lock up front. A deferred transaction that reads and then writes
        # fails at once with SQLITE_BUSY when another writer committed in between (its snapshot is
        # stale, so SQLite cannot wait); an immediate one waits its turn on the busy timeout.
        # Connections that only read (schema checks) say so and take no write lock.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> SessionFactory:
    """A factory of ORM sessions that do not expire objects on commit (responses read them after)."""
    return sessionmaker(bind=engine, class_=Session, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the packaged migrations, for the given database."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> str:
    """Upgrade the database to the newest schema and return the revision it is at."""
    from alembic import command

    config = alembic_config(url)
    command.upgrade(config, "head")
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def ensure_migrated(engine: Engine) -> None:
    """Refuse to run on a database whose schema is not the newest, saying what to run."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(
            conn.execution_options(**{READ_ONLY: True})
        ).get_current_revision()
    if current != head:
        raise DatabaseNotMigrated(
            f"the database {engine.url.render_as_string(hide_password=True)} is at schema revision "
            f"{current or 'none (empty)'} but this version needs {head}: run `consentry migrate`"
        )
