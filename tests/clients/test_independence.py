"""The clients share nothing with the server's code: the auditor must be able to verify a log it does not
trust, and the brand SDK must install and run without the server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import clients.auditor
import clients.auditor.tlog
import clients.brand

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
BRAND_ALLOWED = {"httpx", "pydantic", "pydantic_core", "clients"}  # no cryptography, typer or rich either
BRAND_EXTRAS = {"sealed.py": {"joserfc"}}  # the `self-custody` extra, imported when first needed
SERVER_SIDE = {"vault", "broker", "migrations", "sqlmodel", "sqlalchemy", "fastapi", "starlette", "authlib"}


def sources(root: Path) -> list[Path]:
    """The modules of a client distribution: not its tests (`tests/`, which may use pytest)."""
    return [path for path in root.rglob("*.py") if "tests" not in path.relative_to(root).parts]


def imported_modules(path: Path) -> set[str]:
    """The modules a module imports (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_top_level_names(path: Path) -> set[str]:
    """The top-level packages a module imports (absolute imports only)."""
    return {name.split(".")[0] for name in imported_modules(path)}


def test_the_auditor_package_imports_only_its_allowed_libraries() -> None:
    root = Path(clients.auditor.__file__).parent
    paths = sources(root)
    assert len(paths) > 5, root
    for path in paths:
        for top in imported_top_level_names(path):
            assert top in ALLOWED or top in sys.stdlib_module_names, f"{path.name} imports {top}"


def test_the_transparency_log_primitive_needs_only_the_standard_library_but_for_its_ed25519_keys() -> None:
    root = Path(clients.auditor.tlog.__file__).parent
    paths = list(root.glob("*.py"))
    assert len(paths) >= 5, root
    for path in paths:
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top == "clients":  # within the primitive only: the server imports it without the rest
                assert name.startswith("clients.auditor.tlog"), f"{path.name} imports {name}"
            elif top == "cryptography":
                assert path.name == "ed25519.py", f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names, f"{path.name} imports {name}"


def test_the_example_apps_use_the_sdk_and_never_the_servers_code() -> None:
    root = Path(clients.brand.__file__).parent.parent / "examples"
    paths = sources(root)
    assert len(paths) >= 4, root
    for path in paths:
        server = imported_top_level_names(path) & {"vault", "broker", "migrations"}
        assert not server, f"{path.name} imports {server}"


def test_the_brand_sdk_imports_only_httpx_pydantic_and_the_standard_library() -> None:
    root = Path(clients.brand.__file__).parent
    paths = sources(root)
    assert len(paths) > 5, root
    for path in paths:
        for top in imported_top_level_names(path):
            allowed = BRAND_ALLOWED | BRAND_EXTRAS.get(path.name, set())
            assert top in allowed or top in sys.stdlib_module_names, f"{path.name} imports {top}"
        assert "clients.auditor" not in path.read_text(), path.name


@pytest.mark.parametrize(
    "modules",
    [
        "clients.auditor.cli, clients.auditor.verify, clients.auditor.replay, clients.auditor.api",
        "clients.brand, clients.brand.client, clients.brand.async_client, clients.brand.webhooks",
    ],
)
def test_loading_a_client_loads_no_server_code(modules: str) -> None:
    probe = (
        f"import sys, {modules}\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {SERVER_SIDE!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"


def test_the_server_loads_the_transparency_log_primitive_alone() -> None:
    """The broker imports `clients.auditor.tlog` only: loading the app must not load the auditor's HTTP
    client, verifier, replay or receipt checker (the package's names load when first used)."""
    probe = "import sys, broker.app\nprint(sorted(m for m in sys.modules if m.startswith('clients.')))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    modules = eval(loaded.stdout)  # noqa: S307 (a list of strings we printed ourselves)
    assert modules and all(m == "clients.auditor" or m.startswith("clients.auditor.tlog") for m in modules)


def test_the_auditor_package_exports_exactly_what_it_loads_lazily() -> None:
    exported = set(clients.auditor.__all__)
    assert exported == set(clients.auditor._EXPORTS)
    for name in exported:
        assert getattr(clients.auditor, name) is not None
    with pytest.raises(AttributeError):
        _ = clients.auditor.no_such_name  # type: ignore[attr-defined]
