"""Test support for webhooks: a real HTTP receiver on loopback, registration, signature checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from fastapi.testclient import TestClient

from support.core import bearer
from support.oauth import BrandCredentials, brand_token

HOOK_SCOPES = "webhooks:read webhooks:write grants:read grants:write"


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        """The JSON body."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1 that keeps what it is sent and answers with `statuses` in turn."""

    base: str
    got: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    retry_after: list[str] = field(default_factory=list)  # Retry-After values sent with the statuses, in turn

    def types(self, path: str | None = None) -> list[str]:
        """The event types received (at `path`, or anywhere), in order."""
        return [r.event["type"] for r in self.got if path is None or r.path == path]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """Start a receiver; stop it after."""
    lock = threading.Lock()
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                receiver.got.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                retry_after = receiver.retry_after.pop(0) if receiver.retry_after else None
            self.send_response(status)
            if retry_after is not None:
                self.send_header("retry-after", retry_after)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(base=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def hook_token(http: TestClient | httpx.Client, brand: BrandCredentials) -> str:
    """A brand token that may manage webhooks and grants."""
    return brand_token(http, brand, scope=HOOK_SCOPES)


def register(
    http: TestClient | httpx.Client, token: str, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    """Register an endpoint; returns the 201 body (with its secret)."""
    body: dict[str, Any] = {"url": url, "description": "tests"}
    if events is not None:
        body["events"] = events
    response = http.post("/v1/webhooks", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def verifies(secret: str, received: Received) -> bool:
    """Check a request's Standard Webhooks signature the way a receiver would (not with our code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = (
        f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in received.headers["webhook-signature"].split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, g) for g in given)
