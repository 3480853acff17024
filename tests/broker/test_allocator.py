"""A serving process keeps to a few malloc arenas (`broker.allocator`), and an operator's own
MALLOC_ARENA_MAX wins."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.core import running_server

from broker import allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")

# Threads that each allocate while all are alive: glibc gives each a new arena, up to its limit.
# Counts the arenas in malloc_info's report.
_COUNT_ARENAS = textwrap.dedent(
    """
    import ctypes, sys, threading
    from broker import allocator
    if sys.argv[1] == "limit":
        allocator.limit_arenas()
    barrier, kept = threading.Barrier(8), []
    def work():
        barrier.wait()
        kept.append([bytes(4096 + n) for n in range(64)])  # past pymalloc: malloc's own heaps
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads: thread.start()
    for thread in threads: thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    out = libc.fopen(sys.argv[2].encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(out))
    libc.fclose(ctypes.c_void_p(out))
    """
)


def _arenas(tmp_path: Path, mode: str) -> int:
    report, env = tmp_path / f"{mode}.xml", {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    command = [sys.executable, "-c", _COUNT_ARENAS, mode, str(report)]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    return report.read_text().count("<heap nr=")


@glibc
def test_a_serving_process_keeps_to_a_few_arenas_however_many_threads_allocate(tmp_path: Path) -> None:
    assert _arenas(tmp_path, "limit") <= allocator.ARENAS
    assert _arenas(tmp_path, "default") > allocator.ARENAS  # what the limit saves: one heap per thread


@glibc
def test_the_limit_is_exported_to_the_processes_a_server_starts() -> None:
    environ: dict[str, str] = {}
    assert allocator.limit_arenas(environ)
    assert environ == {"MALLOC_ARENA_MAX": str(allocator.ARENAS)}  # uvicorn's workers inherit it


@glibc
@pytest.mark.slow  # a server of two workers, started and stopped: ~5 s
def test_consentry_serves_with_the_limit_in_every_worker(tmp_path: Path, fresh_database_url: str) -> None:
    with running_server(tmp_path, fresh_database_url, tmp_path / "serve.log", workers=2) as server:
        assert server.process is not None
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text()
        workers = [int(pid) for pid in children.split()]
        environments = [Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") for pid in workers]
    assert len(workers) >= 2
    assert all(f"MALLOC_ARENA_MAX={allocator.ARENAS}".encode() in env for env in environments)


def test_an_operators_own_setting_is_left_alone() -> None:
    environ = {"MALLOC_ARENA_MAX": "4"}
    assert not allocator.limit_arenas(environ)
    assert environ == {"MALLOC_ARENA_MAX": "4"}
