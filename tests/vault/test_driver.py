"""Queries on the driver's cursor answer exactly what SQLAlchemy's Core answers, and fail as it fails."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from broker.runtime import Runtime
from vault.driver import DriverQuery
from vault.models import VaultKey
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
