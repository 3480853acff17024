"""Test support: an injectable clock and sleep, settings and databases for tests, HTTP helpers."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from broker.settings import Settings

PG_URL = os.environ.get("CONSENTRY_TEST_DATABASE_URL")
STRONG_PASSWORD = "plum-otter-satchel-91-lantern"


class FakeClock:
    """An injectable clock: starts at a fixed instant, moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class RecordedSleep:
    """An injectable sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


_counter = itertools.count()


def new_database_url(tmp_dir: Path) -> str:
    """A new empty database: a SQLite file, or a freshly created PostgreSQL database."""
    if PG_URL is None:
        return f"sqlite:///{tmp_dir / f'db{next(_counter)}.sqlite'}"
    name = f"consentry_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for a test: cheap argon2 (the cost is a setting; production uses RFC 9106's)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "argon2_parallelism": 1,
        "audit_checkpoint_interval_seconds": 0,  # tests sign checkpoints when they mean to
        "lifecycle_interval_seconds": 0,  # and sweep when they mean to
        "webhook_interval_seconds": 0,  # and deliver webhooks when they mean to
        "mail_interval_seconds": 0,  # and mail
        **overrides,
    }
    return Settings(**values)


def sign_up(
    client: TestClient,
    email: str = "ada@example.org",
    password: str = STRONG_PASSWORD,
    *,
    verify: bool = True,
) -> str:
    """Create an account, confirm its address with the code mailed to it (from the `.eml` sink, unless
    `verify` is False), and log in; returns the bearer token."""
    from support.mail import confirm_email  # support.mail imports this module

    created = client.post("/v1/customers", json={"email": email, "password": password})
    assert created.status_code == 202, created.text
    if verify:
        confirm_email(client, email)
    return log_in(client, email, password)


def log_in(
    client: TestClient, email: str, password: str = STRONG_PASSWORD, *, user_agent: str | None = None
) -> str:
    """Log in (from a browser with this User-Agent, if given) and return the bearer token."""
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = client.post("/v1/sessions", json={"email": email, "password": password}, headers=headers)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    client.cookies.clear()  # tests authenticate with the bearer token unless they say otherwise
    return token


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


CHEAP_ARGON2 = {
    "CONSENTRY_ARGON2_TIME_COST": "1",
    "CONSENTRY_ARGON2_MEMORY_KIB": "1024",
    "CONSENTRY_ARGON2_PARALLELISM": "1",
}


class ServerProcess:
    """A `consentry serve` process on loopback that a test may stop gently, kill or restart.

    `base_url` is the broker's public URL (the OAuth issuer): several processes serving one broker
    share it, whatever port each listens on.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        log_path: Path,
        *,
        port: int | None = None,
        base_url: str | None = None,
        env: dict[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.port = port or free_port()
        self.workers = workers  # `consentry serve` defaults to the CPU count: the tests say how many
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **cli_env(data_dir, database_url),
            "CONSENTRY_BASE_URL": base_url or self.url,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 30) -> None:
        """Start the process (again, after a stop or kill) and wait until /healthz answers 200."""
        consentry = Path(sys.executable).parent / "consentry"
        with self.log_path.open("ab") as log:  # appended: a restart keeps the earlier run's log
            self.process = subprocess.Popen(
                [str(consentry), "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-request, without cleaning up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def running_server(
    data_dir: Path, database_url: str, log_path: Path, **options: Any
) -> Iterator[ServerProcess]:
    """A started `ServerProcess` (options as its constructor's), stopped afterwards."""
    server = ServerProcess(data_dir, database_url, log_path, **options)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def live_server(data_dir: Path, database_url: str, log_path: Path) -> Iterator[str]:
    """Run `consentry serve` as a real process on loopback; yields its base URL, stops it after."""
    with running_server(data_dir, database_url, log_path) as server:
        yield server.url


def cli_env(data_dir: Path, database_url: str) -> dict[str, str]:
    """Environment for running the `consentry` command against a test database."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")},
        **CHEAP_ARGON2,
        "CONSENTRY_DATA_DIR": str(data_dir),
        "CONSENTRY_DATABASE_URL": database_url,
    }
