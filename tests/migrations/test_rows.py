"""Migrations keep the rows they do not mean to touch.

On SQLite, Alembic's batch mode changes a table by copying it and dropping the original; with foreign
keys enforced, that DROP deletes the original's rows first and cascades into every table that
references it (a grant's token families, an obligation's deliveries …). Downgrading past the newest
migrations and upgrading again must leave every table as it was.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy import table as sa_table
from support.core import bearer, make_settings, sign_up
from support.oauth import REDIRECT, BrandCredentials, authorized, brand_token, portal_login, publish_offer

from broker.app import create_app
from broker.db import alembic_config, create_db_engine
from broker.oauth.clients import register_brand
from broker.runtime import build_runtime

BEFORE_ACCOUNTS_WORK = "0011"  # the schema before migrations 0012 and later rebuilt their tables


def _row_counts(engine: Engine) -> dict[str, int]:
    tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
    with engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(sa_table(name))).scalar_one()
            for name in tables
        }


def _a_brand_reading_a_grant(tmp_path: Path, url: str, *, then_delete: bool = False) -> None:
    """A customer, a brand, an offer with value, a consent (grant, token family, obligation, receipt)
    and a read (audit entries), all committed; then, if asked, the customer deletes the account."""
    runtime = build_runtime(make_settings(tmp_path / "var", url))
    with runtime.sessions() as session:
        registered = register_brand(
            session, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
        )
        session.commit()
    brand = BrandCredentials(registered.brand.client_id, registered.client_secret)
    with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as client:
        offer = publish_offer(client, brand_token(client, brand))
        customer = sign_up(client, "ada@example.org")
        portal_login(client, "ada@example.org")
        tokens = authorized(client, brand, offer)
        assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
        if then_delete:
            assert client.delete("/v1/me", headers=bearer(customer)).status_code == 200
    runtime.dispose()


def test_downgrading_and_upgrading_again_keeps_every_row(tmp_path: Path, fresh_database_url: str) -> None:
    _a_brand_reading_a_grant(tmp_path, fresh_database_url)
    engine = create_db_engine(fresh_database_url)
    try:
        before = _row_counts(engine)
        assert before["token_family"] and before["value_obligation"] and before["consent_receipt"]
        config = alembic_config(fresh_database_url)
        command.downgrade(config, BEFORE_ACCOUNTS_WORK)
        older_tables = set(inspect(engine).get_table_names())  # tables the later migrations made go
        command.upgrade(config, "head")
        after = _row_counts(engine)
    finally:
        engine.dispose()
    kept = {name: count for name, count in before.items() if name in older_tables}
    assert {name: after[name] for name in kept} == kept


def test_downgrading_past_0012_drops_a_deleted_accounts_grant_and_what_hangs_from_it(
    tmp_path: Path, fresh_database_url: str
) -> None:
    # Before 0012 a grant could not outlive its customer: going back, the deleted account's grant goes,
    # and with it its token families, codes, obligation and receipts, as the cascade took them then.
    _a_brand_reading_a_grant(tmp_path, fresh_database_url, then_delete=True)
    command.downgrade(alembic_config(fresh_database_url), BEFORE_ACCOUNTS_WORK)
    engine = create_db_engine(fresh_database_url)
    try:
        counts = _row_counts(engine)
    finally:
        engine.dispose()
    gone = ("consent_grant", "token_family", "refresh_token", "authorization_code", "value_obligation")
    assert {name: counts[name] for name in (*gone, "consent_receipt")} == dict.fromkeys(
        (*gone, "consent_receipt"), 0
    )
