"""Group commit: concurrent audited reads share one durable commit of their audit entries.

A profile read is small (a token check, a grant check, a decryption) but its audit entry must be
durable before the read is answered, and a durable commit per read (the head lock, the inserts, a
WAL flush) costs more than the read. So reads hand their entries to one appender thread, which
appends every entry waiting (from up to `max_batch` reads) with one `append_many` in one
transaction and commits once; only then is any of those reads answered. While it commits, the next
reads queue up: the busier the broker, the larger the batches, and one flush serves them all.

Two ways to run a read, by backend, each as strong as a read committing alone:

- **PostgreSQL (own transactions).** Each read runs in its request thread, in its own transaction,
  in parallel with the others (their round trips overlap). It locks its grant `FOR SHARE` (reads
  of one grant share it; a read that updates the grant, the first or one whose value check is due,
  takes `FOR NO KEY UPDATE` from the start, see `Retry`), checks and decrypts, then hands its entry
  to the appender and waits, *still holding the lock*; it commits (releasing the lock) only after
  its entry is durable. A revocation (an UPDATE of that grant, which conflicts with both locks)
  either committed before the lock was taken, and the read sees it and is refused, or waits for
  the lock, so it appends its entry after the read's. No deadlock: a read holds one row lock and
  never upgrades it; the appender takes only the audit head lock, which every transaction takes
  last, so its holder never waits for a grant.
- **SQLite (one shared transaction).** There is one writer, and a read's transaction holds the
  write lock (BEGIN IMMEDIATE) from its first statement, so it cannot wait for another writer. So
  the appender runs the reads themselves: each read is a *job*, and a batch runs its jobs one after
  another in one transaction, each in its own savepoint, and commits once (its entries appended by
  that commit, `broker.audit.log`). A read and its entry share a transaction, as before; the write
  lock, held from the batch's first statement to its commit, puts a revocation wholly before or
  wholly after it. (Jobs are run sorted by the grant their token names, read without trusting it:
  a forged hint only changes the order.)

What each read is promised, both ways:

- **No read without its entry.** A read is answered only after the commit holding its entry
  returned. If that commit fails (the database went away), every read waiting on it fails with 503
  `read-not-recorded`, never a 200, and nothing of the batch was written.
- **Its own outcome.** A read that is refused (401, 403) rolls back alone, with its entry: the
  others are unaffected. An error that `keeps_changes` (a read refused as value is overdue, which
  suspends the grant) commits what it changed, as a request's unit of work would.
- **A bounded wait.** A reader waits at most `timeout` seconds, then gets 503; a batch already
  committing may still commit its entry (an entry for a read never answered, never the reverse).

An entry some work waits on (`when_appended`) is never handed over: it commits with its own
transaction. Non-read events keep that per-transaction path: they join the request's unit of work.
When the committer is not running (a command, an app without its lifespan), a read runs in the
caller's thread and commits alone, through the same code.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlmodel import Session

from broker.audit import tree
from broker.audit.log import REQUEST_ID, QueuedEntry, drop_pending_since, pending_mark, take_pending
from broker.db import SessionFactory, create_db_engine, session_factory
from broker.errors import BrokerError, ServiceUnavailable

__all__ = ["GroupCommitter", "ReadNotRecorded", "Retry"]

T = TypeVar("T")
log = logging.getLogger("consentry.group_commit")
_WROTE = "consentry_wrote"  # key in `Session.info`: the session flushed changes


@event.listens_for(Session, "after_flush")
def _note_write(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


class ReadNotRecorded(ServiceUnavailable):
    """The read could not be recorded in the audit log (in time), so it was not served."""

    slug = "read-not-recorded"


class Retry(Exception):
    """Raised by a job to be run again from the start, in a fresh transaction (or savepoint): what it
    did is rolled back. A job must not raise it twice in a row (it is retried once)."""


@dataclass(eq=False, slots=True)
class _Item:
    """What waits in the queue: a whole read (SQLite) or the entries of one read (PostgreSQL)."""

    job: Callable[[Session], Any] | None = None
    request_id: str | None = None
    order: str = ""
    entries: list[QueuedEntry] | None = None
    future: Future[Any] = field(default_factory=Future)


class GroupCommitter:
    """One appender thread committing the audit entries of concurrent reads; see the module's doc.

    `commits` counts the batches committed (and `reads` the reads in them), `taken` the reads taken
    from the queue into a batch: for benchmarks, logs and tests.
    """

    def __init__(self, *, max_batch: int = 64, timeout: float = 10.0) -> None:
        self.max_batch = max_batch
        self.timeout = timeout
        self.commits = 0
        self.reads = 0
        self.taken = 0
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sessions: SessionFactory | None = None
        self._engine: Engine | None = None  # the appender's own pool, on PostgreSQL
        self._shared = False  # SQLite: the reads themselves run in the batch's transaction
        self._users = 0

    @property
    def running(self) -> bool:
        """Whether an appender thread takes the reads (else each commits alone in its caller's thread)."""
        return self._thread is not None

    @property
    def waiting(self) -> int:
        """Reads queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    def start(self, sessions: SessionFactory) -> None:
        """Start the appender thread (an app's lifespan does); nested starts share it."""
        with self._cond:
            self._users += 1
            if self._thread is not None:
                return
            with sessions() as probe:
                bind = probe.get_bind()
            self._shared, self._sessions = bind.dialect.name == "sqlite", sessions
            if not self._shared and isinstance(bind, Engine):
                # Reads wait for the appender holding pool connections: it must never wait for the pool.
                self._engine = create_db_engine(bind.url.render_as_string(hide_password=False), pool_size=1)
                self._sessions = session_factory(self._engine)
            self._thread = threading.Thread(target=self._loop, name="consentry-group-commit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread (when the last starter stops)."""
        with self._cond:
            self._users -= 1
            thread = self._thread
            if self._users > 0 or thread is None:
                return
            self._thread = None  # reads from now on commit alone in their callers' threads
            self._cond.notify_all()
        thread.join(timeout=self.timeout + 5)
        if thread.is_alive():
            log.error("the group-commit thread did not stop within %.0f s", self.timeout + 5)
        elif self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def run(
        self,
        job: Callable[[Session], T],
        *,
        sessions: SessionFactory,
        request_id: str | None,
        order: str = "",
    ) -> T:
        """Run the read `job(session)` and return its result once its entries are durably committed.

        `order` sorts the jobs of a shared batch (the grant a read will lock). Raises the job's own
        error, or `ReadNotRecorded` if its entries' commit failed or did not return within `timeout`."""
        if self.running and not self._shared:
            return self._run_own(job, sessions, request_id)
        item = _Item(job, request_id, order)
        self._submit(sessions, item)
        result: T = self._wait(item)
        return result

    def _run_own(self, job: Callable[[Session], T], sessions: SessionFactory, request_id: str | None) -> T:
        """The read in its own transaction, which it ends only once its entries are committed."""
        with sessions() as session:
            session.info[REQUEST_ID] = request_id
            try:
                try:
                    result = job(session)
                except Retry:
                    session.rollback()
                    result = job(session)
            except BrokerError as exc:
                if exc.keeps_changes:
                    session.commit()
                raise
            entries = take_pending(session)
            if entries:
                item = _Item(entries=entries)
                self._submit(sessions, item)
                self._wait(item)
            # Ending the transaction releases the grant lock. A read that wrote (a first read) commits;
            # one that only read rolls back: its row lock gave it a transaction id, and committing
            # that would flush the WAL once per read, the very cost group commit saves. (Unless the
            # appender has no pool of its own: then it may share this session's connection, as the
            # tests' single-connection runtime does, and this transaction holds the append.)
            wrote = session.info.pop(_WROTE, False) or session.new or session.dirty or session.deleted
            if wrote or self._engine is None:
                session.commit()
            else:
                session.rollback()
        return result

    def _submit(self, sessions: SessionFactory, item: _Item) -> None:
        with self._cond:
            threaded = self._thread is not None
            if threaded:
                self._queue.append(item)
                self._cond.notify()
        if not threaded:
            item.future.set_running_or_notify_cancel()
            self._process(sessions, [item])

    def _wait(self, item: _Item) -> Any:
        try:
            return item.future.result(timeout=self.timeout)
        except FutureTimeout:
            started = not item.future.cancel()
            raise ReadNotRecorded(
                f"the read was not recorded in the audit log within {self.timeout:g} s "
                f"({'its batch is still committing' if started else 'it was withdrawn'}); retry shortly"
            ) from None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and self._thread is not None:
                    self._cond.wait()
                if not self._queue:
                    return  # stopped, and everything queued has been committed
                count = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(count)]
                self.taken += count
            batch = [item for item in batch if item.future.set_running_or_notify_cancel()]
            if batch:
                assert self._sessions is not None
                self._process(self._sessions, batch)

    def _process(self, sessions: SessionFactory, batch: list[_Item]) -> None:
        """Commit a batch; tell each read its outcome only after the commit returned."""
        outcomes: list[tuple[_Item, Any, BaseException | None]] = []
        try:
            with sessions() as session:
                if batch[0].entries is not None:
                    _append(session, batch)
                    outcomes = [(item, None, None) for item in batch]
                else:
                    batch.sort(key=lambda item: item.order)
                    outcomes = [(item, *_attempt(session, item)) for item in batch]
                session.commit()
        except Exception as exc:  # the batch did not commit: none of its reads was recorded
            log.warning("a batch of %d reads failed to commit: %r", len(batch), exc)
            refused = {id(item): error for item, _, error in outcomes if isinstance(error, BrokerError)}
            for item in batch:
                item.future.set_exception(
                    refused.get(id(item))
                    or ReadNotRecorded(
                        "the read could not be recorded in the audit log, so it was not served; retry shortly"
                    )
                )
            return
        self.commits += 1
        self.reads += len(batch)
        for item, result, error in outcomes:
            if error is None:
                item.future.set_result(result)
            else:
                item.future.set_exception(error)


def _append(session: Session, batch: list[_Item]) -> None:
    """Append the entries handed over by a batch of reads, in the order they came."""
    entries = [queued for item in batch for queued in item.entries or []]
    indices = tree.append_many(session, [(q.entry, q.lookup) for q in entries], at=entries[-1].at)
    for queued, index in zip(entries, indices, strict=True):
        queued.index = index


def _attempt(session: Session, item: _Item) -> tuple[Any, BaseException | None]:
    """Run one read of a shared batch in its own savepoint: (its result, None) or (None, its error)."""
    assert item.job is not None
    session.info[REQUEST_ID] = item.request_id
    mark = pending_mark(session)
    savepoint = session.begin_nested()
    try:
        try:
            result = item.job(session)
        except Retry:
            savepoint.rollback()
            drop_pending_since(session, mark)
            savepoint = session.begin_nested()
            result = item.job(session)
    except BrokerError as exc:
        if exc.keeps_changes:
            savepoint.commit()
        else:
            savepoint.rollback()
            drop_pending_since(session, mark)
        return None, exc
    except Exception as exc:  # this read's own failure (a bug, a query that failed): not the batch's
        savepoint.rollback()
        drop_pending_since(session, mark)
        return None, exc
    savepoint.commit()
    return result, None
