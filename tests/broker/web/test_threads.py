"""Request threads: a customer's reads and token requests (those whose brand is not cached) run in at
most `request_threads` threads at once (more would hand Python's interpreter lock around more than
they work), or on the event loop itself with 0: by default 0 on SQLite and 2 on PostgreSQL."""

from __future__ import annotations

import asyncio
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
from broker.web.threads import RequestThreads

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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the request threads settle their calls on an asyncio loop


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


def test_token_requests_that_look_their_brand_up_run_in_at_most_request_threads_at_once(
    app_client: TestClient, overlap: Overlap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token whose brand is cached is answered on the loop; one that must look it up stops at the
    lookup there (`_NotCached`) and runs again in a request thread."""
    in_thread = overlap.call(Response(b"{}", media_type="application/json"))

    def reading(request: Any, form: Any, runtime: Any, connect: Any) -> Response:
        if connect is oauth._no_database:
            raise oauth._NotCached
        response: Response = in_thread()
        return response

    monkeypatch.setattr(oauth, "_token_reading", reading)
    form = {"grant_type": "client_credentials"}
    responses = concurrently(lambda: app_client.post("/oauth/token", data=form))
    assert [r.status_code for r in responses] == [200] * CALLS
    assert overlap.most == 2


@pytest.mark.parametrize(
    ("url", "configured", "threads"),
    [("sqlite:///x.db", None, 0), ("postgresql+psycopg://db/consentry", None, 2), ("sqlite:///x.db", 3, 3)],
)
def test_request_threads_default_to_none_on_sqlite_and_two_on_postgresql(
    tmp_path: Path, url: str, configured: int | None, threads: int
) -> None:
    assert make_settings(tmp_path, url, request_threads=configured).request_thread_count == threads


def test_with_no_request_threads_the_calls_run_on_the_event_loop(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran_on: list[tuple[int, bool]] = []

    def work(*_: Any) -> Response:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        ran_on.append((threading.get_ident(), on_loop))
        return Response(b"{}", media_type="application/json")

    monkeypatch.setattr(oauth, "_token_reading", work)
    settings = make_settings(tmp_path / "inline", database_url, request_threads=0)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as http:
        for _ in range(3):
            assert http.post("/oauth/token", data={"grant_type": "client_credentials"}).status_code == 200
        assert getattr(http.app.state, "request_threads", None) is None  # type: ignore[attr-defined]
    assert len(ran_on) == 3 and all(on_loop for _, on_loop in ran_on)


@pytest.mark.anyio
async def test_a_call_s_error_reaches_its_caller_and_the_thread_goes_on() -> None:
    threads = RequestThreads(asyncio.get_running_loop(), 1)
    try:

        def fail() -> None:
            raise LookupError("nothing here")

        with pytest.raises(LookupError, match="nothing here"):
            await threads.run(fail)
        assert await threads.run(lambda: 42) == 42
    finally:
        await asyncio.to_thread(threads.stop)


@pytest.mark.anyio
async def test_a_cancelled_caller_waits_for_its_call_to_end() -> None:
    # The call holds a transaction: the cancellation must not go on (and the app shut down, and the
    # engine be disposed) while the call still runs.
    threads = RequestThreads(asyncio.get_running_loop(), 1)
    started, ended = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.3)
        ended.set()

    task = asyncio.ensure_future(threads.run(slow))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended.is_set()
    await asyncio.to_thread(threads.stop)


@pytest.mark.anyio
async def test_stopping_finishes_the_calls_already_queued() -> None:
    threads = RequestThreads(asyncio.get_running_loop(), 1)
    done: list[int] = []

    def work(i: int) -> int:
        time.sleep(0.02)
        done.append(i)
        return i

    calls = [asyncio.ensure_future(threads.run(work, i)) for i in range(5)]
    await asyncio.sleep(0)
    await asyncio.to_thread(threads.stop)
    assert done == [0, 1, 2, 3, 4]
    assert [await c for c in calls] == [0, 1, 2, 3, 4]
    assert not any(t.is_alive() for t in threads._threads)


def test_the_app_s_request_threads_end_at_shutdown(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)
    with TestClient(app, base_url="http://127.0.0.1:8000") as http:
        http.get("/v1/me/grants", headers={"Authorization": "Bearer x"})  # a customer read: in a thread
        threads = app.state.request_threads
        assert threads is not None and all(t.is_alive() for t in threads._threads)
    assert app.state.request_threads is None
    assert not any(t.is_alive() for t in threads._threads)
