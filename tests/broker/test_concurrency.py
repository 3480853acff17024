"""Concurrent requests that read then write must all succeed (no 'database is locked' 503s)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from support.core import STRONG_PASSWORD, live_server


def test_concurrent_read_then_write_requests_all_succeed(tmp_path: Path, fresh_database_url: str) -> None:
    with live_server(tmp_path / "var", fresh_database_url, tmp_path / "server.log") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            assert (
                http.post(
                    "/v1/customers", json={"email": "c@example.org", "password": STRONG_PASSWORD}
                ).status_code
                == 202
            )
            token = http.post(
                "/v1/sessions", json={"email": "c@example.org", "password": STRONG_PASSWORD}
            ).json()["token"]
        statuses: list[int] = []
        lock = threading.Lock()

        def writer(n: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                for i in range(15):
                    # PATCH reads the vault key, then writes ciphertexts: a read-then-write transaction.
                    response = client.patch(
                        "/v1/me/profile",
                        json={"city": f"Town{n}-{i}"},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    with lock:
                        statuses.append(response.status_code)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert statuses.count(200) == len(statuses) == 8 * 15, sorted(set(statuses))
