"""The one third-party script the portal serves, panva's jose (npm), bundled into
`broker/portal/static/vendor/jose.js`: rebuilt here from the package `npm ci` installs, pinned in
`tests/clients/node/package-lock.json`, it must come out byte for byte as committed. So the vendored
file is exactly that release, bundled by that esbuild, and nothing else."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "clients" / "node"
VENDORED = ROOT / "broker" / "portal" / "static" / "vendor" / "jose.js"


def test_the_vendored_jose_is_the_pinned_release_bundled_as_committed(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "esbuild").exists():
        pytest.fail("node or esbuild is missing: `make test` runs `npm ci` in tests/clients/node")
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/jose"]["version"]
    assert VENDORED.read_text().startswith(f"/* jose {pinned} (https://github.com/panva/jose, MIT License")
    rebuilt = tmp_path / "jose.js"
    done = subprocess.run(
        [node, "vendor/build.mjs", str(rebuilt)], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert rebuilt.read_bytes() == VENDORED.read_bytes(), (
        "rebuild it: node tests/clients/node/vendor/build.mjs"
    )
    assert "CompactEncrypt" in VENDORED.read_text() and "importJWK" in VENDORED.read_text()
