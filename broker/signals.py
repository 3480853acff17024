"""Change signals: how every server process learns, at once, that something it caches may have changed.

A process caches what many requests read and few change (brands for the token endpoint,
`broker.oauth.client_cache`; the directory's pages, `broker.portal.directory`). It vouches for an
entry through a *stamp*: numbers that change whenever a change of the entry's *topic* (`BRANDS`,
`LISTINGS`) may have been committed. An entry keeps the stamp taken *before* its data was read, and is
served only while the stamp is still current, so a change committed while the data was being read
leaves an entry that is never served. What changes a topic's stamp:

- **This process**: a session that changed the topic (`changed(session, topic)`) bumps it once its
  commit returned. A rolled-back transaction bumps nothing.
- **Other processes on SQLite** (workers, the `consentry` command): a counter in a file beside the
  database (`<database>-<topic>`, owner-only), which the writer bumps when it notes the change and
  again after its commit. A lookup reads it from shared memory.
- **Other processes and nodes on PostgreSQL**: the writer's transaction sends
  `NOTIFY consentry_<topic>`, which PostgreSQL delivers when it commits (and never if it rolls back).
  Each server process listens (`listen`, a task of the app, one connection for every topic) and bumps
  the topic's stamp for each notification. While it is not listening (starting up, its connection
  lost, a command without the app), `stamp()` is None and nothing is served from a cache.

A stamp must be taken before the data is read, and "before" means before the reading transaction's
snapshot: on SQLite a transaction sees the database as it was at its first statement, so a stamp
taken later, after a change committed in between, would vouch for data older than itself. So every
session notes the stamps of this process's signals when its transaction begins (`after_begin`, before
its first statement), and a cache given the session (`StampedCache.stamp(session)`) uses those.

A change made outside `changed` (a raw UPDATE by hand) is not seen: each cache bounds that with its own
time to live.
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
from typing import Any, Final, Generic, TypeVar

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, SessionTransaction

from vault.private_files import private_file

__all__ = ["BRANDS", "LISTINGS", "Signals", "Stamp", "StampedCache", "changed", "listen", "signals_for"]

log = logging.getLogger("consentry.signals")

BRANDS: Final = "brands"  # a brand's row (its secret, redirect URIs, name…)
LISTINGS: Final = "listings"  # an offer entered or left the directory

_CHANGED = "consentry_signals_changed"  # a session's info: the topics it changed
_BEGUN = "consentry_signals_begun"  # a session's info: each signals' stamp when its transaction began
_COUNTER = struct.Struct("<Q")
Stamp = tuple[int, int]
K = TypeVar("K")
V = TypeVar("V")


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


class Signals:
    """What tells this process that something of one topic in one database may have changed."""

    def __init__(self, url: URL, topic: str) -> None:
        self.url = url
        self.topic = topic
        self.channel = f"consentry_{topic}"
        self.postgresql = url.get_backend_name() == "postgresql"
        self._local = 0
        self._bumping = threading.Lock()  # commits in several threads: no bump may be lost
        database = url.database or ""
        self._file = (
            _FileCounter(Path(f"{database}-{topic}"))
            if not self.postgresql and database and database != ":memory:"
            else None
        )
        self._listeners = 0  # on PostgreSQL, the subscriptions of `listen` to this topic now up
        self.retry_seconds = 1.0

    def stamp(self) -> Stamp | None:
        """The current stamp, or None when a change elsewhere could go unnoticed (on PostgreSQL, not
        listening)."""
        if self.postgresql and not self._listeners:
            return None
        return self._local, (self._file.value() if self._file is not None else 0)

    def bump(self) -> None:
        """Something of this topic may have changed: every entry cached so far is stale."""
        with self._bumping:
            self._local += 1
        if self._file is not None:
            self._file.bump()

    def noted(self, session: Session) -> None:
        """`session` flushed a change of this topic: tell other processes through its transaction (on
        PostgreSQL, delivered at its commit) or now (SQLite: a change about to commit)."""
        if self.postgresql:
            session.connection().exec_driver_sql(f"NOTIFY {self.channel}")
        else:
            self.bump()


async def listen(*topics: Signals) -> None:
    """PostgreSQL: subscribe to these topics' changes (of one database) on one connection, and bump a
    topic's stamp for each of its notifications, until cancelled. While the subscription is down,
    their `stamp()` is None, and it is tried again every `retry_seconds` (the least of theirs)."""
    topics = tuple(signals for signals in topics if signals.postgresql)
    if not topics:
        return
    by_channel = {signals.channel: signals for signals in topics}
    conninfo = topics[0].url.set(drivername="postgresql").render_as_string(hide_password=False)
    names = ", ".join(signals.topic for signals in topics)
    failing = False  # said once per outage, not at every try
    while True:
        subscribed = False
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=5
            ) as connection:
                for channel in by_channel:
                    await connection.execute(f"LISTEN {channel}")
                for signals in topics:  # what was kept before the subscription may have missed a change
                    signals.bump()
                    signals._listeners += 1
                subscribed = True
                if failing:
                    log.info("listening for changes of %s again: they are cached again", names)
                    failing = False
                async for notification in connection.notifies():
                    if (told := by_channel.get(notification.channel)) is not None:
                        told.bump()
        except (psycopg.Error, OSError) as exc:
            if not failing:
                log.warning("not listening for changes of %s (%s): they are read from the database "
                            "until it is back", names, type(exc).__name__)  # fmt: skip
            failing = True
        finally:
            if subscribed:
                for signals in topics:
                    signals._listeners -= 1
                    signals.bump()
        await asyncio.sleep(min(signals.retry_seconds for signals in topics))


# Weak: a database's signals live as long as a cache uses them. A session that changes a topic of a
# database no cache of this process uses still bumps the file (another process may cache).
_SIGNALS: weakref.WeakValueDictionary[tuple[str, str], Signals] = weakref.WeakValueDictionary()
_SIGNALS_MADE = threading.Lock()  # two threads must not make two for one database and topic


def signals_for(url: URL, topic: str) -> Signals:
    """The `Signals` of this process for `topic` in the database at `url` (one while any is in use)."""
    key = (url.render_as_string(hide_password=False), topic)
    with _SIGNALS_MADE:
        found = _SIGNALS.get(key)
        if found is None:
            found = _SIGNALS[key] = Signals(url, topic)
        return found


def _signals_of(session: Session, topic: str) -> Signals:
    return signals_for(session.get_bind().engine.url, topic)


def changed(session: Session, topic: str) -> None:
    """`session` changed something of `topic`: told through its transaction now, and in this process
    at its commit."""
    session.info.setdefault(_CHANGED, set()).add(topic)
    _signals_of(session, topic).noted(session)


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, _transaction: SessionTransaction, _connection: Any) -> None:
    # The earliest begin of the transaction wins (a savepoint begins later, inside it).
    if _BEGUN not in session.info:
        with _SIGNALS_MADE:  # a thread making signals meanwhile must not change the dictionary under us
            known = list(_SIGNALS.values())
        session.info[_BEGUN] = {id(signals): signals.stamp() for signals in known}


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost: the next transaction has its own snapshot
        session.info.pop(_BEGUN, None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for topic in sorted(session.info.pop(_CHANGED, ())):
        _signals_of(session, topic).bump()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction, not a savepoint within it: nothing changed
        session.info.pop(_CHANGED, None)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    stamp: tuple[Stamp, ...]
    until: float  # monotonic seconds


class StampedCache(Generic[K, V]):
    """Values by key, served while none of the watched topics may have changed and for at most `ttl`
    seconds; at most `size` of them (beyond that, everything is forgotten rather than ages tracked)."""

    def __init__(
        self,
        *watched: Signals,
        ttl: float = 60.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watched = watched
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: dict[K, _Entry[V]] = {}

    def stamp(self, session: Session | None = None) -> tuple[Stamp, ...] | None:
        """The watched topics' stamps, to take *before* reading what will be cached: those noted when
        `session`'s transaction began (the module says why), or now when no session is given or it
        has not begun; None when a change could go unnoticed (nothing is served or kept then)."""
        begun: dict[int, Stamp | None] = session.info.get(_BEGUN, {}) if session is not None else {}
        stamps = []
        for signals in self.watched:
            stamp = begun[id(signals)] if id(signals) in begun else signals.stamp()
            if stamp is None:
                return None
            stamps.append(stamp)
        return tuple(stamps)

    def get(self, key: K, stamp: tuple[Stamp, ...] | None) -> V | None:
        """The value kept for `key` if it was read under `stamp` (still the current one) and is younger
        than `ttl`; else None."""
        entry = self._entries.get(key)
        if stamp is None or entry is None or entry.stamp != stamp or self._clock() >= entry.until:
            return None
        return entry.value

    def put(self, key: K, value: V, stamp: tuple[Stamp, ...] | None) -> None:
        """Keep `value`, read after `stamp` was taken (nothing is kept under None)."""
        if stamp is None:
            return
        if len(self._entries) >= self.size and key not in self._entries:
            self._entries.clear()
        self._entries[key] = _Entry(value, stamp, self._clock() + self.ttl)

    def find(self, key: K, read: Callable[[], V | None], *, session: Session | None = None) -> V | None:
        """The value for `key`: the kept one while it is still vouched for, else what `read()` gives
        (kept unless None). `read` reads in `session`, if given (else in a transaction it begins)."""
        stamp = self.stamp(session)  # before the read: a change committed meanwhile makes it stale
        found = self.get(key, stamp)
        if found is None:
            found = read()
            if found is not None:
                self.put(key, found, stamp)
        return found
