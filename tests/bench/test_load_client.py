"""The benchmarks' load generator (`bench/common.http_rate`): it sends exactly the request it is
given, on keep-alive connections, counts only answered requests, and fails loudly on any answer
but 200, so a broken endpoint can never pass for a fast one."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
from common import HttpRequest, http_rate


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the broker's server
    seen: list[tuple[str, str, str, bytes]] = []
    connections: set[tuple[str, int]] = set()
    cookies: list[str] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Recorder.seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        _Recorder.cookies.append(self.headers.get("Cookie", ""))
        _Recorder.connections.add(self.client_address)
        status = 500 if self.path == "/broken" else 200
        payload = b'{"ok":true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer  # noqa: N815 - the names http.server dispatches to

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def base() -> Iterator[str]:
    _Recorder.seen, _Recorder.connections, _Recorder.cookies = [], set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_it_counts_answered_requests_on_reused_connections(base: str) -> None:
    rate = http_rate(base, HttpRequest("GET", "/healthz", bearer="tok"), seconds=0.3, concurrency=3)
    assert rate > 0
    assert len(_Recorder.seen) >= 3 and len(_Recorder.connections) == 3  # keep-alive: 3 connections
    assert set(_Recorder.seen) == {("GET", "/healthz", "Bearer tok", b"")}
    assert rate == pytest.approx(len(_Recorder.seen) / 0.3, rel=0.5)


def test_it_sends_basic_credentials_and_a_form(base: str) -> None:
    request = HttpRequest("POST", "/oauth/token", basic=("id", "secret"), form={"grant_type": "x y"})
    http_rate(base, request, seconds=0.1, concurrency=1)
    assert _Recorder.seen[0] == ("POST", "/oauth/token", "Basic aWQ6c2VjcmV0", b"grant_type=x+y")


def test_it_sends_cookies(base: str) -> None:
    http_rate(base, HttpRequest("GET", "/portal/", cookies={"a": "1", "b": "2"}), seconds=0.1, concurrency=1)
    assert _Recorder.cookies[0] == "a=1; b=2"


def test_an_answer_other_than_200_fails_the_run(base: str) -> None:
    with pytest.raises(RuntimeError, match="/broken answered 500"):
        http_rate(base, HttpRequest("GET", "/broken"), seconds=0.2, concurrency=1)
