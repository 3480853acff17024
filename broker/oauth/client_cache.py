"""Brands as the token endpoint sees them, kept in each server process and dropped the moment a brand
changes.

Every client-credentials token looks its brand up. Measured over HTTP (one worker, 32 clients), that
lookup cost a fifth of the token's rate on SQLite and two fifths on PostgreSQL, where it is a round
trip and a pooled connection. So a request that only reads (a client-credentials token) finds its brand
here, and reads the row only when the cache cannot vouch for it.

The cache vouches for an entry through a *stamp*: numbers that change whenever any brand may have
changed. An entry keeps the stamp taken *before* its row was read, and is served only while the stamp
is still current, so a change committed while the row was being read leaves an entry that is never
served. What changes the stamp:

- **This process**: every session that changed or deleted a brand (its objects, or an ORM `UPDATE` or
  `DELETE` of the table) bumps it once its commit returned (`_after_commit`). Adding a brand changes
  nothing: a client id that was not found is never cached. A change made outside an ORM session (a
  raw UPDATE) is not seen: the `ttl` bounds it.
- **Other processes on SQLite** (workers, the `consentry` command): a counter in a file beside the
  database (`<database>-brands`, owner-only), which the writer bumps after its flush and again after
  its commit. A lookup reads it from shared memory.
- **Other processes and nodes on PostgreSQL**: the writer's transaction sends `NOTIFY
  consentry_brands`, which PostgreSQL delivers when it commits (and never if it rolls back). Each
  server process listens (`BrandSignals.listen`, a task of the app) and bumps the stamp for each
  notification. While it is not listening (starting up, its connection lost, a command without the
  app), nothing is served from the cache: every lookup reads the row.

What a customer or a brand can count on: a replaced secret stops working at once in the process that
replaced it and in every process on the same SQLite database; on other PostgreSQL nodes, as soon as
the notification arrives (milliseconds). Each entry also lives at most `ttl` seconds: a process that
died between its commit and its signal cannot leave an old secret working for longer than that.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from broker.accounts.models import Brand
from broker.oauth.clients import ClientRecord
from vault.private_files import private_file

__all__ = ["BrandSignals", "ClientCache", "signals_for"]

log = logging.getLogger("consentry.oauth")

CHANNEL = "consentry_brands"
_CHANGED = "consentry_brands_changed"  # a session's info: it flushed a change to a brand
_COUNTER = struct.Struct("<Q")
Stamp = tuple[int, int]


class _FileCounter:
    """A 64-bit counter in a file, shared by every process that maps it (closed with this object)."""

    def __init__(self, path: Path) -> None:
        private_file(path)
        self._path = path
        with path.open("r+b") as file:
            if os.fstat(file.fileno()).st_size < _COUNTER.size:
                file.truncate(_COUNTER.size)  # zeros: a counter at 0
            self._map = mmap.mmap(file.fileno(), _COUNTER.size)

    def value(self) -> int:
        value: int = _COUNTER.unpack_from(self._map)[0]
        return value

    def bump(self) -> None:
        with self._path.open("rb") as lock:  # one process's read-and-add at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            _COUNTER.pack_into(self._map, 0, (self.value() + 1) % (1 << 64))


class BrandSignals:
    """What tells this process that a brand of one database may have changed (see the module)."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.postgresql = url.get_backend_name() == "postgresql"
        self._local = 0
        self._bumping = threading.Lock()  # commits in several threads: no bump may be lost
        database = url.database or ""
        self._file = (
            _FileCounter(Path(database + "-brands"))
            if not self.postgresql and database and database != ":memory:"
            else None
        )
        self._listeners = 0  # on PostgreSQL, the subscriptions of `listen` now up
        self.retry_seconds = 1.0

    def stamp(self) -> Stamp | None:
        """The current stamp, or None when a change elsewhere could go unnoticed (on PostgreSQL, not
        listening)."""
        if self.postgresql and not self._listeners:
            return None
        return self._local, (self._file.value() if self._file is not None else 0)

    def bump(self) -> None:
        """A brand may have changed: every entry cached so far is stale."""
        with self._bumping:
            self._local += 1
        if self._file is not None:
            self._file.bump()

    def noted(self, session: Session) -> None:
        """`session` flushed a change to a brand: tell other processes through its transaction (on
        PostgreSQL, delivered at its commit) or now (SQLite: a change about to commit)."""
        if self.postgresql:
            session.connection().exec_driver_sql(f"NOTIFY {CHANNEL}")
        else:
            self.bump()

    async def listen(self) -> None:
        """PostgreSQL: subscribe to brand changes and bump the stamp for each, until cancelled. While
        the subscription is down, the cache is off, and every `retry_seconds` it is tried again."""
        if not self.postgresql:
            return
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        failing = False  # said once per outage, not at every try
        while True:
            subscribed = False
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=5
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.bump()  # what was cached before the subscription may have missed a change
                    self._listeners += 1
                    subscribed = True
                    if failing:
                        log.info("listening for brand changes again: brands are cached again")
                        failing = False
                    async for _ in connection.notifies():
                        self.bump()
            except (psycopg.Error, OSError) as exc:
                if not failing:
                    log.warning("not listening for brand changes (%s): brands are read from the "
                                "database until it is back", type(exc).__name__)  # fmt: skip
                failing = True
            finally:
                if subscribed:
                    self._listeners -= 1
                    self.bump()
            await asyncio.sleep(self.retry_seconds)


# Weak: a database's signals live as long as a cache uses them. A session that changes a brand of a
# database no cache of this process uses still bumps the file (another process may cache).
_SIGNALS: weakref.WeakValueDictionary[str, BrandSignals] = weakref.WeakValueDictionary()
_SIGNALS_MADE = threading.Lock()  # two threads must not make two for one database


def signals_for(url: URL) -> BrandSignals:
    """The `BrandSignals` of this process for the database at `url` (one while any is in use)."""
    key = url.render_as_string(hide_password=False)
    with _SIGNALS_MADE:
        found = _SIGNALS.get(key)
        if found is None:
            found = _SIGNALS[key] = BrandSignals(url)
        return found


def _signals_of(session: Session) -> BrandSignals:
    return signals_for(session.get_bind().engine.url)


def _changed(session: Session) -> None:
    """`session` changed a brand: told through its transaction now, and in this process at its commit."""
    session.info[_CHANGED] = True
    _signals_of(session).noted(session)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    if any(isinstance(changed, Brand) for changed in (*session.dirty, *session.deleted)):
        _changed(session)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(mapper.class_ is Brand for mapper in state.all_mappers):
        _changed(state.session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        _signals_of(session).bump()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction, not a savepoint within it: nothing changed
        session.info.pop(_CHANGED, None)


@dataclass(frozen=True, slots=True)
class _Entry:
    record: ClientRecord
    stamp: Stamp
    until: float  # monotonic seconds


class ClientCache:
    """Brands by client id, for requests that only read (see the module)."""

    def __init__(
        self,
        signals: BrandSignals,
        *,
        ttl: float = 60.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signals = signals
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def find(self, client_id: str, read: Callable[[], ClientRecord | None]) -> ClientRecord | None:
        """The brand with this client id: the cached one while nothing may have changed, else what
        `read()` finds (cached if found)."""
        stamp = self.signals.stamp()  # before the read: a change committed meanwhile makes it stale
        if stamp is None:
            return read()
        now = self._clock()
        entry = self._entries.get(client_id)
        if entry is not None and entry.stamp == stamp and now < entry.until:
            return entry.record
        record = read()
        if record is not None:
            if len(self._entries) >= self.size and client_id not in self._entries:
                self._entries.clear()  # bounded: forget everything rather than track ages
            self._entries[client_id] = _Entry(record, stamp, now + self.ttl)
        return record
