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
from dataclasses import dataclass
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
def uvicorn_app(app: str, log: Path, *, ready: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`app` ("module:attribute", a module of bench/) under uvicorn (uvloop, httptools, one worker) on
    a free port, with `env` (default: ours); yields its base URL once its path `ready` answers.

    bench/ goes on the import path after the repository, not first (as `--app-dir` would put it):
    `bench/vault.py` must not hide the `vault` package from an app that imports the broker."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port),
               "--loop", "uvloop", "--http", "httptools", "--workers", "1", "--no-access-log",
               "--log-level", "warning"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), str(HERE), env.get("PYTHONPATH")) if p)
    with _process(command, env, log, base + ready):
        yield base


@contextlib.contextmanager
def bare_baseline(log: Path) -> Iterator[str]:
    """The bare FastAPI app under uvicorn (uvloop, httptools, one worker); yields its base URL."""
    with uvicorn_app("bare_app:app", log, ready="/json") as base:
        yield base


@contextlib.contextmanager
def consentry_process(
    data_dir: Path, database_url: str, log: Path, *, workers: int = 1, issuer: str | None = None
) -> Iterator[tuple[str, int]]:
    """`consentry serve --workers N` on a free port; yields its base URL and the server's process id
    (whose children are its workers). Servers that share a data directory and an `issuer` (the first
    one's URL) act as one broker, behind one load balancer."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CONSENTRY_DATA_DIR": str(data_dir), "CONSENTRY_DATABASE_URL": database_url,
           "CONSENTRY_BASE_URL": issuer or base}  # fmt: skip
    command = [str(Path(sys.executable).parent / "consentry"), "serve", "--port", str(port),
               "--workers", str(workers)]  # fmt: skip
    with _process(command, env, log, base + "/healthz") as process:
        yield base, process.pid
        time.sleep(0.05)


@dataclass(frozen=True)
class Broker:
    """What a request benchmark runs: the baseline, and one broker served with one worker and with two
    (base URLs, and the server processes, whose children are the workers)."""

    bare: str
    one: str
    one_pid: int
    two: str
    two_pid: int


@contextlib.contextmanager
def baseline_and_broker(data_dir: Path, database_url: str) -> Iterator[Broker]:
    """The bare baseline, `consentry serve --workers 1` and `--workers 2` on `database_url` (migrated),
    the two acting as one broker: same data directory, the first one's URL as issuer."""
    with (
        bare_baseline(data_dir / "bare.log") as bare,
        consentry_process(data_dir, database_url, data_dir / "one.log") as (one, one_pid),
        consentry_process(data_dir, database_url, data_dir / "two.log", workers=2, issuer=one) as (
            two,
            two_pid,
        ),
    ):
        yield Broker(bare, one, one_pid, two, two_pid)
