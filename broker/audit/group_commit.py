"""Group commit: concurrent audited reads share one transaction and one commit.

A profile read is small (a token check, a grant check, a decryption) but its audit entry must be
durable before the read is answered, and a durable commit per read (the head lock, the inserts, an
fsync) costs more than the read. So reads do not commit alone: each request hands its whole read to
the `GroupCommitter` as a *job* and waits. One thread takes every job waiting (up to `max_batch`),
runs them one after another in one transaction, each in its own savepoint, and commits once; the
entries they queued are appended by that commit (`broker.audit.log`: one `append_many`). Only then
is any of them answered. While it commits, the next reads queue up: the busier the broker, the larger
the batches, and one fsync serves them all.

What each read is promised, exactly as when it committed alone:

- **No read without its entry.** A job's result is handed back only after the batch's commit
  returned. If the batch fails (the database went away, the commit failed), every read in it fails
  with 503 `read-not-recorded`, never a 200; nothing of the batch was written.
- **Its own outcome.** A job that raises rolls back to its savepoint, taking its queued entries with
  it, and answers with its own error; the others are unaffected. An error that `keeps_changes` (a
  read refused as value is overdue, which suspends the grant) keeps its savepoint, as the request's
  unit of work would have.
- **A bounded wait.** A reader waits at most `timeout` seconds; a job not started by then is
  withdrawn, one already running may still commit (an entry for a read never answered, never the
  reverse). Either way the reader gets 503.

**Ordering with revocation.** A read and its entry are in the same transaction, as before, so the
argument is unchanged; the transaction is just shared. On PostgreSQL each job locks its grant
`FOR NO KEY UPDATE`, held until the batch commits: a revocation (an UPDATE of that grant) either
committed before the lock was taken, and the read sees it and is refused, or waits for the batch
to commit, and its entry follows the read's. On SQLite the batch transaction begins IMMEDIATE and
holds the database's single write lock from its first statement to its commit: a revocation is
wholly before or wholly after it. Holding several grant locks is new, so deadlocks are avoided by
order: a batch runs its jobs sorted by the grant id their token names (read from the token without
trusting it: a forged hint only changes the order; the lock is taken on the verified grant), so
every batch, in every process, locks grants in ascending order, and the audit head last. (A
transaction elsewhere that locks several grants in another order could still meet a batch in a
deadlock; PostgreSQL breaks it within `deadlock_timeout`, and if the batch is the one rolled back,
its reads get 503 and nothing was recorded.)

Non-read events keep the per-transaction path: they join the request's unit of work.
When the committer is not running (a command, an app without its lifespan), a job runs in the
caller's thread as a batch of one, through the same code.
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

from sqlmodel import Session

from broker.audit.log import REQUEST_ID, drop_pending_since, pending_mark
from broker.db import SessionFactory
from broker.errors import BrokerError, ServiceUnavailable

__all__ = ["GroupCommitter", "ReadNotRecorded"]

T = TypeVar("T")
log = logging.getLogger("consentry.group_commit")


class ReadNotRecorded(ServiceUnavailable):
    """The read could not be recorded in the audit log (in time), so it was not served."""

    slug = "read-not-recorded"


@dataclass(eq=False, slots=True)
class _Job:
    run: Callable[[Session], Any]
    request_id: str | None
    order: str
    future: Future[Any] = field(default_factory=Future)


class GroupCommitter:
    """Runs jobs in shared transactions, one commit per batch; see the module's doc.

    `commits` counts the batches committed (and `jobs` the jobs in them), for benchmarks and logs.
    """

    def __init__(self, *, max_batch: int = 64, timeout: float = 10.0) -> None:
        self.max_batch = max_batch
        self.timeout = timeout
        self.commits = 0
        self.jobs = 0
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sessions: SessionFactory | None = None
        self._users = 0

    @property
    def running(self) -> bool:
        """Whether a committer thread takes the jobs (else they run in the caller's thread)."""
        return self._thread is not None

    @property
    def waiting(self) -> int:
        """Jobs queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    def start(self, sessions: SessionFactory) -> None:
        """Start the committer thread (an app's lifespan does); nested starts share it."""
        with self._cond:
            self._users += 1
            if self._thread is not None:
                return
            self._sessions = sessions
            self._thread = threading.Thread(target=self._loop, name="consentry-group-commit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Run what is queued, then stop the thread (when the last starter stops)."""
        with self._cond:
            self._users -= 1
            thread = self._thread
            if self._users > 0 or thread is None:
                return
            self._thread = None  # new jobs now run in their callers' threads
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
    ) -> T:
        """Run `job(session)` in a batch and return its result once the batch is committed.

        `order` sorts jobs within a batch (the grant a read will lock). Raises the job's own error, or
        `ReadNotRecorded` if the batch failed or did not commit within `timeout` seconds."""
        queued = _Job(job, request_id, order)
        with self._cond:
            threaded = self._thread is not None
            if threaded:
                self._queue.append(queued)
                self._cond.notify()
        if not threaded:
            queued.future.set_running_or_notify_cancel()
            self._execute(sessions, [queued])
        try:
            result: T = queued.future.result(timeout=self.timeout)
        except FutureTimeout:
            started = not queued.future.cancel()
            raise ReadNotRecorded(
                f"the read was not recorded in the audit log within {self.timeout:g} s "
                f"({'its batch is still committing' if started else 'it was withdrawn'}); retry shortly"
            ) from None
        return result

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and self._thread is not None:
                    self._cond.wait()
                if not self._queue:
                    return  # stopped, and everything queued has run
                count = min(len(self._queue), self.max_batch)
                batch = [self._queue.popleft() for _ in range(count)]
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if batch:
                assert self._sessions is not None
                self._execute(self._sessions, batch)

    def _execute(self, sessions: SessionFactory, batch: list[_Job]) -> None:
        """One transaction for the whole batch; each job's outcome is told only after the commit."""
        batch.sort(key=lambda job: job.order)
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with sessions() as session:
                for job in batch:
                    outcomes.append((job, *_attempt(session, job)))
                session.commit()
        except Exception as exc:  # the batch did not commit: none of its reads was recorded
            log.warning("a batch of %d reads failed to commit: %r", len(batch), exc)
            failed = {id(job): error for job, _, error in outcomes if isinstance(error, BrokerError)}
            for job in batch:
                job.future.set_exception(
                    failed.get(id(job))
                    or ReadNotRecorded(
                        "the read could not be recorded in the audit log, so it was not served; retry shortly"
                    )
                )
            return
        self.commits += 1
        self.jobs += len(batch)
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)


def _attempt(session: Session, job: _Job) -> tuple[Any, BaseException | None]:
    """Run one job in its own savepoint: (its result, None) or (None, the error it raised)."""
    session.info[REQUEST_ID] = job.request_id
    mark = pending_mark(session)
    savepoint = session.begin_nested()
    try:
        result = job.run(session)
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
