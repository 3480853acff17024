"""Two `consentry serve` processes on one database behave as one broker.

They share the data directory (keys) and the public URL (the OAuth issuer), as processes behind one
load balancer would. Customers consent, brands read, and grants are revoked through both at once;
then the audit log has every index from 0 to n-1 exactly once, each answered read exactly one entry,
and `consentry audit verify` passes; and a revocation through one process fails the very next read
through the other.

Runs on both backends: on PostgreSQL (the deployment this is for) and on SQLite, whose file locks
serialise the two processes' writers just as its single-process path relies on.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from support.core import ServerProcess, bearer, running_server
from support.resilience import (
    Brand,
    Outcomes,
    consent_to,
    grant_of,
    set_up_brand,
    sign_up_customer,
    stored_log,
    verify_audit_log,
)

CUSTOMERS = 4
ROUNDS = 2  # per customer: consent and revoke through each process once, by the brand and by the customer
READS_PER_GRANT = 4  # alternating between the two processes
REVOKED = "https://consentry.dev/problems/grant-revoked"


class Customer:
    """One customer's rounds: consent through one process, read through both, revoke through one and
    read at once through the other. Round r of customer n consents and revokes through process
    (n + r) % 2; even rounds the brand revokes, odd rounds the customer does."""

    def __init__(self, n: int, servers: list[ServerProcess], brand: Brand, outcomes: Outcomes) -> None:
        self.email = f"customer{n}@example.org"
        self.servers, self.brand, self.outcomes, self.offset = servers, brand, outcomes, n
        self.token = ""
        self.rounds = 0
        self.failures: list[str] = []

    def run(self) -> None:
        clients = [httpx.Client(base_url=s.url, timeout=30) for s in self.servers]
        try:
            for _ in range(ROUNDS):
                self._round(clients, (self.offset + self.rounds) % 2)
                self.rounds += 1
        except Exception as exc:  # reported by the test, with the customer it happened to
            self.failures.append(f"{self.email}: {exc!r}")
        finally:
            for client in clients:
                client.close()

    def _round(self, clients: list[httpx.Client], here: int) -> None:
        there = 1 - here
        issuer = self.servers[0].url
        access = consent_to(self.servers[here].url, issuer, self.brand, self.email)
        grant_id = grant_of(clients[there], access)
        for i in range(1, READS_PER_GRANT):
            status = self.outcomes.read(clients[(there + i) % 2], access)
            assert status == 200, f"read {i} through process {(there + i) % 2}: {status}"
        if self.rounds % 2:
            ended = clients[here].delete(f"/v1/me/grants/{grant_id}", headers=bearer(self.token))
        else:
            ended = clients[here].delete(f"/v1/grants/{grant_id}", headers=bearer(self.brand.token))
        assert ended.status_code == 204, ended.text
        after = clients[there].get("/v1/profile", headers=bearer(access))
        assert after.status_code == 403, f"read through process {there} after revocation: {after.status_code}"
        assert after.json()["type"] == REVOKED


@pytest.mark.slow  # ~12 s idle, 25-35 s on a loaded 2-core machine: two server starts, 8 rounds
def test_two_processes_on_one_database_behave_as_one_broker(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir, url = tmp_path / "var", fresh_database_url
    # Both sign checkpoints every second, so they also race each other to sign the same sizes.
    env = {"CONSENTRY_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "1"}
    with (
        running_server(data_dir, url, tmp_path / "a.log", env=env) as a,
        running_server(data_dir, url, tmp_path / "b.log", base_url=a.url, env=env) as b,
    ):
        with httpx.Client(base_url=a.url, timeout=30) as http:
            brand = set_up_brand(url, http)
        outcomes = Outcomes()
        customers = [Customer(n, [a, b], brand, outcomes) for n in range(CUSTOMERS)]
        for customer in customers:  # sign up through alternate processes
            with httpx.Client(base_url=customer.servers[customer.offset % 2].url, timeout=30) as http:
                customer.token = sign_up_customer(http, data_dir, customer.email)
        threads = [threading.Thread(target=c.run) for c in customers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert not any(thread.is_alive() for thread in threads)

    assert [f for c in customers for f in c.failures] == []
    rounds = sum(c.rounds for c in customers)
    assert rounds == CUSTOMERS * ROUNDS
    answered = outcomes.with_status(200)
    assert len(answered) == rounds * (READS_PER_GRANT - 1)
    log = stored_log(url)
    assert log.indices == list(range(log.head_size)), "the log has a gap or a duplicate index"
    assert set(log.read_request_ids) >= answered
    assert [rid for rid, count in log.read_request_ids.items() if count > 1] == []
    assert log.kinds["profile.read"] == rounds * READS_PER_GRANT
    assert log.kinds["grant.created"] == log.kinds["grant.revoked"] == rounds
    report = verify_audit_log(data_dir, url)
    assert report["tree_size"] == log.head_size and report["checkpoints"] >= 2
