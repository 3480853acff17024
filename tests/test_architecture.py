"""The layer contract covers the whole broker, and holds.

`lint-imports` (run by `make lint`) checks the contracts in pyproject.toml; these tests keep the
contract honest: a module or package added to `broker/` outside every layer would be unconstrained,
and a layer named in the contract that no longer exists would pin nothing.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layer_members() -> set[str]:
    (layers,) = (c for c in _contracts() if c["id"] == "layers")
    members: set[str] = set()
    for layer in layers["layers"]:  # type: ignore[attr-defined]
        members.update(name.strip() for name in re.split(r"[|:]", str(layer)))
    return members


def _broker_children() -> set[str]:
    return _children(ROOT / "broker")


def test_every_module_of_the_broker_is_in_a_layer() -> None:
    missing = _broker_children() - _layer_members()
    assert not missing, f"broker modules outside the layer contract (pyproject.toml): {sorted(missing)}"


def test_every_layer_of_the_contract_exists() -> None:
    gone = _layer_members() - _broker_children()
    assert not gone, f"the layer contract names modules broker/ no longer has: {sorted(gone)}"


def _contract(contract_id: str) -> dict[str, Any]:
    (found,) = (c for c in _contracts() if c["id"] == contract_id)
    return found


def _children(package: Path) -> set[str]:
    return {
        path.stem
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }


def test_the_authlib_contract_names_every_module_of_the_broker_but_oauth() -> None:
    sources = {str(m).removeprefix("broker.") for m in _contract("authlib-in-oauth")["source_modules"]}
    broker_sources = {m for m in sources if "." not in m and m not in {"vault", "clients"}}
    assert broker_sources == _broker_children() - {"oauth"}


def test_the_tlog_contract_forbids_every_other_part_of_the_clients() -> None:
    forbidden = set(_contract("server-uses-only-tlog")["forbidden_modules"])
    auditor = {f"clients.auditor.{m}" for m in _children(ROOT / "clients" / "auditor") - {"tlog"}}
    # `clients` is a namespace package (PEP 420), each of its folders a distribution of its own
    others = {
        f"clients.{p.name}" for p in (ROOT / "clients").iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    others.discard("clients.auditor")
    assert forbidden == auditor | others
