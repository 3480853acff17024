"""The servers a request benchmark measures, each its own process on a free loopback port: the bare
FastAPI baseline (`bare_app.py`) and `consentry serve`, both on uvicorn with uvloop + httptools.
Not a benchmark: `bench/run.py` skips it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from common import free_port

HERE = Path(__file__).resolve().parent


def _wait(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in 60 s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _process(
    command: list[str], env: dict[str, str], log: Path, ready: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(process, ready, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def bare_baseline(log: Path) -> Iterator[str]:
    """The bare FastAPI app under uvicorn (uvloop, httptools, one worker); yields its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(HERE), "--port", str(port),
               "--loop", "uvloop", "--http", "httptools", "--workers", "1", "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with _process(command, dict(os.environ), log, base + "/json"):
        yield base


@contextlib.contextmanager
def consentry(
    data_dir: Path, database_url: str, log: Path, *, workers: int = 1, issuer: str | None = None
) -> Iterator[str]:
    """`consentry serve --workers N` on a free port; yields its base URL. Servers that share a data
    directory and an `issuer` (the first one's URL) act as one broker, behind one load balancer."""
    with consentry_process(data_dir, database_url, log, workers=workers, issuer=issuer) as (base, _):
        yield base


@contextlib.contextmanager
def consentry_process(
    data_dir: Path, database_url: str, log: Path, *, workers: int = 1, issuer: str | None = None
) -> Iterator[tuple[str, int]]:
    """`consentry`, yielding the server's process id too (whose children are its workers)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": database_url,
           "CONSENTRY_BASE_URL": issuer or base}  # fmt: skip
    command = [str(Path(sys.executable).parent / "consentry"), "serve", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    with _process(command, env, log, base + "/healthz") as process:
        yield base, process.pid
        time.sleep(0.05)
