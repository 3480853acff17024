"""Prebuilt SELECTs run on the database driver's own cursor, for the few statements every profile read
runs.

SQLAlchemy's Core spends about 25 µs of CPU around each statement on SQLite and 50 µs on PostgreSQL
(measured on the development machine: a primary-key select cost 134 µs through `Connection.execute`
and 80 µs through the driver), as much as the database itself. A `DriverQuery` keeps what SQLAlchemy
does that matters and drops the rest: the statement is compiled by SQLAlchemy once per dialect, its
parameters and columns go through the column types' own processors (the same conversions Core
applies: UUIDs, UTC datetimes, JSON), a driver error is raised as SQLAlchemy's (a lost connection is
invalidated, so the pool drops it, as Core does), and rows are named tuples with the statement's
column names. Nothing else may differ: `tests/vault/test_driver.py` compares every query with Core's.

It runs on the connection of the caller's transaction (`Session.connection()`), so it sees that
transaction's writes once flushed, and takes the row locks its statement asks for.

A query over a one-to-many join (a grant and its customer's vault fields) repeats the one side's
columns in every row. Declared as `repeated`, those columns are converted once per run: a row whose
repeated columns are what the previous row's were, as the driver returned them, reuses that row's
converted values (the same objects: a JSON list is shared between rows, so callers must not change
it); any other row is converted whole and starts a run (a query over several grants, ordered by
grant). On the profile read this saved about a third of the query's cost.
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError

__all__ = ["DriverQuery", "as_sqlalchemy_error", "insert_rows", "text_rows"]

Processor = Callable[[Any], Any] | None
_NOTHING = object()  # no value converted yet
_NAMED = re.compile(r"(?<![:\w]):(\w+)")  # a `:name` parameter (not `::type`)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional paramstyle sends them
    positional: bool
    binds: Mapping[str, Processor]
    values: Mapping[str, Any]  # the values the statement carries itself (literals in its WHERE clause)
    results: tuple[Processor, ...]
    row: type[tuple[Any, ...]]


class DriverQuery:
    """A SELECT, compiled for each dialect it meets, run on the driver's cursor."""

    def __init__(self, statement: Select[*tuple[Any, ...]], *, repeated: int = 0) -> None:
        """`repeated`: how many leading columns usually hold the same values in every row."""
        if repeated < 0 or repeated > len(statement.selected_columns):
            raise ValueError(f"repeated must be between 0 and the {len(statement.selected_columns)} columns")
        self.statement = statement
        self.repeated = repeated
        self._compiled: dict[str, _Compiled] = {}  # by dialect name: one engine per process

    def all(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row, as named tuples."""
        return self._run(connection, params, first=False)

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Any | None:
        """The first row (the rest unread), or None."""
        rows = self._run(connection, params, first=True)
        return rows[0] if rows else None

    def _run(self, connection: Connection, params: Mapping[str, Any], *, first: bool) -> list[Any]:
        dialect = connection.dialect
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        values = {
            name: _apply(compiled.binds[name], _value(compiled, params, name)) for name in compiled.names
        }
        arguments: Sequence[Any] | Mapping[str, Any] = (
            [values[name] for name in compiled.names] if compiled.positional else values
        )
        driver = connection.connection.dbapi_connection
        assert driver is not None  # the caller's transaction holds its connection
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            fetched = cursor.fetchmany(1) if first else cursor.fetchall()
        except dialect.loaded_dbapi.Error as exc:
            raise as_sqlalchemy_error(connection, compiled.sql, arguments, exc, cursor) from exc
        finally:
            cursor.close()
        return self._rows(compiled, fetched)

    def _rows(self, compiled: _Compiled, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        row, processors, repeated = compiled.row, compiled.results, self.repeated
        if not fetched:
            return []
        first = row(*(_apply(p, v) for p, v in zip(processors, fetched[0], strict=True)))
        rows = [first]
        if not repeated:
            rows.extend(row(*(_apply(p, v) for p, v in zip(processors, r, strict=True))) for r in fetched[1:])
            return rows
        raw_head, head, tail = tuple(fetched[0][:repeated]), tuple(first[:repeated]), processors[repeated:]
        for raw in fetched[1:]:
            if tuple(raw[:repeated]) == raw_head:
                rows.append(row(*head, *(_apply(p, v) for p, v in zip(tail, raw[repeated:], strict=True))))
            else:  # a new run: this row's head is the one the next rows are compared with
                converted = row(*(_apply(p, v) for p, v in zip(processors, raw, strict=True)))
                rows.append(converted)
                raw_head, head = tuple(raw[:repeated]), tuple(converted[:repeated])
        return rows

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if positional else tuple(compiled.binds)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a DriverQuery takes no expanding or literal-execute parameters")
        binds = {
            name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        }
        columns = list(self.statement.selected_columns)
        results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        row = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
        carried = {
            name: compiled.binds[name].effective_value for name in names if not compiled.binds[name].required
        }
        made = _Compiled(compiled.string, names, positional, binds, carried, results, row)
        self._compiled[dialect.name] = made
        return made


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same columns, every column the insert needs: no column default is
    applied) into `table`, in `connection`'s transaction, on the driver's cursor.

    Core's executemany handles each row's parameters in Python. Here the values go through the column
    types' own bind processors, as Core would send them (a value shared by consecutive rows, such as a
    batch's timestamp, converted once), and then: on PostgreSQL one `COPY … FROM STDIN` (psycopg
    formats the rows in C; for the log's appends, 9 against 30 µs of CPU per entry), elsewhere (SQLite)
    the driver's own `executemany` of one INSERT. A driver error is raised as SQLAlchemy's. With the
    subtree lookup on the driver too (`text_rows`), a group commit's append of 16 entries on SQLite
    went from 449 to 267 µs of CPU in process."""
    if not rows:
        return
    dialect = connection.dialect
    names = tuple(rows[0])
    sql, processors = _insert_plan(table, names, dialect)
    values = [[row[name] for name in names] for row in rows]
    try:  # a value its column refuses (a naive datetime) fails before anything is sent, as with Core
        for column, processor in enumerate(processors):
            if processor is None:
                continue
            given, sent = _NOTHING, None  # rows often share a value (a batch's timestamp): convert it once
            for value in values:
                if value[column] is not given:
                    given, sent = value[column], processor(value[column])
                value[column] = sent
    except Exception as exc:
        raise StatementError(f"({type(exc).__module__}.{type(exc).__name__}) {exc}", sql, None, exc) from exc
    driver: Any = connection.connection.dbapi_connection
    cursor = driver.cursor()
    try:
        if dialect.name == "postgresql":
            with cursor.copy(sql) as copy:
                for value in values:
                    copy.write_row(value)
        else:
            cursor.executemany(sql, values)
    except dialect.loaded_dbapi.Error as exc:
        raise as_sqlalchemy_error(connection, sql, None, exc, cursor) from exc
    finally:
        cursor.close()


@functools.lru_cache(maxsize=64)  # (table, columns, dialect): a handful per engine
def _insert_plan(table: Table, names: tuple[str, ...], dialect: Dialect) -> tuple[str, list[Processor]]:
    """The statement that inserts rows of these columns (COPY on PostgreSQL, a qmark INSERT
    elsewhere) and each column's bind processor."""
    processors: list[Processor] = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(name) for name in names)
    if dialect.name == "postgresql":
        return f"COPY {quote.format_table(table)} ({columns}) FROM STDIN", processors
    if dialect.paramstyle != "qmark":  # pragma: no cover - the dialects we run (sqlite3) use qmark
        raise NotImplementedError(f"insert_rows has no plan for paramstyle {dialect.paramstyle}")
    marks = ", ".join("?" for _ in names)
    sql = f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES ({marks})"  # noqa: S608 - quoted names
    return sql, processors


def text_rows(connection: Connection, sql: str, params: Mapping[str, Any]) -> list[Any]:
    """The rows of `sql` (its parameters written `:name`, every value bound) on the driver's cursor, in
    `connection`'s transaction, as the driver returns them: for a statement whose text changes with
    its arguments (the audit tree's lookups of many subtrees), which Core would parse and compile anew
    every time (as `text()`, about 40 % of such a lookup's CPU). A driver error is raised as
    SQLAlchemy's."""
    dialect = connection.dialect
    if dialect.name == "postgresql":  # psycopg: pyformat
        sql = _NAMED.sub(r"%(\1)s", sql)
    elif dialect.name != "sqlite":  # pragma: no cover - sqlite3 takes `:name` as written
        raise NotImplementedError(f"text_rows does not run on {dialect.name}")
    driver = connection.connection.dbapi_connection
    assert driver is not None  # the caller's transaction holds its connection
    cursor = driver.cursor()
    try:
        cursor.execute(sql, params)
        rows = list(cursor.fetchall())
    except dialect.loaded_dbapi.Error as exc:
        raise as_sqlalchemy_error(connection, sql, params, exc, cursor) from exc
    finally:
        cursor.close()
    return rows


def as_sqlalchemy_error(
    connection: Connection, statement: str, params: Any, exc: Any, cursor: Any = None
) -> StatementError:
    """A driver's error `exc` (the driver module's `Error`) from `statement`, run on `connection`'s
    driver connection, as SQLAlchemy raises it: a `DBAPIError` (a lock held past the busy timeout is
    still an `OperationalError`, which requests answer 503). A lost connection is invalidated first,
    so the pool drops it, as Core does."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(exc)
    error: StatementError = DBAPIError.instance(
        statement, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
    )
    return error


def _value(compiled: _Compiled, params: Mapping[str, Any], name: str) -> Any:
    """The parameter's value: the caller's, else the one the statement carries; as with Core, a
    parameter nobody gave is an error, never a NULL."""
    if name in params:
        return params[name]
    if name in compiled.values:
        return compiled.values[name]
    raise ValueError(f"a value is required for the bind parameter {name!r}")


def _apply(processor: Processor, value: Any) -> Any:
    return value if processor is None else processor(value)
