"""`make bench`'s runner on tiny sizes: every row a benchmark reports reaches one table, printed and
written to RESULTS.md with the machine it ran on. (A smoke test of the plumbing, not a measurement.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.slow  # about 5 s: the vault benchmark, quick, on SQLite only
def test_the_runner_gathers_every_row_into_one_table_and_results_file(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    command = [sys.executable, str(BENCH / "run.py"), "--quick", "--only", "vault", "--postgres", "no",
               "--output", str(results)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr  # 1: a goal missed (tiny sizes on a busy machine)
    written = results.read_text()
    for figure in ("seal full profile", "open full profile", "KEK rotation through SQLite"):
        assert figure in done.stdout.split("=== vault.py on SQLite:")[-1], figure  # the gathered table
        row = next(line for line in written.splitlines() if figure in line)
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        _, database, value, baseline, ratio, goal, verdict = cells
        assert database == "SQLite" and value and baseline and ratio.endswith("x") and goal
        assert verdict in ("pass", "**FAIL**")
    assert "| figure | database | value | baseline | ratio | goal | pass/fail |" in written
    for described in ("- CPU: ", "- cores: ", "- memory: ", "- Python: ", "- SQLite: ", "- PostgreSQL: "):
        assert described in written


def test_the_runner_refuses_an_unknown_benchmark(tmp_path: Path) -> None:
    output = tmp_path / "R.md"
    command = [sys.executable, str(BENCH / "run.py"), "--only", "nonesuch", "--output", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "no benchmark named ['nonesuch']" in done.stderr
    assert not output.exists()


@pytest.mark.slow  # about 5 s: two servers started, tiny rounds
def test_the_floors_instrument_answers_as_the_broker_would_and_both_rows_print(tmp_path: Path) -> None:
    # floors.py refuses to report a figure unless the floor app decrypted the profile and signed a token
    output = tmp_path / "floors.json"
    command = [sys.executable, str(BENCH / "floors.py"), "--quick", "--json", str(output)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr  # reported rows only: nothing to miss
    rows = {row["figure"].split(" at its floor")[0]: row for row in json.loads(output.read_text())}
    assert set(rows) == {"audited read", "client-credentials token"}
    assert all(row["value"] > 0 and row["baseline"] > 0 and row["passed"] is None for row in rows.values())
