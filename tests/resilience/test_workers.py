"""`consentry serve --workers 2` on SQLite (and on PostgreSQL when the suite runs there): two worker
processes behind one socket serve as one broker, and a SIGTERM lets the reads in flight finish.

Customers consent and brands read concurrently through one server of two workers (uvicorn's
supervisor, the kernel spreading connections over both): every request succeeds, each answered
read has exactly one `profile.read` entry, and the log verifies. Then readers keep reading while the
server is stopped with SIGTERM: every read gets its 200 or no answer at all (never an error), and
every read answered is in the log, as the group committer drains before each worker exits.
"""

from __future__ import annotations

import re
import threading
import time
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
