"""What the benchmarks share: their figures as rows of one shape, their common options, the machine
they ran on, and a throwaway PostgreSQL cluster (for `bench/run.py`).

A benchmark builds `Row`s (figure, value, same-run baseline, goal, pass/fail) and ends with
`finish(rows, args)`: it prints them as a table, and with `--json PATH` writes them there for the
runner, which gathers every benchmark's rows into one table. `--quick` swaps in tiny sizes (a smoke
run, not a measurement).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Row", "finish", "machine", "markdown", "parse", "text_table", "throwaway_postgres"]


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


def _free_port() -> int:
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
    data, port = workdir / "data", _free_port()
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
