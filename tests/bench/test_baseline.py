"""The baseline of every request-speed row is the bare FastAPI app (`bench/bare_app.py`), served by
uvicorn on uvloop + httptools with one worker as its own process, never one of the broker's
endpoints; and the runner does not mistake the helpers for benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

sys.path.append(str(Path(__file__).resolve().parents[2] / "bench"))
from common import HttpRequest, http_rate
from run import benchmarks
from servers import HERE as BENCH
from servers import bare_baseline


def test_the_baseline_is_a_bare_fastapi_app_on_uvloop_and_httptools(tmp_path: Path) -> None:
    with bare_baseline(tmp_path / "bare.log") as base:
        answer = httpx.get(base + "/json")
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert http_rate(base, HttpRequest("GET", "/json"), seconds=0.2, concurrency=2) > 0
        assert httpx.get(base + "/healthz").status_code == 404  # nothing of the broker's
    source = (BENCH / "servers.py").read_text()
    assert '"--loop", "uvloop", "--http", "httptools", "--workers", "1"' in source


def test_the_runner_skips_the_helpers() -> None:
    names = {script.name for script in benchmarks([])}
    assert {"read.py", "vault.py", "ceilings.py"} <= names
    assert not names & {"bare_app.py", "servers.py", "common.py", "run.py", "perfect_cache_app.py"}
