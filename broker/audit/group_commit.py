"""Group commit: concurrent audited reads share one transaction and one durable commit.

A profile read is small (a token check, a grant check, a decryption) but its audit entry must be
durable before the read is answered, and a durable commit per read (the head lock, the inserts, a
WAL flush) costs more than the read. So one appender thread runs the reads themselves: each read is
a *job*, and a batch runs up to `max_batch` waiting jobs one after another in one transaction, each
in its own savepoint (or writing nothing but its entry, for a job that `isolates` itself), then
appends all their entries and commits once (`broker.audit.log` appends a
transaction's entries as it commits). Only then is any of those reads answered. While a batch
commits, the next reads queue up: the busier the broker, the larger the batches, and one flush
serves them all. A read and its entry share a transaction, as the design asks.

The same on both backends. On SQLite the batch's transaction holds the one write lock from its
first statement; on PostgreSQL each read locks its grant's row, and the batch holds those locks
until its commit: a plain read shares it (`FOR SHARE`: batches of other processes reading the same
grant do not wait), a read that must write takes it for writing (`FOR NO KEY UPDATE`). Either way a
revocation (an UPDATE of the grant) is wholly before the batch, and the read sees it and is refused,
or wholly after it, and is logged after the read. A read that finds, under its shared lock, that it
must write does not take the write lock there (two readers doing so would deadlock): it is
`Rerouted`, and runs in a batch of its own right after its batch committed. Jobs run sorted by the
grant their token names (read without trusting it: a forged hint only changes the order), so two
batches (two processes) lock grants in one order and cannot deadlock on them; the audit head, which
every transaction takes last, is taken only at the commit. Writers that
lock several grants do so in the same id order (account deletion) or skip locked rows (the expiry
sweep). Were a deadlock to happen anyway, PostgreSQL aborts one side: if it is a batch, its reads get
503 and nothing of it was written.

**Reads that look alike look up together.** A job may have a `prefetch`: a function of the batch's
session and the batch's jobs that have the same one, run once, after the jobs are sorted and before
the first of them runs, in the batch's transaction. Profile reads use it to read every plain read's
grant, token family and vault rows in one query (`broker.usecases.reads`): on PostgreSQL a query per
read was a round trip and about 200 µs of the appender's CPU in the driver. A job its prefetch found
nothing for reads alone, as before. A prefetch that fails (the database went away) fails each read
of the batch as its own first statement would have.

Why the reads run in the appender's thread rather than each in its request's: Python runs one
thread at a time, and a read is mostly Python (the ORM, the JWT check). Sixteen threads each doing
five round trips spend the CPU handing the interpreter lock around; one thread running the batch
back to back does not, and the endpoint awaits the batch without a thread of its own (`run_async`).

What each read is promised:

- **No read without its entry.** A read is answered only after the commit holding its entry
  returned. If that commit fails (the database went away), every read waiting on it fails with 503
  `read-not-recorded`, never a 200, and nothing of the batch was written.
- **Its own outcome.** A read that is refused (401, 403) rolls back its savepoint alone, with its
  entry: the others are unaffected. An error that `keeps_changes` (a read refused as value is
  overdue, which suspends the grant) keeps what it changed, as a request's unit of work would.
- **A bounded wait.** A reader waits at most `timeout` seconds, then gets 503; a batch already
  committing may still commit its entry (an entry for a read never answered, never the reverse).

When the committer is not running (a command, an app without its lifespan), a read is a batch of
one in the caller's thread, through the same code.

**On the event loop** (`on_loop`: on SQLite, when `Settings.request_thread_count` is 0, its
default). A read awaited from the loop (`run_async`) is batched there instead, and its batch's work
runs on the loop too: the appender thread and the loop would otherwise trade the interpreter lock at
every driver call, as `broker.web.threads` measured for requests. Only the two steps that may wait
leave the loop, once per batch: the BEGIN, which waits for SQLite's write lock (held by another
process's writer, or another writer of this one), and the commit, which waits for the disk. Once the
batch's transaction holds the write lock, none of its reads waits for a lock. The promises above hold
unchanged: the same batch code runs, a read is answered after its commit returned, and the wait is
bounded by `timeout`. Reads run from threads (`run`) still go through the appender thread, and the
two take turns at the write lock like any two writers.

Never on PostgreSQL: there a read in a batch may wait for a grant's row lock held by a writer (a
revocation) whose commit is a thread call that FastAPI schedules from the loop, so the loop would wait
for itself (the revocation race in `tests/broker/audit/test_group_commit.py` hung that way); and each
statement is a round trip that a thread lets the loop spend on other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlmodel import Session

from broker.audit.log import REQUEST_ID, drop_pending_since, pending_mark
from broker.db import SessionFactory
from broker.errors import BrokerError, ReadNotRecorded

__all__ = ["GroupCommitter", "Rerouted", "isolated"]

T = TypeVar("T")
log = logging.getLogger("consentry.group_commit")


class Rerouted(Exception):
    """Raised by a job that wrote nothing yet to run `job` instead, in a batch right after its own
    commits (and so after the locks its batch took are released): a read that took a shared lock on
    its grant and finds it must write there goes on in a transaction that takes the write lock
    first, as taking it under its own shared lock could deadlock with another reader doing the same."""

    def __init__(self, job: Callable[[Session], Any]) -> None:
        super().__init__("rerouted to a batch of its own")
        self.job = job


@dataclass(eq=False, slots=True)
class _Item:
    """A read waiting in the queue: its job, and the future its caller waits on."""

    job: Callable[[Session], Any]
    request_id: str | None = None
    order: str = ""
    isolates: bool = False
    future: Future[Any] = field(default_factory=Future)


@dataclass(eq=False, slots=True)
class _LoopQueue:
    """The reads waiting on one event loop (`on_loop`), each with the loop's future its caller awaits,
    and the task that runs their batches while there are any."""

    pending: deque[tuple[_Item, asyncio.Future[Any]]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class GroupCommitter:
    """One appender thread running concurrent reads in shared commits; see the module's doc.

    `commits` counts the batches committed (and `reads` the reads in them), `taken` the reads taken
    from the queue into a batch: for benchmarks, logs and tests. `on_loop`: batch the reads awaited
    from an event loop on that loop (see the module's doc).
    """

    def __init__(self, *, max_batch: int = 64, timeout: float = 10.0, on_loop: bool = False) -> None:
        self.max_batch = max_batch
        self.timeout = timeout
        self.on_loop = on_loop
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue] = (
            weakref.WeakKeyDictionary()
        )
        self.commits = 0
        self.reads = 0
        self.taken = 0
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sessions: SessionFactory | None = None
        self._users = 0

    @property
    def running(self) -> bool:
        """Whether an appender thread takes the reads (else each is a batch of one in its caller's thread)."""
        return self._thread is not None

    @property
    def waiting(self) -> int:
        """Reads queued and not yet taken into a batch (by the appender thread or on a loop)."""
        with self._cond:
            return len(self._queue) + sum(len(queue.pending) for queue in list(self._loops.values()))

    def start(self, sessions: SessionFactory) -> None:
        """Start the appender thread (an app's lifespan does); nested starts share it."""
        with self._cond:
            self._users += 1
            if self._thread is not None:
                return
            self._sessions = sessions
            self._thread = threading.Thread(target=self._loop, name="consentry-group-commit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread (when the last starter stops)."""
        with self._cond:
            self._users -= 1
            thread = self._thread
            if self._users > 0 or thread is None:
                return
            self._thread = None  # reads from now on are batches of one in their callers' threads
            self._cond.notify_all()
        thread.join(timeout=self.timeout + 5)
        if thread.is_alive():
            log.error("the group-commit thread did not stop within %.0f s", self.timeout + 5)

    def run(
        self,
        job: Callable[[Session], T],
        *,
        sessions: SessionFactory,
        request_id: str | None,
        order: str = "",
        isolates: bool = False,
    ) -> T:
        """Run the read `job(session)` in a batch and return its result once the batch is committed.

        `order` sorts the jobs of a batch (the grant a read will lock). The job runs in a savepoint of
        its own, unless it `isolates` itself: it then writes nothing but its audit entries, or does so
        inside `isolated` (a savepoint costs about as much as a query, and a plain read needs none).
        Raises the job's own error, or `ReadNotRecorded` if the batch's commit failed or did not
        return within `timeout`."""
        item = _Item(job, request_id, order, isolates)
        if not self._submit(item):
            item.future.set_running_or_notify_cancel()
            self._process(sessions, [item])
        result: T = self._outcome(item, wait=lambda f: f.result(timeout=self.timeout))
        return result

    async def run_async(
        self,
        job: Callable[[Session], T],
        *,
        sessions: SessionFactory,
        request_id: str | None,
        order: str = "",
        isolates: bool = False,
    ) -> T:
        """`run`, awaited from the event loop: the caller needs no thread of its own while it waits
        (without the appender thread, the batch of one runs in a worker thread). With `on_loop`, the
        batch runs on the loop itself."""
        item = _Item(job, request_id, order, isolates)
        if self.on_loop and self._sessions is not None and self.running:
            on_loop: T = await self._run_on_loop(item, self._sessions)
            return on_loop
        if not self._submit(item):
            return await asyncio.to_thread(
                self.run, job, sessions=sessions, request_id=request_id, order=order, isolates=isolates
            )
        with contextlib.suppress(TimeoutError):  # then `_outcome` cancels it, or finds it started
            result: T = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(item.future)), self.timeout)
            return result
        late: T = self._outcome(item, wait=lambda f: f.result(timeout=0))
        return late

    def _submit(self, item: _Item) -> bool:
        """Queue `item` for the appender thread; False when there is none."""
        with self._cond:
            if self._thread is None:
                return False
            self._queue.append(item)
            self._cond.notify()
            return True

    def _outcome(self, item: _Item, wait: Callable[[Future[Any]], Any]) -> Any:
        try:
            return wait(item.future)
        except FutureTimeout:
            raise self._late(item) from None

    def _late(self, item: _Item) -> ReadNotRecorded:
        """Withdraw `item` if no batch took it yet; the error its caller gets either way."""
        started = not item.future.cancel()
        return ReadNotRecorded(
            f"the read was not recorded in the audit log within {self.timeout:g} s "
            f"({'its batch is still committing' if started else 'it was withdrawn'}); retry shortly"
        )

    async def _run_on_loop(self, item: _Item, sessions: SessionFactory) -> Any:
        """Queue `item` on the running loop, start the loop's batches if none run, and await its
        outcome, at most `timeout` seconds."""
        loop = asyncio.get_running_loop()
        queue = self._loops.get(loop)
        if queue is None:
            queue = self._loops[loop] = _LoopQueue()
        waiter: asyncio.Future[Any] = loop.create_future()
        queue.pending.append((item, waiter))
        if queue.task is None:
            queue.task = loop.create_task(self._drain(queue, sessions))
        timer = loop.call_later(self.timeout, self._expire, item, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _expire(self, item: _Item, waiter: asyncio.Future[Any]) -> None:
        if not waiter.done():
            waiter.set_exception(self._late(item))

    async def _drain(self, queue: _LoopQueue, sessions: SessionFactory) -> None:
        """Run the loop's waiting reads in batches until none wait; answer each once its batch is
        committed (or failed)."""
        taken: list[tuple[_Item, asyncio.Future[Any]]] = []
        try:
            while queue.pending:
                count = min(len(queue.pending), self.max_batch)
                taken = [queue.pending.popleft() for _ in range(count)]
                self.taken += count
                batch = [item for item, _ in taken if item.future.set_running_or_notify_cancel()]
                if batch:
                    await self._process_on_loop(sessions, batch)
                for item, waiter in taken:
                    if item.future.done() and not waiter.done():  # else it expired, or its caller left
                        error = item.future.exception()
                        waiter.set_exception(error) if error else waiter.set_result(item.future.result())
                taken = []
        except BaseException:  # cancelled with the loop: no read is served unless its commit returned
            for _, waiter in [*taken, *queue.pending]:
                if not waiter.done():
                    waiter.set_exception(
                        ReadNotRecorded("the server stopped before the read could be served")
                    )
            queue.pending.clear()
            raise
        finally:
            queue.task = None

    async def drained(self) -> None:
        """Wait until the running loop's batches are done (an app's shutdown, before `stop`)."""
        queue = self._loops.get(asyncio.get_running_loop())
        while queue is not None and queue.task is not None:
            await asyncio.shield(queue.task)

    async def _process_on_loop(self, sessions: SessionFactory, batch: list[_Item]) -> None:
        """`_process`, on the loop: the BEGIN (a wait for the write lock) and the commit (a wait for
        the disk) in a worker thread, the reads themselves on the loop."""
        outcomes: list[tuple[_Item, Any, BaseException | None]] = []
        try:
            with sessions() as session:
                try:
                    await _in_thread(session.connection)
                except Exception as exc:  # no transaction (the lock not had in time): nothing was read
                    for item in batch:  # each read fails as its own first statement would have (503)
                        item.future.set_exception(exc)
                    return
                batch.sort(key=lambda item: item.order)
                if not _prefetched(session, batch):
                    return
                outcomes = [(item, *_attempt(session, item)) for item in batch]
                session.flush()
                await _in_thread(session.commit)
        except Exception as exc:  # the batch did not commit: none of its reads was recorded
            self._failed(batch, outcomes, exc)
            return
        later = self._committed(batch, outcomes)
        if later:  # in a transaction of their own, after the batch's: see `Rerouted`
            await self._process_on_loop(sessions, later)

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
        """Run a batch's reads and commit; tell each read its outcome only after the commit returned,
        or run the job it was `Rerouted` to in a batch after this one."""
        outcomes: list[tuple[_Item, Any, BaseException | None]] = []
        try:
            with sessions() as session:
                batch.sort(key=lambda item: item.order)
                if not _prefetched(session, batch):
                    return
                outcomes = [(item, *_attempt(session, item)) for item in batch]
                session.commit()
        except Exception as exc:  # the batch did not commit: none of its reads was recorded
            self._failed(batch, outcomes, exc)
            return
        later = self._committed(batch, outcomes)
        if later:  # in a transaction of their own, after the batch's: see `Rerouted`
            self._process(sessions, later)

    def _failed(
        self, batch: list[_Item], outcomes: list[tuple[_Item, Any, BaseException | None]], exc: Exception
    ) -> None:
        """The batch did not commit: a read refused in it gets its refusal, every other one 503."""
        log.warning("a batch of %d reads failed to commit: %r", len(batch), exc)
        refused = {id(item): error for item, _, error in outcomes if isinstance(error, BrokerError)}
        for item in batch:
            item.future.set_exception(
                refused.get(id(item))
                or ReadNotRecorded(
                    "the read could not be recorded in the audit log, so it was not served; retry shortly"
                )
            )

    def _committed(
        self, batch: list[_Item], outcomes: list[tuple[_Item, Any, BaseException | None]]
    ) -> list[_Item]:
        """The batch committed: tell each read its outcome; the reads `Rerouted` to a batch of their
        own, still to run."""
        self.commits += 1
        self.reads += len(batch)
        later: list[_Item] = []
        for item, result, error in outcomes:
            if isinstance(error, Rerouted):
                later.append(_Item(error.job, item.request_id, item.order, item.isolates, item.future))
            elif error is None:
                item.future.set_result(result)
            else:
                item.future.set_exception(error)
        return later


async def _in_thread(call: Callable[[], object]) -> None:
    """`call()` in a worker thread, awaited. Cancelled meanwhile (the loop shutting down), it still
    waits for the call to return before it raises: the batch's session is never closed under a BEGIN
    or a commit still running in the thread."""
    running = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await asyncio.wait([running])
        raise


def _prefetched(session: Session, batch: list[_Item]) -> bool:
    """Run each `prefetch` of the batch's jobs once, with the jobs (in the batch's order) that have it.
    False if one failed (the database went away): then no read ran, and each has failed as its own
    first statement would have (a 503 `unavailable`), and nothing was written."""
    shared: dict[Callable[[Session, list[Any]], None], list[Any]] = {}
    for item in batch:
        prefetch = getattr(item.job, "prefetch", None)
        if prefetch is not None:
            shared.setdefault(prefetch, []).append(item.job)
    try:
        for prefetch, jobs in shared.items():
            prefetch(session, jobs)
    except Exception as exc:
        for item in batch:
            item.future.set_exception(exc)
        return False
    return True


def _attempt(session: Session, item: _Item) -> tuple[Any, BaseException | None]:
    """Run one read of a batch: (its result, None) or (None, its error). Its writes are its own: in a
    savepoint (`isolated`), or, for a job that isolates whatever it writes itself (`isolates`), none
    but its audit entries, which its failure drops."""
    session.info[REQUEST_ID] = item.request_id
    mark = pending_mark(session)
    try:
        if item.isolates:
            return item.job(session), None
        with isolated(session):
            return item.job(session), None
    except Exception as exc:  # a refusal, or this read's own failure (a bug): not the batch's
        if not (isinstance(exc, BrokerError) and exc.keeps_changes):
            drop_pending_since(session, mark)
        return None, exc


@contextlib.contextmanager
def isolated(session: Session) -> Iterator[None]:
    """Run the block in a savepoint of `session`'s transaction: kept when the block ends, or when it
    raises a `BrokerError` that `keeps_changes` (a read refused as value is overdue suspends the
    grant); rolled back with the entries it queued when it raises anything else."""
    mark = pending_mark(session)
    savepoint = session.begin_nested()
    try:
        yield
    except BrokerError as exc:
        if exc.keeps_changes:
            savepoint.commit()
        else:
            savepoint.rollback()
            drop_pending_since(session, mark)
        raise
    except Exception:
        savepoint.rollback()
        drop_pending_since(session, mark)
        raise
    savepoint.commit()
