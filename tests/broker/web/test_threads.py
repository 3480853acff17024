"""Request threads: a customer's reads and token requests run in at most `request_threads` threads at
once (more would hand Python's interpreter lock around more than they work), 1 on SQLite and 2 on
PostgreSQL by default."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import Response
from support.core import make_settings

from broker.api import oauth
from broker.app import create_app
from broker.runtime import Runtime
from broker.settings import Settings
from broker.web import customer_reads

CALLS = 6


class Overlap:
    """Counts how many calls of a patched function run at once."""

    def __init__(self) -> None:
        self.running = self.most = 0
        self.lock = threading.Lock()

    def call(self, result: Any) -> Callable[..., Any]:
        def work(*_: Any) -> Any:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.15)
            with self.lock:
                self.running -= 1
            return result

        return work


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url, request_threads=2)


@pytest.fixture
def overlap() -> Overlap:
    return Overlap()


@pytest.fixture
def app_client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as http:
        yield http


def concurrently(send: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(CALLS) as pool:
        return [f.result() for f in [pool.submit(send) for _ in range(CALLS)]]


def test_customer_reads_run_in_at_most_request_threads_at_once(
    app_client: TestClient, runtime: Runtime, overlap: Overlap, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_now = SimpleNamespace(last_seen_at=runtime.clock())  # the session's last-seen: not due
    monkeypatch.setattr(customer_reads, "_run", overlap.call(('{"items":[],"next_cursor":null}', seen_now)))
    responses = concurrently(lambda: app_client.get("/v1/me/grants", headers={"Authorization": "Bearer x"}))
    assert [r.status_code for r in responses] == [200] * CALLS
    assert overlap.most == 2  # never more than the setting, and the setting's worth do run together


def test_token_requests_run_in_at_most_request_threads_at_once(
    app_client: TestClient, overlap: Overlap, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oauth, "_token_reading", overlap.call(Response(b"{}", media_type="application/json")))
    form = {"grant_type": "client_credentials"}
    responses = concurrently(lambda: app_client.post("/oauth/token", data=form))
    assert [r.status_code for r in responses] == [200] * CALLS
    assert overlap.most == 2


@pytest.mark.parametrize(
    ("url", "configured", "threads"),
    [("sqlite:///x.db", None, 1), ("postgresql+psycopg://db/consentry", None, 2), ("sqlite:///x.db", 3, 3)],
)
def test_request_threads_default_to_one_on_sqlite_and_two_on_postgresql(
    tmp_path: Path, url: str, configured: int | None, threads: int
) -> None:
    assert make_settings(tmp_path, url, request_threads=configured).request_thread_count == threads
