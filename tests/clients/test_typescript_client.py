"""A brand that does not write Python: a TypeScript client generated from `openapi/openapi.json` with
openapi-typescript, driven by openapi-fetch (both from npm, unmodified; installed by `make test`),
type-checked by `tsc` against the document and run with Node against a live server.

`tests/clients/node/brand.ts` takes a brand token, publishes an offer, lists the brand's grants and
reads a page of its access log. The grant it finds was made a moment before by the Python SDK, and the
access-log entry it reads is the SDK's profile read: the two clients see one broker.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from support.core import live_server
from support.http_customer import customer_consents
from support.oauth import OFFER, REDIRECT, create_brand_with_cli

from broker.errors import PROBLEM_BASE
from clients.brand import ConsentryClient

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).parent / "node"
BIN = NODE_DIR / "node_modules" / ".bin"


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """brand.ts compiled against a client freshly generated from the committed document."""
    node = shutil.which("node")
    if node is None or not (BIN / "openapi-typescript").exists() or not (BIN / "tsc").exists():
        pytest.fail("openapi-typescript or tsc is missing: `make test` runs `npm ci` in tests/clients/node")
    work = tmp_path_factory.mktemp("typescript")
    for name in ("brand.ts", "tsconfig.json", "package.json"):
        shutil.copy(NODE_DIR / name, work / name)
    (work / "node_modules").symlink_to(NODE_DIR / "node_modules")
    # Request bodies share their schema with answers (one schema a model): a field with a default is
    # optional to send, so the generator must not make defaults required.
    spec = ROOT / "openapi" / "openapi.json"
    generated = work / "generated" / "consentry.d.ts"
    _run(BIN / "openapi-typescript", spec, "--default-non-nullable", "false", "-o", generated, cwd=work)
    _run(BIN / "tsc", "-p", "tsconfig.json", cwd=work)
    return work / "build" / "brand.js"


@pytest.mark.slow
def test_the_generated_typescript_client_publishes_lists_grants_and_reads_the_access_log(
    compiled: Path, tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        with ConsentryClient(base, client_id=client_id, client_secret=secret, redirect_uri=REDIRECT) as sdk:
            offer = sdk.publish_offer(OFFER)
            asked = sdk.authorization_url(offer_id=offer.id)
            callback = customer_consents(base, asked.url, data_dir)
            session = sdk.handle_callback(
                callback, expected_state=asked.state, code_verifier=asked.code_verifier
            )
            sdk.read_profile(session)
        out = json.loads(_run("node", compiled, base, client_id, secret, cwd=compiled.parent))
    assert out["offer"]["title"] == "Seasonal boxes, picked for you" and out["offer"]["version"] == 1
    assert out["grants"] == [{"id": str(session.grant_id), "status": "active", "offer_id": str(offer.id)}]
    log = out["access_log"]
    assert log["tree_size"] > 0 and re.fullmatch(r"[^+]+\+[0-9a-f]{8}\+\S+", log["verifier_key"])
    assert "profile.read" in log["kinds"], log
    assert out["missing"]["status"] == 404 and out["missing"]["type"] == PROBLEM_BASE + "not-found"
