"""`make bench`: run every benchmark under bench/ and gather their figures into one table.

Each `bench/*.py` (but this runner and `common.py`) runs as its own process with `--json`, on SQLite
and, when PostgreSQL is installed (`PG_BIN`), again on a throwaway PostgreSQL cluster made for that
benchmark alone; `vault.py` measures crypto and SQLite only. The
table (figure, database, value, baseline, ratio, goal, pass/fail) is printed and written, with the
machine's description, to bench/RESULTS.md. A benchmark that crashes is a failed row. Exits 1 if any
goal was missed.

Usage: python bench/run.py [--only NAME ...] [--postgres auto|yes|no] [--quick] [--output PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from common import Row, machine, markdown, text_table, throwaway_postgres

HERE = Path(__file__).resolve().parent
# helpers, not benchmarks
NOT_BENCHMARKS = {"run.py", "common.py", "servers.py", "bare_app.py", "perfect_cache_app.py", "floor_app.py"}
SQLITE_ONLY = {"vault.py", "floors.py"}  # crypto in memory; the floor's own SQLite file: no --database-url


def benchmarks(only: list[str]) -> list[Path]:
    """The benchmark scripts, in name order (or those named)."""
    found = sorted(p for p in HERE.glob("*.py") if p.name not in NOT_BENCHMARKS)
    wanted = {name.removesuffix(".py") for name in only}
    unknown = wanted - {p.stem for p in found}
    if unknown:
        raise SystemExit(f"no benchmark named {sorted(unknown)}; there are {[p.stem for p in found]}")
    return [p for p in found if not wanted or p.stem in wanted]


def run_one(script: Path, database: str, url: str | None, quick: bool, timeout: float) -> list[Row]:
    """Run one benchmark in its own process; its rows, or one failed row saying why there are none."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [sys.executable, str(script), "--json", str(out), *(["--quick"] if quick else [])]
        command += ["--database-url", url] if url else []
        print(f"=== {script.name} on {database}", flush=True)
        began = time.perf_counter()
        try:
            done = subprocess.run(command, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return [Row(f"{script.name} did not finish in {timeout:.0f} s", 0, None, "", "finishes", False)]
        print(f"=== {script.name} on {database}: {time.perf_counter() - began:.0f} s\n", flush=True)
        if not out.exists():
            return [Row(f"{script.name} crashed (exit {done.returncode})", 0, None, "", "finishes", False)]
        return [Row.of({**row, "database": database}) for row in json.loads(out.read_text())]


def postgres_bin(mode: str) -> Path | None:
    """PostgreSQL's binaries if it is wanted and installed, else None."""
    pg_bin = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
    if mode == "no" or (mode == "auto" and not (pg_bin / "initdb").exists()):
        return None
    return pg_bin


def new_database(server_url: str, name: str) -> str:
    """A new empty database on the cluster, for one benchmark."""
    with psycopg.connect(server_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # a fixed name: bench_<script>
    return server_url.rsplit("/", 1)[0] + "/" + name


def write_results(
    path: Path, rows: list[Row], described: dict[str, str], command: str, started: datetime, took: float
) -> None:
    """bench/RESULTS.md: when, on what, how, and the table."""
    lines = [
        "# Benchmark results",
        "",
        f"`{command}` from {started:%Y-%m-%d %H:%M} UTC, {took / 60:.0f} min. Each figure is "
        "measured against a baseline taken in the same run; `ratio` is value / baseline. PostgreSQL is a "
        "fresh cluster for each benchmark, with its default settings (fsync on), on the same machine.",
        "",
        *[f"- {key}: {value}" for key, value in described.items()],
        "",
        *markdown(rows),
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> int:
    """Run the benchmarks, print the table, write RESULTS.md; 1 if a goal was missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="benchmark names, e.g. read audit")
    parser.add_argument("--postgres", choices=["auto", "yes", "no"], default="auto")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the runner, not the machine")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark run, at most")
    args = parser.parse_args()
    scripts, began, started, rows = benchmarks(args.only), time.perf_counter(), datetime.now(UTC), []
    described = machine(None)
    pg_bin = postgres_bin(args.postgres)
    for script in scripts:
        rows += run_one(script, "SQLite", None, args.quick, args.timeout)
        if pg_bin is not None and script.name not in SQLITE_ONLY:
            # A cluster of its own for each benchmark, so that none runs under the autovacuum and
            # checkpoints that follow another's million rows.
            with throwaway_postgres(pg_bin) as (server_url, version):
                described = machine(version)
                url = new_database(server_url, f"bench_{script.stem}")
                rows += run_one(script, "PostgreSQL", url, args.quick, args.timeout)
    print("\n".join(text_table(rows)))
    command = "python bench/run.py " + " ".join(sys.argv[1:])
    write_results(args.output, rows, described, command.strip(), started, time.perf_counter() - began)
    print(f"\nwritten to {args.output}")
    return 1 if any(row.passed is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
