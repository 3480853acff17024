"""Upgrading to webhooks (migration 0010) gives brands registered before it the webhook scopes, and
downgrading takes them away again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import sqlalchemy as sa
from alembic import command
from support.core import new_database_url

from broker.db import alembic_config, create_db_engine

OLD_SCOPES = ["offers:read", "offers:write", "grants:read", "grants:write"]


def test_existing_brands_get_the_webhook_scopes_and_lose_them_on_downgrade(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "0008")
    engine = create_db_engine(url)
    brands = sa.table(
        "brand", sa.column("id", sa.Uuid()), *(sa.column(n) for n in ("client_id", "name", "public")),
        sa.column("redirect_uris", sa.JSON()), sa.column("scopes", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    try:
        with engine.begin() as connection:
            connection.execute(
                brands.insert().values(
                    id=uuid4(),
                    client_id="brd_old",
                    name="Old",
                    public=False,
                    redirect_uris=[],
                    scopes=OLD_SCOPES,
                    created_at=datetime(2026, 11, 1, tzinfo=UTC),
                )
            )
        command.upgrade(config, "0010")

        def scopes() -> list[str]:
            with engine.connect() as connection:
                return list(connection.execute(sa.select(brands.c.scopes)).scalar_one())

        assert scopes() == [*OLD_SCOPES, "webhooks:read", "webhooks:write"]
        command.downgrade(config, "0008")
        assert scopes() == OLD_SCOPES
    finally:
        engine.dispose()
