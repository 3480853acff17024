"""Database engine, session factory and schema checks for SQLite (WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import contextlib
import math
import select
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import ORMExecuteState, sessionmaker
from sqlmodel import Session

from broker.errors import DatabaseMisconfigured, DatabaseNotMigrated
from vault.driver import as_sqlalchemy_error
from vault.private_files import private_file, tighten

SessionFactory = Callable[[], Session]
ConnectionFactory = Callable[[], AbstractContextManager[Connection]]  # `with factory() as connection`
_READ_ONLY_DEFAULT = "-c default_transaction_read_only=on"  # PostgreSQL: see create_db_engine
READ_ONLY = "consentry_read_only"  # execution option (and session info key): this connection never writes
_QUERY_ONLY = "consentry_query_only"  # pooled SQLite connection's info: is PRAGMA query_only on?
_PQ_OK = 0  # libpq's CONNECTION_OK


class WriteInReadOnlySession(RuntimeError):
    """Code that declared it only reads tried to write: a bug, never a client's error."""


def create_db_engine(url: str, *, pool_size: int = 10, timeout: float = 30) -> Engine:
    """Build an engine with the settings each backend needs to be safe under concurrency.

    `pool_size` connections stay open, and as many more are opened during a burst. `timeout` bounds
    how long a request waits for the database before it fails (and is answered 503): SQLite's busy
    timeout on its lock; PostgreSQL's connect timeout and the wait for a pooled connection. Pooled
    PostgreSQL connections are checked on checkout (`_has_news`), so after the server restarts
    or terminates them the next request gets a fresh one instead of an error.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, timeout, pool_size)
    return _postgresql_engine(url, timeout, pool_size, reading=False)


def reading_engine(engine: Engine, *, pool_size: int = 10, timeout: float = 30) -> Engine:
    """The engine the connections of requests that only read come from (`read_session_factory`,
    `read_connection_factory`), beside `engine` (from `create_db_engine`).

    SQLite: `engine` itself; each reading transaction is deferred and `query_only` (`_on_begin`).
    PostgreSQL: a pool of its own, of `pool_size` connections and as many more in a burst, opened in
    autocommit and never switched: each statement its own transaction, read-only by the connection's
    default, as before. Taken from the writers' pool instead, a connection was switched to autocommit at
    every checkout and back at every checkin: about 50 µs of a client-credentials token's 540 µs in
    process, 10 %."""
    if engine.dialect.name != "postgresql":
        return engine
    url = engine.url.render_as_string(hide_password=False)
    return _postgresql_engine(url, timeout, pool_size, reading=True).execution_options(**{READ_ONLY: True})


def _postgresql_engine(url: str, timeout: float, pool_size: int, *, reading: bool) -> Engine:
    # Every connection's transactions are read-only unless they say otherwise, and ours say so: each
    # connection, when it opens, is set to begin its transactions with `BEGIN READ WRITE`. A request
    # that only reads runs in autocommit instead, on a `reading_engine`: one round trip per statement,
    # without `BEGIN` and `ROLLBACK`, and each statement is still a read-only transaction by the
    # connection's default, so a write through it fails in the database.
    given = make_url(url).query.get("options")
    options = " ".join([*([given] if isinstance(given, str) else list(given or ())), _READ_ONLY_DEFAULT])
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout,
        connect_args={
            "connect_timeout": max(2, math.ceil(timeout)),  # libpq's minimum is 2 s
            "options": options,
        },
        # A reader's connections stay in autocommit: no transaction to roll back when they come back.
        **({"isolation_level": "AUTOCOMMIT", "pool_reset_on_return": None} if reading else {}),
    )
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        _require_read_only_default(dbapi_conn)
        # A writer's transactions begin with BEGIN READ WRITE; a reader's have no BEGIN (autocommit).
        dbapi_conn.read_only = reading

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if _has_news(dbapi_conn):
            # Most likely a goodbye; if not (a notice, say), a ping reads it and keeps the connection.
            try:
                dialect.do_ping(dbapi_conn)
            except Exception as exc:
                raise DisconnectionError(f"the server closed the connection: {exc}") from exc

    return engine


def _require_read_only_default(dbapi_conn: Any) -> None:
    """Refuse a connection on which transactions are not read-only by default: read-only requests run
    in autocommit and rely on it to refuse writes (`create_db_engine`). A pooler that drops the
    `options` startup parameter drops it. PostgreSQL 14 and later report the setting when the
    connection opens, so this costs no round trip; older servers (out of support) are refused."""
    reported = dbapi_conn.info.parameter_status("default_transaction_read_only")
    if reported is None:
        raise DatabaseMisconfigured("Consentry needs PostgreSQL 14 or later")
    if reported != "on":
        raise DatabaseMisconfigured(
            "PostgreSQL did not apply default_transaction_read_only=on, which Consentry sends when it "
            "connects (a connection pooler may drop the `options` startup parameter): set it on the "
            "role instead, ALTER ROLE <user> SET default_transaction_read_only = on"
        )


def _has_news(dbapi_conn: Any) -> bool:
    """Whether a pooled PostgreSQL connection, idle, has heard from the server: then it may be closed
    or closing, and the checkout pings it (the pool discards it and takes another if the ping fails, as
    SQLAlchemy's `pool_pre_ping` does for every checkout).

    Without a round trip: an idle connection has nothing to read, so when its socket is readable the
    server has sent it something, and to an idle connection of ours (no LISTEN) that is almost always
    a goodbye (`pg_terminate_backend`, a shutdown: an error message, then end of file), or the
    connection is already gone. `pool_pre_ping` sent a statement every time, one round trip per
    request: 1 of a client-credentials token request's 4 on PostgreSQL. Like the ping, this cannot
    see a server that vanished without a word (a cut network); the next statement then fails, and the
    request is answered 503.
    """
    try:
        pgconn = dbapi_conn.pgconn
        if pgconn.status != _PQ_OK:
            return True
        poll = select.poll()  # not select.select: a busy server's descriptors go past its 1,024 limit
        poll.register(pgconn.socket, select.POLLIN)  # psycopg raises if there is no socket any more
        return bool(poll.poll(0))  # readable, hung up or in error
    except Exception:  # the driver's own error for a connection it lost
        return True


def _sqlite_engine(url: str, timeout: float, pool_size: int) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        # Owner-only: SQLite gives the WAL and SHM the database file's mode, so 0600 covers all three.
        private_file(Path(path))
        for companion in ("-wal", "-shm", "-journal"):
            tighten(Path(path + companion))
    # A database file gets a queue of pooled connections; an in-memory one keeps SQLAlchemy's own pool
    # (one connection per thread), as each connection would be a database of its own.
    pool: dict[str, Any] = {}
    if path and path != ":memory:":
        pool = {"pool_size": pool_size, "max_overflow": pool_size, "pool_timeout": timeout}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout}, **pool)
    writers = _Writers(timeout)
    _end_turn_with_transaction(engine, writers)

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
        # Connections that only read (read-only requests, schema checks) say so: a deferred BEGIN takes
        # no lock (WAL readers run beside the writer), and `query_only` makes SQLite refuse any write
        # through them. The pragma stays on the pooled connection, so it is only sent when it changes.
        # A writer first waits for its turn among this process's writers (`_Writers`), then for SQLite's
        # lock, which only another process can then hold (`_begin_immediate`).
        read_only = bool(conn.get_execution_options().get(READ_ONLY, False))
        info = conn.connection.info
        if info.get(_QUERY_ONLY, False) != read_only:
            _driver_sql(conn, f"PRAGMA query_only={int(read_only)}")
            info[_QUERY_ONLY] = read_only
        if read_only:
            _driver_sql(conn, "BEGIN")
            return
        driver = conn.connection.dbapi_connection
        deadline = time.monotonic() + timeout
        if not writers.take_turn(driver):
            locked = sqlite3.OperationalError("database is locked (waited for this process's other writers)")
            raise as_sqlalchemy_error(conn, "BEGIN IMMEDIATE", None, locked)
        try:
            _begin_immediate(conn, deadline, busy_timeout_ms=round(timeout * 1000))
        except BaseException:
            writers.end_turn(driver)
            raise

    return engine


_POLL_SECONDS = 0.0005


def _begin_immediate(conn: Connection, deadline: float, *, busy_timeout_ms: int) -> None:
    """`BEGIN IMMEDIATE`; while another process's writer holds SQLite's lock, try again every 0.5 ms
    until `deadline`, then fail as SQLite would (`OperationalError`: database is locked, a 503).

    Not in SQLite's busy handler: it sleeps 1, 2, 5, 10 … up to 100 ms between tries, and the writer
    of another process that begins again as soon as it commits (its audit group committer) takes the
    lock back long before a sleeper wakes. With `consentry serve --workers 2` on SQLite (the default
    on a 2-core machine) each process's writers then waited for the other's for up to 100 ms at a
    time. Only this process's one writer whose turn it is (`_Writers`) tries, so the polling costs
    one try per 0.5 ms per process, and only while another process writes."""
    driver = conn.connection.dbapi_connection
    assert driver is not None
    _driver_sql(conn, "PRAGMA busy_timeout=0")  # the tries below are the wait; other statements keep it
    try:
        while True:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise as_sqlalchemy_error(conn, "BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(_POLL_SECONDS)
    finally:
        _driver_sql(conn, f"PRAGMA busy_timeout={busy_timeout_ms}")


class _Writers:
    """The turns of one process's writers to one SQLite database: one at a time, first come, first
    served.

    SQLite lets one writer in at a time, and the others wait in its busy handler, which sleeps and
    retries (after 1, 2, 5, 10 … up to 100 ms) and so is unfair: a writer that commits and begins
    again at once (the audit group committer, batch after batch) takes the lock again before a
    sleeper wakes, and a request's write waited up to 7 s behind it. Here the writers of the process
    queue instead, and each turn is handed to the longest waiter the moment the last one ends; the
    writer whose turn it is then waits for other processes' writers (`_begin_immediate`). A turn not
    given within the database timeout is refused like SQLite's lock: an `OperationalError`, answered
    503."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._owner: Any = None  # the driver connection whose turn it is
        self._waiting: deque[tuple[threading.Event, Any]] = deque()

    def take_turn(self, driver: Any) -> bool:
        """Wait for `driver`'s turn; False if it did not come within the timeout."""
        with self._lock:
            if self._owner is None:
                self._owner = driver
                return True
            turn = threading.Event()
            self._waiting.append((turn, driver))
        if turn.wait(self.timeout):
            return True
        with self._lock:
            if turn.is_set():
                return True  # handed over as the wait ran out
            self._waiting.remove((turn, driver))
            return False

    def end_turn(self, driver: Any) -> None:
        """`driver`'s transaction ended (or never began): the next waiter's turn. A connection whose
        turn it is not (a reader, or one already done) changes nothing."""
        with self._lock:
            if self._owner is not driver:
                return
            if self._waiting:
                turn, self._owner = self._waiting.popleft()
                turn.set()
            else:
                self._owner = None


def _end_turn_with_transaction(engine: Engine, writers: _Writers) -> None:
    """End a writer's turn when its transaction has ended, however it ends: committed, rolled back
    (by its code, or by the pool when the connection comes back), or its connection closed. Done
    around the dialect's own calls, after them, so the next writer never meets the lock this one still
    holds."""
    dialect = engine.dialect  # this engine's own instance

    def ending(name: str) -> None:
        plain = getattr(dialect, name)

        def end(connection: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return plain(connection, *args, **kwargs)
            finally:
                # The pool's proxy (commits, rollbacks) or the driver's connection itself (closes).
                writers.end_turn(getattr(connection, "dbapi_connection", connection))

        setattr(dialect, name, end)

    for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
        ending(name)


def _driver_sql(conn: Connection, statement: str) -> None:
    """Run `statement` on the driver's connection itself: every transaction begins this way, and
    SQLAlchemy's execution machinery (`exec_driver_sql`) added about 15 µs a transaction. A driver
    error is raised as SQLAlchemy's (`vault.driver.as_sqlalchemy_error`)."""
    try:
        conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        raise as_sqlalchemy_error(conn, statement, None, exc) from exc


def session_factory(engine: Engine) -> SessionFactory:
    """A factory of ORM sessions that do not expire objects on commit (responses read them after)."""
    return sessionmaker(bind=engine, class_=Session, expire_on_commit=False)


def read_session_factory(engine: Engine) -> SessionFactory:
    """A factory of sessions for requests that only read. Their connections take no lock a writer
    needs: a deferred transaction on SQLite (`query_only` on); on PostgreSQL autocommit, each
    statement a READ ONLY transaction (no row locks: it refuses SELECT … FOR UPDATE). A write through
    one fails at once, in the ORM (`WriteInReadOnlySession`) and in the database."""
    # On PostgreSQL, autocommit: each statement its own transaction, read-only by the connection's
    # default (`create_db_engine`). At READ COMMITTED each statement of a transaction saw its own
    # snapshot anyway; this saves BEGIN and ROLLBACK.
    factory = sessionmaker(bind=_reading(engine), class_=Session, expire_on_commit=False)
    return lambda: read_only(factory())


def read_connection_factory(engine: Engine) -> ConnectionFactory:
    """A factory of connections for a request whose one statement only reads, run on the driver's
    cursor (`vault.driver.DriverQuery`): no ORM session and no transaction. A client-credentials
    token reads its brand this way: a read session's first statement cost about 75 µs more on SQLite
    (the Session, its BEGIN and its ROLLBACK), a quarter of the whole token.

    The driver runs a lone SELECT in autocommit: on SQLite beside any writer in WAL (pysqlite begins
    only before a write); on PostgreSQL the connection is in autocommit and each statement a
    READ ONLY transaction (`create_db_engine`). A statement run through SQLAlchemy itself would begin
    a transaction as a read session's does (the `begin` event): read-only too. For several
    statements that must see one snapshot, use a read session (`read_session_factory`)."""
    return _reading(engine).connect


class LazyConnection:
    """A connection of `connect` opened by the first `get()`, for a request that may need none, and
    closed with the `with` block that holds this."""

    def __init__(self, connect: ConnectionFactory) -> None:
        self._connect = connect
        self._opened: contextlib.ExitStack | None = None
        self._connection: Connection | None = None

    def get(self) -> Connection:
        """The connection, opened now if it is not yet."""
        if self._connection is None:
            opened = contextlib.ExitStack()
            self._connection = opened.enter_context(self._connect())
            self._opened = opened
        return self._connection

    def __enter__(self) -> LazyConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = self._connection = None


def _reading(engine: Engine) -> Engine:
    """`engine` for connections that only read: a `reading_engine` as it is; any other marked
    READ_ONLY (on SQLite, `_on_begin` then begins deferred and `query_only`) and, on PostgreSQL,
    switched to autocommit for the time each connection is out of the pool."""
    if engine.get_execution_options().get(READ_ONLY):
        return engine
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return engine.execution_options(**options)


def read_only(session: Session) -> Session:
    """Mark `session` as one that never writes: flushing a change, or an INSERT, UPDATE or DELETE
    through it, raises `WriteInReadOnlySession` (tests mark their savepoint sessions this way)."""
    session.info[READ_ONLY] = True
    return session


@event.listens_for(Session, "before_flush")
def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise WriteInReadOnlySession("a read-only session was asked to write; use the writing session")


@event.listens_for(Session, "do_orm_execute")
def _refuse_dml(state: ORMExecuteState) -> None:
    if state.session.info.get(READ_ONLY) and (state.is_insert or state.is_update or state.is_delete):
        raise WriteInReadOnlySession("a read-only session was asked to write; use the writing session")


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
