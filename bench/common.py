"""What the benchmarks share: their figures as rows of one shape, their common options, the machine
they ran on, and a throwaway PostgreSQL cluster (for `bench/run.py`).

A benchmark builds `Row`s (figure, value, same-run baseline, goal, pass/fail) and ends with
`finish(rows, args)`: it prints them as a table, and with `--json PATH` writes them there for the
runner, which gathers every benchmark's rows into one table. `--quick` swaps in tiny sizes (a smoke
run, not a measurement).

`http_rate` is the load generator of the HTTP benchmarks. It is deliberately lean (raw HTTP/1.1 on
keep-alive connections, one request prebuilt as bytes): on two cores the client shares the CPU with
the server, and a heavy client (httpx spends about 6 ms of CPU per request here) would cap the
cheapest endpoint, the baseline, at the client's own speed and so flatter every ratio against it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

__all__ = [
    "HttpRequest",
    "Row",
    "finish",
    "free_port",
    "http_rate",
    "machine",
    "markdown",
    "parse",
    "text_table",
    "throwaway_postgres",
]


@dataclass(frozen=True, slots=True)
class Row:
    """One figure: its value against a baseline measured in the same run, and its goal.

    `passed` is None for figures only reported; `baseline` is None when there is nothing to compare."""

    figure: str
    value: float
    baseline: float | None
    unit: str
    goal: str = "reported"
    passed: bool | None = None
    database: str = ""  # filled in by the runner: which backend the figure was measured on

    @property
    def ratio(self) -> float | None:
        """value / baseline, when there is a baseline."""
        return self.value / self.baseline if self.baseline else None

    @property
    def verdict(self) -> str:
        """pass, FAIL, or an empty string for a figure only reported."""
        return "" if self.passed is None else "pass" if self.passed else "FAIL"

    @classmethod
    def of(cls, data: dict[str, Any]) -> Row:
        """A row read back from a benchmark's `--json` file."""
        return cls(**data)


def parse(parser: argparse.ArgumentParser, quick: dict[str, Any]) -> argparse.Namespace:
    """Parse the command line, with `--json PATH` and `--quick` (which sets the options in `quick`)."""
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here, as JSON")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    args = parser.parse_args()
    if args.quick:
        for name, value in quick.items():
            setattr(args, name, value)
    return args


def finish(rows: Sequence[Row], args: argparse.Namespace) -> int:
    """Print the rows, write them to `--json` if given; 1 if a goal was missed, else 0."""
    print("\n".join(text_table(rows)))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=1, ensure_ascii=False))
    return 1 if any(row.passed is False for row in rows) else 0


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 0.1 else f"{value:.2f}"


def _cells(row: Row) -> list[str]:
    ratio = row.ratio
    return [
        row.figure,
        row.database,
        f"{_number(row.value)} {row.unit}".strip(),
        f"{_number(row.baseline)} {row.unit}".strip() if row.baseline is not None else "",
        f"{ratio:.2f}x" if ratio is not None else "",
        row.goal,
        row.verdict,
    ]


HEADER = ["figure", "database", "value", "baseline", "ratio", "goal", "pass/fail"]


def text_table(rows: Sequence[Row]) -> list[str]:
    """The rows as aligned plain text (the database column only if some row names one)."""
    keep = [i for i, _ in enumerate(HEADER) if i != 1 or any(row.database for row in rows)]
    table = [[HEADER[i] for i in keep], *[[_cells(row)[i] for i in keep] for row in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(keep))]
    right = {2, 3, 4}  # numbers
    return [
        "  ".join(
            cell.rjust(width) if keep[i] in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]


def markdown(rows: Sequence[Row]) -> list[str]:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    for row in rows:
        cells = [cell.replace("|", "\\|") for cell in _cells(row)]
        cells[-1] = f"**{cells[-1]}**" if cells[-1] == "FAIL" else cells[-1]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def machine(postgres: str | None) -> dict[str, str]:
    """CPU model, cores, memory, OS, Python, SQLite and (if used) PostgreSQL versions."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    load = " / ".join(f"{n:.2f}" for n in os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "OS": platform.platform(),
        "load average at start (1 / 5 / 15 min)": load,
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": postgres or "not measured",
    }


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def throwaway_postgres(pg_bin: Path) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL cluster in a temp dir on a free loopback port, with its default settings
    (fsync on: commits cost what they cost); yields (server URL, version), then deletes it."""
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = Path(tempfile.mkdtemp(prefix="consentry-bench-pg."))
    if run_as:
        shutil.chown(workdir, "postgres")
    data, port = workdir / "data", free_port()
    try:
        subprocess.run([*run_as, str(pg_bin / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(data)],
                       check=True, capture_output=True)  # fmt: skip
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        subprocess.run([*run_as, str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(workdir / "server.log"),
                        "-w", "-o", options, "start"], check=True, capture_output=True)  # fmt: skip
        version = subprocess.run([str(pg_bin / "postgres"), "--version"], capture_output=True, text=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", version.stdout.strip()
    finally:
        subprocess.run([*run_as, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request a benchmark repeats: a bearer token, Basic credentials, cookies and a form body are
    optional."""

    method: str
    path: str
    bearer: str | None = None
    basic: tuple[str, str] | None = None
    form: dict[str, str] | None = None
    cookies: dict[str, str] | None = None

    def encode(self, host: str) -> bytes:
        """The whole request as bytes, ready to send again and again on a keep-alive connection."""
        body = urlencode(self.form).encode() if self.form else b""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        if self.form:
            lines.append("Content-Type: application/x-www-form-urlencoded")
        if self.bearer:
            lines.append(f"Authorization: Bearer {self.bearer}")
        if self.basic:
            lines.append("Authorization: Basic " + base64.b64encode(":".join(self.basic).encode()).decode())
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(host: str, port: int, request: bytes, deadline: float, done: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                raise RuntimeError(f"{request.split(b' ', 2)[1].decode()} answered {status}: {body[:200]!r}")
            done[0] += 1
    finally:
        writer.close()


def best(measure: Callable[[], float], rounds: int) -> float:
    """The highest of `rounds` measurements: on a noisy machine, what the server can do."""
    return max(measure() for _ in range(rounds))


def http_rate(base: str, request: HttpRequest, *, seconds: float, concurrency: int) -> float:
    """Answered requests per second over `seconds`, from `concurrency` keep-alive connections each
    sending `request` as soon as its previous one is answered. Any answer but 200 raises. Runs on
    uvloop (when installed), as the servers it measures do."""
    url = urlsplit(base)
    host, port = url.hostname, url.port
    assert host is not None and port is not None, base
    raw, done = request.encode(url.netloc), [0]

    async def run() -> float:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_connection(host, port, raw, deadline, done) for _ in range(concurrency)))
        return done[0] / (time.perf_counter() - started)

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(run())


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (the broker's own dependency): a leaner client."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
