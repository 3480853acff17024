"""Concurrent requests that read then write must all succeed (no 'database is locked' 503s)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from support.core import STRONG_PASSWORD, bearer, live_server
from support.oauth import OFFER
from support.resilience import set_up_brand


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


def test_readers_beside_writers_all_succeed(tmp_path: Path, fresh_database_url: str) -> None:
    # Read-only requests (deferred transactions) run beside writers (BEGIN IMMEDIATE): nobody is refused.
    with live_server(tmp_path / "var", fresh_database_url, tmp_path / "server.log") as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            brand = set_up_brand(fresh_database_url, http)
        statuses: list[tuple[str, int]] = []
        lock = threading.Lock()

        def run(kind: str) -> None:
            with httpx.Client(base_url=base, timeout=60, headers=bearer(brand.token)) as client:
                for _ in range(15):
                    if kind == "write":
                        response = client.post("/v1/offers", json=OFFER)
                    else:
                        response = client.get("/v1/offers", params={"limit": 5})
                    with lock:
                        statuses.append((kind, response.status_code))

        threads = [threading.Thread(target=run, args=(kind,)) for kind in ["write", "read"] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert sorted(set(statuses)) == [("read", 200), ("write", 201)] and len(statuses) == 8 * 15
