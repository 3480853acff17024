"""`kill -9` of the server under load, then a restart on the same database.

The invariant (README, "Resilience"): every read answered 200 has its `profile.read` entry; an entry
whose read the client never saw answered can only belong to a request whose connection broke (the
transaction committed, the process died before the response left); no request has two entries; a
request answered with an error has none; and the log verifies and grows on after the restart.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from support.core import running_server
from support.resilience import (
    BROKEN,
    Outcomes,
    consent_to,
    set_up_brand,
    sign_up_customer,
    stored_log,
    verify_audit_log_here,
)

READERS = 4
ANSWERED_BEFORE_KILL = 20  # reads answered before the kill (about a second's worth on an idle machine)


@pytest.mark.slow  # ~10 s idle, 20-35 s on a loaded 2-core machine: mostly two server starts
def test_kill_9_under_load_loses_no_answered_read(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir, url = tmp_path / "var", fresh_database_url
    with running_server(data_dir, url, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            brand = set_up_brand(url, http)
            tokens = []
            for n in range(READERS):
                sign_up_customer(http, data_dir, f"reader{n}@example.org")
                tokens.append(consent_to(server.url, server.url, brand, f"reader{n}@example.org"))

        outcomes, killed = Outcomes(), threading.Event()

        def read_until_killed(token: str) -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                while outcomes.read(http, token) != BROKEN and not killed.is_set():
                    pass

        readers = [threading.Thread(target=read_until_killed, args=(t,)) for t in tokens]
        for thread in readers:
            thread.start()
        deadline = time.monotonic() + 15
        while len(outcomes.with_status(200)) < ANSWERED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # SIGKILL: no shutdown, requests cut off wherever they are
        killed.set()
        for thread in readers:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in readers)

        answered, broken = outcomes.with_status(200), outcomes.with_status(BROKEN)
        refused = set(outcomes.statuses) - answered - broken
        assert len(answered) >= ANSWERED_BEFORE_KILL, "the readers barely ran; the test proved nothing"
        assert refused == set(), [outcomes.problems[rid] for rid in refused]

        server.start()  # same port, same database, same keys: a plain restart
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert outcomes.read(http, tokens[0]) == 200, "the broker did not come back after the restart"
        after_restart = outcomes.with_status(200) - answered

    log = stored_log(url)
    recorded = set(log.read_request_ids)
    assert answered | after_restart <= recorded, "a read was answered 200 without its audit entry"
    assert recorded - answered - after_restart <= broken, "an entry names a read nobody made or saw refused"
    assert [rid for rid, count in log.read_request_ids.items() if count > 1] == []
    assert log.indices == list(range(log.head_size)), "the log has a gap or a duplicate index"
    report = verify_audit_log_here(data_dir, url)
    assert report["ok"] and report["tree_size"] == log.head_size
