"""A process's writers to SQLite take turns, first come, first served (`broker.db._Writers`), and the
one whose turn it is waits for other processes' writers by trying every 0.5 ms
(`broker.db._begin_immediate`), instead of meeting in SQLite's busy handler, which sleeps up to 100 ms
between tries and let a writer that begins again at once (the audit group committer, in this process
or another) keep the lock from a request's write for seconds."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from support.core import PG_URL

from broker.db import READ_ONLY, create_db_engine

pytestmark = pytest.mark.skipif(PG_URL is not None, reason="SQLite's write lock; PostgreSQL queues row locks")


def make_engine(tmp_path: Path, timeout: float) -> Engine:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}", timeout=timeout)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(tmp_path, timeout=10)
    yield engine
    engine.dispose()


@contextlib.contextmanager
def write_held_elsewhere(engine: Engine) -> Iterator[None]:
    """Another thread of this process holds a write transaction (its turn) until the block ends."""
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (0)"))
            held.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        thread.join()


def write(engine: Engine, n: int = 0, hold: float = 0.0) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        time.sleep(hold)


def timed_writes(engine: Engine, count: int = 10) -> list[float]:
    """Seconds each of `count` writes, one after another, took to begin, write and commit."""
    waits = []
    for _ in range(count):
        began = time.perf_counter()
        write(engine, n=1)
        waits.append(time.perf_counter() - began)
    return waits


def test_a_write_gets_its_turn_beside_a_writer_that_begins_again_at_once(engine: Engine) -> None:
    stop = threading.Event()

    def hog() -> None:  # as the group committer does under load: batch after batch, no pause
        with engine.connect() as conn:
            while not stop.is_set():
                conn.begin()
                conn.execute(text("INSERT INTO t VALUES (0)"))
                time.sleep(0.005)
                conn.commit()

    thread = threading.Thread(target=hog)
    thread.start()
    try:
        time.sleep(0.1)
        waits = timed_writes(engine)
    finally:
        stop.set()
        thread.join()
    # One of the hog's transactions at most (5 ms), and scheduling. In SQLite's busy handler some of
    # these writes waited 1 to 7 s.
    assert max(waits) < 0.25, waits


def test_turns_go_in_the_order_writers_asked(engine: Engine) -> None:
    order: list[int] = []

    def writer(n: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            order.append(n)

    threads = []
    with write_held_elsewhere(engine):
        for n in range(1, 6):
            threads.append(threading.Thread(target=writer, args=(n,)))
            threads[-1].start()
            time.sleep(0.02)  # each asks after the one before
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    assert order == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("ending", ["commit", "rollback", "error", "close", "invalidate"])
def test_every_way_a_transaction_ends_gives_the_next_writer_its_turn(engine: Engine, ending: str) -> None:
    conn = engine.connect()
    conn.begin()
    conn.execute(text("INSERT INTO t VALUES (1)"))
    if ending == "commit":
        conn.commit()
    elif ending == "rollback":
        conn.rollback()
    elif ending == "error":
        with pytest.raises(OperationalError):
            conn.execute(text("INSERT INTO no_such_table VALUES (1)"))
        conn.rollback()
    elif ending == "invalidate":
        conn.invalidate()
    conn.close()  # back to the pool (rolled back if still open), or gone
    other = threading.Thread(target=write, args=(engine, 2))
    other.start()
    other.join(timeout=2)
    assert not other.is_alive(), f"the next writer never got its turn after {ending}"


def test_a_turn_that_does_not_come_within_the_timeout_is_refused_as_sqlite_would(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, timeout=0.2)
    try:
        with write_held_elsewhere(engine):
            began = time.perf_counter()
            with pytest.raises(OperationalError, match="database is locked"):
                write(engine, n=1)
            assert time.perf_counter() - began < 2
        write(engine, n=3)  # the refused writer left no turn behind
    finally:
        engine.dispose()


def test_readers_take_no_turn(engine: Engine) -> None:
    with write_held_elsewhere(engine):
        began = time.perf_counter()
        with engine.execution_options(**{READ_ONLY: True}).connect() as conn, conn.begin():
            conn.execute(text("SELECT count(*) FROM t")).scalar_one()
        assert time.perf_counter() - began < 0.5  # beside the writer, in WAL


HOG = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
end = time.monotonic() + float(sys.argv[2])
print("ready", flush=True)
while time.monotonic() < end:  # another process's group committer: batch after batch
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO t VALUES (0)")
    time.sleep(0.005)
    db.execute("COMMIT")
    time.sleep(0.0002)  # taking its next batch from its queue
"""


def test_a_write_gets_its_turn_beside_another_process_s_writer(engine: Engine, tmp_path: Path) -> None:
    command = [sys.executable, "-c", HOG, str(tmp_path / "w.db"), "2"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as hog:
        assert hog.stdout is not None and hog.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        waits = timed_writes(engine)
    # A few of the other process's transactions (5 ms each) at most. In SQLite's busy handler, which
    # sleeps up to 100 ms between tries, the other process took the lock back before it woke.
    assert max(waits) < 0.25, waits
