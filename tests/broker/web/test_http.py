"""HTTP behaviour every endpoint shares: problem+json, security headers, request ids, health."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from support.core import live_server

from broker.api.health import FRESH_SECONDS
from broker.app import create_app
from broker.runtime import Runtime
from broker.web.middleware import log_safe


def test_healthz_answers_when_the_database_does(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_checks_the_database_a_few_times_a_second_and_never_remembers_a_failure(
    runtime: Runtime,
) -> None:
    checks, down = [0], [False]

    def sessions() -> Session:
        checks[0] += 1
        if down[0]:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))
        return runtime.sessions()

    with TestClient(create_app(runtime=dataclasses.replace(runtime, sessions=sessions))) as http:
        started = time.monotonic()
        assert all(http.get("/healthz").status_code == 200 for _ in range(20))
        elapsed = time.monotonic() - started
        assert checks[0] <= 1 + elapsed / FRESH_SECONDS  # a success answers for FRESH_SECONDS
        down[0] = True
        time.sleep(FRESH_SECONDS)
        assert http.get("/healthz").status_code == 503  # the database is checked again, and fails
        unavailable = http.get("/healthz")
        assert unavailable.status_code == 503
        assert unavailable.headers["content-type"] == "application/problem+json"
        assert unavailable.json()["type"].endswith("/unavailable")
        down[0] = False
        assert http.get("/healthz").status_code == 200  # the failure was not remembered


def test_probes_that_arrive_during_a_check_share_it(runtime: Runtime) -> None:
    checks, release = [0], threading.Event()

    def sessions() -> Session:
        checks[0] += 1
        release.wait(5)  # a slow database: every probe arrives while this one check runs
        return runtime.sessions()

    app = create_app(runtime=dataclasses.replace(runtime, sessions=sessions))
    arrived = [0]

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            arrived[0] += 1  # on the app's event loop: no lock needed
        await app(scope, receive, send)

    with TestClient(counting) as http, ThreadPoolExecutor(8) as pool:
        probes = [pool.submit(http.get, "/healthz") for _ in range(8)]
        deadline = time.monotonic() + 10
        while arrived[0] < 8 and time.monotonic() < deadline:  # every probe in, however busy the machine
            time.sleep(0.01)
        time.sleep(0.05)
        release.set()
        assert [probe.result().status_code for probe in probes] == [200] * 8
    assert arrived[0] == 8 and checks[0] == 1


def test_healthz_is_documented(client: TestClient) -> None:
    assert "/healthz" in client.get("/openapi.json").json()["paths"]


def test_no_request_is_traced_to_an_opentelemetry_provider_the_process_configured(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FastAPI's native telemetry exports each request (its URL, query string and all) to a provider
    # configured in the process; the broker keeps personal data out of what leaves it, so it is off.
    asked: list[str] = []

    class Provider(trace.TracerProvider):
        def get_tracer(
            self,
            instrumenting_module_name: str,
            instrumenting_library_version: str | None = None,
            schema_url: str | None = None,
            attributes: Any = None,
        ) -> trace.Tracer:
            asked.append(instrumenting_module_name)
            return trace.NoOpTracer()

    monkeypatch.setattr(trace, "get_tracer_provider", Provider)
    assert client.get("/healthz").status_code == 200
    assert client.get("/v1/nothing-here").status_code == 404
    assert asked == []


def test_unknown_path_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://consentry.dev/problems/not-found"
    assert body["status"] == 404 and body["title"] and body["detail"]


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    response = client.put("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/method-not-allowed")


def test_security_headers_on_every_response(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/missing")):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"


def test_request_id_is_echoed_when_well_formed_and_made_up_otherwise(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith junk"}).headers["x-request-id"]
    assert generated != "bad id\twith junk" and len(generated) == 32


def test_root_redirects_to_the_portal(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/portal/"


def test_a_500_carries_the_security_headers_the_request_id_and_a_problem(runtime: Runtime) -> None:
    app = create_app(runtime=runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://consentry.dev/problems/internal" and body["status"] == 500
    assert "a bug" not in response.text


def test_a_deletion_receipt_s_capability_is_not_in_the_access_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Its random id is the only key to the receipt for its hour: the log names the route only."""
    capability = "3f6c1a0e-9b7d-4c1e-8a55-0d2e7f9b1c44"
    with caplog.at_level(logging.INFO, logger="consentry.access"):
        assert client.get(f"/portal/deleted/{capability}/receipt").status_code == 404
    (line,) = [r.getMessage() for r in caplog.records if r.name == "consentry.access"]
    assert line.startswith("GET /portal/deleted/{receipt_id}/receipt 404") and capability not in line


def test_a_newline_in_the_path_cannot_forge_an_access_log_line(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="consentry.access"):
        client.get("/v1/x%0aGET%20/v1/me%20200%200.1ms%20rid=forged%0d%1b[31m%e2%80%a8")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "consentry.access"]
    assert r"\n" in line and r"\r" in line and r"\x1b" in line and r"\u2028" in line
    assert not any(ch in line for ch in "\n\r\x1b\u2028\x85")


@given(st.text())
def test_an_escaped_log_field_holds_no_character_that_breaks_a_line(text: str) -> None:
    safe = log_safe(text)
    assert not any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in safe)
    if text.isascii():  # nothing is lost: the escaped field reads back as the original
        assert safe.encode().decode("unicode_escape") == text


@pytest.mark.slow
def test_a_body_longer_than_its_declared_length_never_reaches_the_app(
    tmp_path: Path, fresh_database_url: str
) -> None:
    """The body limit lets a body of declared length through uncounted, as the server's HTTP parser
    ends the body at that length. Over a raw socket, a token request declaring its 29-byte form and
    followed at once by more bytes: the endpoint reads only the 29 (a well-formed form, refused for its
    missing credentials; with the rest it would have been refused as not printable ASCII), and the
    rest is read as the next request on the connection."""
    with live_server(tmp_path / "var", fresh_database_url, tmp_path / "server.log") as base:
        host, port = base.removeprefix("http://").split(":")
        form = b"grant_type=client_credentials"
        token = (
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(form)
        )
        more = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        received = b""
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(token + form + more)
            while chunk := sock.recv(65536):
                received += chunk
    first, second = received.split(b"HTTP/1.1 ")[1:3]
    assert first.startswith(b"401 ") and b'"error":"invalid_client"' in first.replace(b" ", b""), first
    assert second.startswith(b"200 ") and second.endswith(b'{"status":"ok"}'), second
