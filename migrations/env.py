"""Alembic environment: runs migrations online against the configured URL."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from broker.db import create_db_engine, import_models

import_models()
target_metadata = SQLModel.metadata


def run() -> None:
    """Run the migrations in one transaction per migration (PostgreSQL DDL is transactional)."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_db_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run()
