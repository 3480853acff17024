"""Upgrading to the audit log keeps every read recorded before it (migration 0005, whose frozen copy
of the entry format and of the append must give what the live code gives)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from support.core import new_database_url
from support.oauth import OFFER

from broker.accounts.models import Brand, Customer
from broker.audit import tree
from broker.audit.entries import Actor, Event, Kind, decode
from broker.audit.models import AuditEntry
from broker.audit.verify import verify_log
from broker.consent.models import Grant, Offer
from broker.consent.offer_schemas import OfferDraft
from broker.consent.offers import _columns
from broker.db import alembic_config, create_db_engine
from clients.auditor import generate_private_key, parse_private_key
from clients.auditor.tlog import merkle

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def old_log(engine: Engine, entries: list[bytes]) -> None:
    """Entries appended before 0005, as the schema of 0004 stored them: entries, subtrees and head."""
    if not entries:
        return
    tables = {
        name: sa.Table(name, sa.MetaData(), autoload_with=engine)
        for name in ("audit_entry", "audit_node", "audit_head")
    }
    leaves = [merkle.leaf_hash(entry) for entry in entries]
    nodes = []
    for level in range(len(entries).bit_length()):
        width = 1 << level
        for position in range(len(entries) // width):
            digest = merkle.root_hash(leaves[position * width : (position + 1) * width])
            nodes.append({"level": level, "position": position, "hash": digest})
    with engine.begin() as connection:
        connection.execute(
            tables["audit_entry"].insert(),
            [
                {"index": i, "entry": e, "leaf_hash": leaves[i], "created_at": T0.replace(tzinfo=None)}
                for i, e in enumerate(entries)
            ],
        )
        connection.execute(tables["audit_node"].insert(), nodes)
        connection.execute(tables["audit_head"].insert().values(id=1, size=len(entries)))


@pytest.mark.parametrize("logged_before", [0, 3], ids=["new log", "log of 3 entries"])
def test_access_records_move_into_the_log_in_order(tmp_path: Path, logged_before: int) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = create_db_engine(url)
    try:
        before = [f'{{"kind":"key.rotated","seq":{i}}}'.encode() for i in range(logged_before)]
        old_log(engine, before)
        customer, brand, offer, grant = uuid4(), uuid4(), uuid4(), uuid4()
        draft = OfferDraft.model_validate(OFFER)
        rows = [  # inserted as the schema stood at 0004: only the columns it had
            Customer(id=customer, email_index=b"\x01" * 32, password_hash="x", created_at=T0),
            Brand(id=brand, client_id="brd_m", name="M", redirect_uris=[], scopes=[], created_at=T0),
            Offer(id=offer, lineage_id=offer, brand_id=brand, created_at=T0, **_columns(draft)),
            Grant(
                id=grant,
                customer_id=customer,
                brand_id=brand,
                offer_id=offer,
                fields=["email"],
                purpose=draft.purpose,
                created_at=T0,
                expires_at=T0 + timedelta(days=30),
                status_changed_at=T0,
            ),
        ]
        with engine.begin() as connection:
            for row in rows:
                table = type(row).__table__  # type: ignore[attr-defined]
                present = {c["name"] for c in sa.inspect(connection).get_columns(table.name)}
                columns = [c for c in table.columns if c.name in present]
                values = {c.name: getattr(row, c.key) for c in columns}
                # A bare table of those columns: the model's own would add the defaults of later columns.
                bare = sa.table(table.name, *(sa.column(c.name, c.type) for c in columns))
                connection.execute(bare.insert().values(**values))
        records = sa.table(
            "access_record",
            *(sa.column(n, sa.Uuid()) for n in ("id", "grant_id", "brand_id", "customer_id")),
            sa.column("fields", sa.JSON()),
            sa.column("purpose", sa.String()),
            sa.column("request_id", sa.String()),
            sa.column("created_at", sa.DateTime()),
        )
        with engine.begin() as connection:
            for minutes, request in ((2, "second"), (1, "first")):
                connection.execute(
                    records.insert().values(
                        id=uuid4(),
                        grant_id=grant,
                        brand_id=brand,
                        customer_id=customer,
                        fields=["email"],
                        purpose=draft.purpose,
                        request_id=request,
                        created_at=(T0 + timedelta(minutes=minutes)).replace(tzinfo=None),
                    )
                )
        command.upgrade(config, "head")
        with Session(engine) as session:
            rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.index))).all()[logged_before:]
            assert [decode(r.entry)["request_id"] for r in rows] == ["first", "second"]
            assert {(r.kind, r.customer_id, r.brand_id) for r in rows} == {("profile.read", customer, brand)}
            assert [r.entry for r in rows] == [  # the bytes today's code gives the same read
                Event(
                    kind=Kind.PROFILE_READ,
                    at=T0 + timedelta(minutes=minutes),
                    actor=Actor.BRAND,
                    request_id=request,
                    brand=brand,
                    grant=grant,
                    fields=["email"],
                    purpose=draft.purpose,
                ).canonical()
                for minutes, request in ((1, "first"), (2, "second"))
            ]
            assert tree.size(session) == logged_before + 2
            leaves = [merkle.leaf_hash(entry) for entry in [*before, *(r.entry for r in rows)]]
            assert tree.root(session, logged_before + 2) == merkle.root_hash(leaves)
            signer = parse_private_key(generate_private_key("migration.example/audit"))
            report = verify_log(session, signer.verifier, origin=signer.name)  # every stored subtree too
            assert report.ok, report.problems
        assert not sa.inspect(engine).has_table("access_record")
    finally:
        engine.dispose()


def test_entries_logged_before_the_grant_column_find_their_grant(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "0007")
    engine = create_db_engine(url)
    try:
        grant = uuid4()
        entries = [
            Event(kind=Kind.PROFILE_READ, at=T0, actor=Actor.BRAND, grant=grant).canonical(),
            Event(kind=Kind.KEY_ROTATED, at=T0, actor=Actor.OPERATOR).canonical(),
        ]
        table = sa.table(
            "audit_entry",
            sa.column("index", sa.BigInteger()),
            sa.column("entry", sa.LargeBinary()),
            sa.column("leaf_hash", sa.LargeBinary()),
            sa.column("created_at", sa.DateTime()),
        )
        with engine.begin() as connection:
            for index, entry in enumerate(entries):
                connection.execute(
                    table.insert().values(
                        index=index,
                        entry=entry,
                        leaf_hash=merkle.leaf_hash(entry),
                        created_at=T0.replace(tzinfo=None),
                    )
                )
        command.upgrade(config, "head")
        with Session(engine) as session:
            rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.index))).all()
            assert [r.grant_id for r in rows] == [grant, None]
            assert [r.entry for r in rows] == entries  # the log itself is untouched
    finally:
        engine.dispose()
