"""Alembic environment: runs migrations online against the configured URL.

On SQLite, foreign keys are off while migrations run (SQLite's own procedure for changing a table,
https://www.sqlite.org/lang_altertable.html#otheralter): Alembic's batch mode copies a table and drops
the original, and with foreign keys enforced that DROP first deletes every row and cascades into the
tables that reference it. `PRAGMA foreign_key_check` then proves, before the commit, that the
migrations left no dangling reference.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

from broker.db import create_db_engine
from broker.tables import import_models

import_models()
target_metadata = SQLModel.metadata


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    # Outside any transaction (SQLite ignores this PRAGMA inside one): on the driver's connection,
    # which runs in autocommit mode (broker.db lets SQLAlchemy, not pysqlite, begin transactions).
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")  # type: ignore[union-attr]


def _check_foreign_keys(connection: Connection) -> None:
    dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if dangling:
        raise RuntimeError(f"the migrations left rows that reference missing rows: {dangling[:10]}")


def run() -> None:
    """Run the migrations in one transaction (PostgreSQL DDL is transactional; so is SQLite's)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                _sqlite_foreign_keys(connection, on=False)
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _check_foreign_keys(connection)
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)
    finally:
        engine.dispose()


run()
