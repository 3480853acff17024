"""consentry-audit, installed alone from its wheel, verifies a live server's log without its code."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from importlib.metadata import distributions, version
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

import clients.auditor
from clients.auditor import AuditorClient, verify_log

if TYPE_CHECKING:  # pytest loads conftest itself; its class only annotates the fixture here
    from clients.auditor.tests.conftest import Server


def _audit(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("consentry-audit", path=str(Path(sys.executable).parent))
    assert command is not None, "the wheel installs the consentry-audit command"
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=120)


def test_the_auditor_is_the_wheel_installed_without_any_of_the_server() -> None:
    site = Path(sys.prefix).resolve()
    assert Path(clients.auditor.__file__).resolve().is_relative_to(site), clients.auditor.__file__
    for server_side in ("broker", "vault", "migrations", "clients.brand", "fastapi", "sqlalchemy"):
        assert importlib.util.find_spec(server_side) is None, f"{server_side} is importable here"
    installed = {dist.metadata["Name"].lower() for dist in distributions()}
    assert "consentry-audit" in installed
    assert not installed & {"consentry", "consentry-brand", "fastapi", "sqlalchemy"}, installed


def test_it_prints_its_version() -> None:
    printed = _audit("--version")
    assert printed.returncode == 0
    assert printed.stdout == f"consentry-audit {version('consentry-audit')} (speaks Consentry API 1)\n"


def test_it_verifies_the_whole_log_and_replays_its_reads(server: Server) -> None:
    verified = _audit("verify", "--url", server.url, "--json")
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["verified"] is True and report["problems"] == []
    assert report["entries"] >= 5 and report["tree_size"] == report["entries"]
    replayed = _audit("check-reads", "--url", server.url, "--key", report["key"], "--json")
    assert replayed.returncode == 0, replayed.stderr
    reads = json.loads(replayed.stdout)
    assert reads["verified"] is True and reads["reads"] >= 1 and reads["violations"] == []


def test_it_checks_a_checkpoint_file_offline(server: Server, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        key = http.get("/v1/audit/key").text.strip()
        (tmp_path / "checkpoint").write_text(http.get("/v1/audit/checkpoint").text)
    checked = _audit("checkpoint", "verify", str(tmp_path / "checkpoint"), "--key", key, "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["size"] >= 5
    other = key[:-8] + ("A" if key[-8] != "A" else "B") + key[-7:]
    assert _audit("checkpoint", "verify", str(tmp_path / "checkpoint"), "--key", other).returncode != 0


def test_its_python_api_verifies_the_log_too(server: Server) -> None:
    with AuditorClient(server.url, server.token) as client:
        report = verify_log(client)
    assert report.verified, report.problems
