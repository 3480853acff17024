"""The app on a database of its own that other processes change too, for tests of the caches that
follow those changes (`broker.signals`), and waiting until those caches listen."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from fastapi.testclient import TestClient

from broker.app import create_app
from broker.runtime import Runtime, build_runtime
from tests.support.core import make_settings

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.02)


def listening(runtime: Runtime) -> None:
    """On PostgreSQL, nothing is cached until the app listens for changes: wait for that."""
    watched = (runtime.oauth.clients.signals, *runtime.directory_pages.watched)
    wait_for(lambda: all(signals.stamp() is not None for signals in watched), "listening for changes")


@contextlib.contextmanager
def served_alone(data_dir: Path, database_url: str) -> Iterator[tuple[TestClient, Runtime, dict[str, str]]]:
    """The app on `database_url`, listening, and the environment another process needs to change the
    same broker (`python -c` with `build_runtime(Settings())`)."""
    runtime = build_runtime(make_settings(data_dir, database_url))
    env = {**os.environ, "CONSENTRY_DATABASE_URL": database_url, "CONSENTRY_DATA_DIR": str(data_dir),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    try:
        with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as client:
            listening(runtime)
            yield client, runtime, env
    finally:
        runtime.dispose()
