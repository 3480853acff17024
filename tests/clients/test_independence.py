"""The auditor's code shares nothing with the server's: it must be able to verify a log it does not trust."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import clients.auditor

ALLOWED = {
    "httpx",
    "cryptography",
    "pydantic",
    "pydantic_core",
    "typer",
    "rich",
    "clients",
    "joserfc",  # receipts are JWS: verified with a JOSE library, never hand-rolled JOSE
}  # pydantic_core: pydantic's own
SERVER_SIDE = {"vault", "broker", "migrations", "sqlmodel", "sqlalchemy", "fastapi", "starlette", "authlib"}


def test_the_auditor_package_imports_only_its_allowed_libraries() -> None:
    root = Path(clients.auditor.__file__).parent.parent
    assert list(root.rglob("*.py")), root
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED or top in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_loading_the_auditor_loads_no_server_code() -> None:
    modules = "clients.auditor.cli, clients.auditor.verify, clients.auditor.replay, clients.auditor.api"
    probe = (
        f"import sys, {modules}\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {SERVER_SIDE!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"
