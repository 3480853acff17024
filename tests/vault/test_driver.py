"""Queries on the driver's cursor answer exactly what SQLAlchemy's Core answers, and fail as it fails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlmodel import Session, col

from broker.audit.models import AuditEntry
from broker.runtime import Runtime
from vault.driver import DriverQuery, insert_rows
from vault.models import VaultField, VaultKey
from vault.profile import _KEY_AND_FIELDS

_KEY_TIMES = DriverQuery(
    sa_select(col(VaultKey.customer_id), col(VaultKey.created_at), col(VaultKey.rotated_at))
    .where(col(VaultKey.customer_id) == bindparam("customer_id"))
    .with_for_update(read=True)
)


def _core(db: Session, query: DriverQuery, params: dict[str, object]) -> list[tuple[object, ...]]:
    return [tuple(row) for row in db.connection().execute(query.statement, params)]


def test_rows_match_core_for_fields_outer_joins_and_missing_rows(runtime: Runtime, db: Session) -> None:
    filled, empty = uuid.uuid4(), uuid.uuid4()
    runtime.vault.create(db, filled)
    runtime.vault.write(db, filled, {"city": "Leeds", "email": "a@example.org"}, replace=False)
    runtime.vault.create(db, empty)  # a key row and no field: the outer join's NULLs
    db.flush()
    for customer_id in (filled, empty, uuid.uuid4()):
        params = {"customer_id": customer_id}
        rows = _KEY_AND_FIELDS.all(db.connection(), params)
        assert [tuple(r) for r in rows] == _core(db, _KEY_AND_FIELDS, params)
    (empty_row,) = _KEY_AND_FIELDS.all(db.connection(), {"customer_id": empty})
    assert empty_row.name is None and empty_row.ciphertext is None
    assert isinstance(empty_row.wrapped_dek, bytes)


def test_uuids_and_utc_datetimes_come_back_as_core_makes_them(runtime: Runtime, db: Session) -> None:
    customer_id = uuid.uuid4()
    runtime.vault.create(db, customer_id)
    db.flush()
    row = _KEY_TIMES.first(db.connection(), {"customer_id": customer_id})
    assert row is not None and tuple(row) == _core(db, _KEY_TIMES, {"customer_id": customer_id})[0]
    assert row.customer_id == customer_id and row.rotated_at is None
    assert row.created_at.utcoffset() is not None
    assert _KEY_TIMES.first(db.connection(), {"customer_id": uuid.uuid4()}) is None


def test_a_driver_error_is_raised_as_sqlalchemys(db: Session) -> None:
    missing = Table("no_such_table", MetaData(), Column("n", Integer))
    query = DriverQuery(sa_select(missing.c.n).where(missing.c.n == bindparam("n")))
    with pytest.raises(DBAPIError, match="no_such_table"):
        query.first(db.connection(), {"n": 1})


def test_expanding_parameters_are_refused_when_compiled(db: Session) -> None:
    query = DriverQuery(
        sa_select(col(VaultKey.customer_id)).where(
            col(VaultKey.customer_id).in_(bindparam("ids", expanding=True))
        )
    )
    with pytest.raises(ValueError, match="no expanding"):
        query.all(db.connection(), {"ids": [uuid.uuid4()]})


def test_values_the_statement_carries_are_sent_and_a_missing_one_is_an_error(
    runtime: Runtime, db: Session
) -> None:
    customer_id = uuid.uuid4()
    runtime.vault.create(db, customer_id)
    db.flush()
    query = DriverQuery(  # `kek_version >= 1`: a literal, bound by SQLAlchemy as an anonymous parameter
        sa_select(col(VaultKey.customer_id)).where(
            col(VaultKey.customer_id) == bindparam("customer_id"), col(VaultKey.kek_version) >= 1
        )
    )
    row = query.first(db.connection(), {"customer_id": customer_id})
    assert row is not None and row.customer_id == customer_id
    with pytest.raises(ValueError, match="required for the bind parameter 'customer_id'"):
        query.first(db.connection(), {})


def test_repeated_columns_are_converted_once_per_run_and_rows_that_differ_are_converted_whole(
    runtime: Runtime, db: Session
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    for customer_id in (first, second):
        runtime.vault.create(db, customer_id)
        runtime.vault.write(db, customer_id, {"city": "Leeds", "email": "a@example.org"}, replace=False)
    db.flush()
    # The key's columns repeat beside each of one customer's fields, but not across two customers: a
    # query declaring them repeated must still answer what Core answers when they differ.
    both = sa_select(col(VaultKey.customer_id), col(VaultKey.created_at), col(VaultField.name))
    statement = (
        both.select_from(VaultKey)
        .join(VaultField, col(VaultField.customer_id) == col(VaultKey.customer_id))
        .where(or_(col(VaultKey.customer_id) == bindparam("a"), col(VaultKey.customer_id) == bindparam("b")))
        .order_by(col(VaultKey.customer_id), col(VaultField.name))
    )
    query = DriverQuery(statement, repeated=2)
    params = {"a": first, "b": second}
    rows = query.all(db.connection(), params)
    assert [tuple(r) for r in rows] == _core(db, query, params)
    assert {r.customer_id for r in rows} == {first, second} and len(rows) == 4
    same = [r for r in rows if r.customer_id == rows[0].customer_id]
    assert same[1].created_at is same[0].created_at  # converted once, reused
    others = [r for r in rows if r.customer_id != rows[0].customer_id]
    assert others[0].created_at is not rows[0].created_at  # a new run, converted whole
    assert others[1].created_at is others[0].created_at  # and reused within its own run


def test_repeated_cannot_exceed_the_columns() -> None:
    statement = sa_select(col(VaultKey.customer_id), col(VaultKey.created_at))
    with pytest.raises(ValueError, match="between 0 and the 2 columns"):
        DriverQuery(statement, repeated=3)
    with pytest.raises(ValueError, match="between 0 and the 2 columns"):
        DriverQuery(statement, repeated=-1)


def test_inserted_rows_are_what_core_would_have_inserted_and_fail_as_core_fails(db: Session) -> None:
    table = AuditEntry.__table__  # type: ignore[attr-defined]
    at = datetime(2026, 12, 2, 21, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    rows = [
        {"index": 10_000 + i, "entry": bytes([i]) * 300, "leaf_hash": bytes([i]) * 32, "created_at": at,
         "kind": "profile.read", "customer_id": uuid.uuid4() if i else None, "brand_id": None,
         "grant_id": None}
        for i in range(3)
    ]  # fmt: skip
    insert_rows(db.connection(), table, rows)  # a COPY on PostgreSQL, the driver's executemany on SQLite
    query = sa_select(table).where(table.c.index >= 10_000).order_by(table.c.index)
    stored = [dict(row._mapping) for row in db.connection().execute(query)]
    assert stored == [{**row, "created_at": at.astimezone(UTC)} for row in rows]
    # the same key again: SQLAlchemy's error, as Core raises it
    with pytest.raises(IntegrityError), db.begin_nested():
        insert_rows(db.connection(), table, rows[:1])
    naive = {**rows[0], "index": 20_000, "created_at": datetime(2026, 1, 1)}
    with pytest.raises(StatementError, match="naive datetime"):  # the column type's own check, as Core
        insert_rows(db.connection(), table, [naive])
    insert_rows(db.connection(), table, [])  # nothing to do
