"""`consentry serve --workers 2` on SQLite (and on PostgreSQL when the suite runs there): two worker
processes on one address serve as one broker, share the connections, and a SIGTERM lets the reads in
flight finish.

Customers consent and brands read concurrently through one server of two workers (each on a socket of
its own, the kernel spreading connections over both, `broker.serve`): every request succeeds, each
answered read has exactly one `profile.read` entry, and the log verifies. Then readers keep reading
while the server is stopped with SIGTERM: every read gets its 200 or no answer at all (never an
error), and every read answered is in the log, as the group committer drains before each worker exits.

Connections opened at once are spread over the workers (uvicorn's shared socket gave one worker
nearly all of them); a worker killed is replaced; workers whose supervisor is killed stop by themselves.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from support.core import running_server
from support.resilience import (
    BROKEN,
    Brand,
    Outcomes,
    consent_to,
    set_up_brand,
    sign_up_customer,
    stored_log,
    verify_audit_log,
)

CUSTOMERS = 4
READS = 8  # per customer, while the others consent and read


def _consent_and_read(
    url: str, brand: Brand, email: str, outcomes: Outcomes, tokens: list[str], failures: list[str]
) -> None:
    try:
        access = consent_to(url, url, brand, email)
        tokens.append(access)
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(READS):
                status = outcomes.read(http, access)
                assert status == 200, f"read {i}: {status}"
    except Exception as exc:  # reported by the test, with the customer it happened to
        failures.append(f"{email}: {exc!r}")


def _read_until_refused(url: str, access: str, outcomes: Outcomes, stop: threading.Event) -> None:
    while not stop.is_set():
        with httpx.Client(base_url=url, timeout=30) as http:
            if outcomes.read(http, access) == BROKEN:
                return


@pytest.mark.slow  # ~15 s idle: a server of two workers, four customers' consents, a shutdown under load
def test_two_workers_serve_as_one_broker_and_drain_on_sigterm(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir, url = tmp_path / "var", fresh_database_url
    log_path = tmp_path / "server.log"
    with running_server(data_dir, url, log_path, workers=2) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            brand = set_up_brand(url, http)
            emails = [f"customer{n}@example.org" for n in range(CUSTOMERS)]
            for email in emails:
                sign_up_customer(http, data_dir, email)
        outcomes, tokens, failures = Outcomes(), list[str](), list[str]()
        threads = [
            threading.Thread(
                target=_consent_and_read, args=(server.url, brand, e, outcomes, tokens, failures)
            )
            for e in emails
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        assert len(outcomes.with_status(200)) == CUSTOMERS * READS

        # SIGTERM while reads are in flight: each is answered, or refused before it began.
        stop = threading.Event()
        readers = [
            threading.Thread(target=_read_until_refused, args=(server.url, access, outcomes, stop))
            for access in tokens
        ]
        for reader in readers:
            reader.start()
        time.sleep(1.0)
        server.stop()
        stop.set()
        for reader in readers:
            reader.join(timeout=30)
        assert server.process is not None and server.process.returncode == 0

    log_text = log_path.read_text()
    assert len(set(re.findall(r"Started server process \[(\d+)\]", log_text))) == 2, log_text[-2000:]
    assert outcomes.problems == {}, "a read got an error instead of its answer"
    answered = outcomes.with_status(200)
    assert set(outcomes.statuses.values()) <= {200, BROKEN}
    assert len(answered) > CUSTOMERS * READS  # reads went on until the shutdown
    log = stored_log(url)
    assert log.indices == list(range(log.head_size)), "the log has a gap or a duplicate index"
    assert set(log.read_request_ids) >= answered, "a read was answered without its audit entry"
    assert [rid for rid, count in log.read_request_ids.items() if count > 1] == []
    assert log.kinds["grant.created"] == CUSTOMERS
    report = verify_audit_log(data_dir, url)
    assert report["tree_size"] == log.head_size


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the command's name
                    found.add(int(entry))
    return found


def _connections_per_process(port: int, pids: set[int], *, state: str = "01") -> Counter[int]:
    """How many sockets on local `port` in `state` (01 established, 0A listening) each of `pids` holds
    (Linux's /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(fields[9])
    held: Counter[int] = Counter()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        held[pid] += 1
    return held


def _open_connections(port: int, count: int) -> list[socket.socket]:
    """`count` keep-alive connections, each answered once (so that a worker has accepted it)."""
    opened = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    for conn in opened:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    for conn in opened:
        assert conn.recv(65536).startswith(b"HTTP/1.1 200"), "a connection was not answered"
    return opened


@pytest.mark.slow  # ~10 s: two workers started twice over
@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="counts connections through Linux's /proc")
def test_workers_share_connections_are_replaced_and_outlive_no_supervisor(
    tmp_path: Path, fresh_database_url: str
) -> None:
    with running_server(tmp_path / "var", fresh_database_url, tmp_path / "server.log", workers=2) as server:
        assert server.process is not None
        supervisor = server.process.pid
        deadline = time.monotonic() + 30
        while len(_connections_per_process(server.port, _children(supervisor), state="0A")) < 2:
            assert time.monotonic() < deadline, "the second worker never listened"  # /healthz: the first
            time.sleep(0.1)
        opened = _open_connections(server.port, 64)
        try:
            held = _connections_per_process(server.port, _children(supervisor))
        finally:
            for conn in opened:
                conn.close()
        # Binomially about 32 each; one shared socket gave one worker nearly all of them (29 of 32).
        assert len(held) == 2 and min(held.values()) >= 12 and sum(held.values()) == 64, held
        workers = set(held)

        victim, before = min(workers), _children(supervisor)  # a worker dies: another takes its place
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _children(supervisor) - before:
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.2)
        (replacement,) = _children(supervisor) - before
        while not _serves(server.port, replacement):  # once started, it takes its share of connections
            assert time.monotonic() < deadline, "the replacement worker never took a connection"
            time.sleep(0.2)
        survivors = (workers - {victim}) | {replacement}

        server.kill()  # the supervisor dies: its workers stop by themselves and free the port
        deadline = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid) for pid in survivors):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.2)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _serves(port: int, pid: int) -> bool:
    """Whether `pid` takes one of 16 fresh connections (the kernel hashes each to a worker)."""
    opened = _open_connections(port, 16)
    try:
        return _connections_per_process(port, {pid})[pid] > 0
    finally:
        for conn in opened:
            conn.close()
