"""`consentry-audit receipt verify`: a receipt bundle from the API verifies offline (exit 0); a
tampered one fails (exit 1); a call that cannot be checked as asked is a usage error (exit 2)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OKPKey
from support.core import STRONG_PASSWORD, FakeClock, bearer
from support.oauth import BrandCredentials, authorized
from support.receipts import foreign_checkpoint
from typer.testing import CliRunner

from broker.runtime import Runtime
from clients.auditor.cli import app

runner = CliRunner()


class Files:
    """A verified-looking setup: the bundle, the broker's JWKS and the log's key, as files."""

    def __init__(self, tmp: Path, client: TestClient, bundle: dict[str, Any], other: dict[str, Any]) -> None:
        self.tmp, self.bundle, self.other = tmp, bundle, other  # other: another receipt of the same grant
        self.jwks = tmp / "jwks.json"
        self.jwks.write_text(client.get("/.well-known/jwks.json").text)
        self.key = client.get("/v1/audit/key").text.strip()

    def write(self, bundle: dict[str, Any] | None = None, name: str = "receipt.json") -> Path:
        path = self.tmp / name
        path.write_text(json.dumps(bundle if bundle is not None else self.bundle))
        return path

    def verify(self, bundle: dict[str, Any] | None = None, *extra: str, jwks: bool = True) -> Any:
        args = ["receipt", "verify", str(self.write(bundle)), "--key", self.key]
        return runner.invoke(app, [*args, *(["--jwks", str(self.jwks)] if jwks else []), *extra])


def receipts(client: TestClient, customer: str) -> list[dict[str, Any]]:
    listed = client.get("/v1/me/receipts", headers=bearer(customer))
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


@pytest.fixture
def files(
    tmp_path: Path,
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
) -> Files:
    tokens = authorized(client, brand, offer)
    grant_id = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth())
    revoked = client.delete(f"/v1/me/grants/{grant_id.json()['grant_id']}", headers=bearer(customer))
    assert revoked.status_code == 204
    withdrawn, given = receipts(client, customer)
    assert (withdrawn["event"], given["event"]) == ("withdrawn", "given")
    return Files(tmp_path, client, given, withdrawn)


def test_the_cli_verifies_a_receipt_downloaded_from_the_api_end_to_end(
    files: Files, client: TestClient, customer: str
) -> None:
    download = client.get(f"/v1/me/receipts/{files.bundle['id']}?download=true", headers=bearer(customer))
    path = files.tmp / "download.json"
    path.write_bytes(download.content)
    audit = str(Path(sys.executable).parent / "consentry-audit")
    args = [audit, "receipt", "verify", str(path), "--key", files.key, "--jwks", str(files.jwks), "--json"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True and report["problems"] == []
    assert report["event"] == "given" and report["key_source"] == "jwks"
    assert report["audit_index"] == files.bundle["receipt"]["audit"]["index"]


def test_a_verified_receipt_is_summarised(files: Files) -> None:
    result = files.verify()
    assert result.exit_code == 0, result.output
    assert "consent receipt verified: given" in result.stdout
    assert files.bundle["receipt"]["record_id"] in result.stdout


def flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def test_a_flipped_payload_byte_fails(files: Files) -> None:
    header, payload, signature = files.bundle["jws"].split(".")
    tampered = {**files.bundle, "jws": ".".join([header, flip(payload, len(payload) // 2), signature])}
    result = files.verify(tampered)
    assert result.exit_code == 1
    assert "receipt verification failed" in result.stderr


def test_a_changed_decoded_copy_fails(files: Files) -> None:
    receipt = {**files.bundle["receipt"], "retention_days": 3650}
    result = files.verify({**files.bundle, "receipt": receipt})
    assert result.exit_code == 1
    assert "differs from the signed one" in result.stderr


def test_another_entry_swapped_in_fails(files: Files) -> None:
    other = files.other
    result = files.verify({**files.bundle, "audit_entry": other["audit_entry"]})
    assert result.exit_code == 1
    assert "names audit entry" in " ".join(result.stderr.split())


def test_an_entry_with_the_receipts_index_but_other_bytes_fails(files: Files) -> None:
    other = files.other
    swapped = {**other["audit_entry"], "index": files.bundle["audit_entry"]["index"]}
    result = files.verify({**files.bundle, "audit_entry": swapped})
    assert result.exit_code == 1
    assert "do not hash to the leaf hash" in " ".join(result.stderr.split())


def test_an_altered_proof_fails(files: Files) -> None:
    entry = files.bundle["audit_entry"]
    assert entry["inclusion_proof"], "the log holds more than one entry, so the proof has a node"
    proof = [base64.b64encode(bytes(32)).decode(), *entry["inclusion_proof"][1:]]
    result = files.verify({**files.bundle, "audit_entry": {**entry, "inclusion_proof": proof}})
    assert result.exit_code == 1
    assert "inclusion proof does not lead" in " ".join(result.stderr.split())


def test_a_checkpoint_signed_by_another_key_fails(files: Files) -> None:
    result = files.verify({**files.bundle, "checkpoint": foreign_checkpoint(files.bundle["checkpoint"])})
    assert result.exit_code == 1
    assert "does not verify with the pinned log key" in " ".join(result.stderr.split())


def test_a_receipt_forged_with_another_key_in_the_bundle_fails(files: Files) -> None:
    kid = files.bundle["signing_key"]["kid"]
    forger = OKPKey.generate_key("Ed25519", parameters={"kid": kid})
    claims = {**files.bundle["receipt"], "retention_days": 3650}
    token = jwt.encode(
        {"alg": "Ed25519", "typ": "consent-receipt+jwt", "kid": kid}, claims, forger, algorithms=["Ed25519"]
    )
    forged = {**files.bundle, "jws": token, "receipt": claims, "signing_key": forger.as_dict(private=False)}
    result = files.verify(forged)
    assert result.exit_code == 1
    assert "differs from key" in " ".join(result.stderr.split())
    # Nor is the forger's key trusted by thumbprint unless that very thumbprint was pinned.
    real = OKPKey.import_key(files.bundle["signing_key"]).thumbprint()
    assert files.verify(forged, "--thumbprint", real, jwks=False).exit_code == 1


def test_the_bundles_own_key_is_trusted_only_by_a_pinned_thumbprint(files: Files) -> None:
    empty = files.tmp / "empty-jwks.json"
    empty.write_text('{"keys": []}')
    unpinned = runner.invoke(
        app, ["receipt", "verify", str(files.write()), "--key", files.key, "--jwks", str(empty)]
    )
    assert unpinned.exit_code == 1
    assert "not in the JWKS given" in " ".join(unpinned.stderr.split())
    thumbprint = OKPKey.import_key(files.bundle["signing_key"]).thumbprint()
    pinned = files.verify(None, "--thumbprint", thumbprint, "--json", jwks=False)
    assert pinned.exit_code == 0, pinned.output
    assert json.loads(pinned.stdout)["key_source"] == "pinned thumbprint"


def test_a_receipt_stays_verifiable_after_its_key_is_rotated_out(
    files: Files, client: TestClient, customer: str, runtime: Runtime, clock: FakeClock
) -> None:
    signing = runtime.oauth.signing
    signing.rotate(max_token_lifetime=timedelta(minutes=10))
    clock.advance(minutes=11)
    _, retired = signing.rotate(max_token_lifetime=timedelta(minutes=10))
    assert files.bundle["signing_key"]["kid"] in retired
    live = files.tmp / "live-jwks.json"
    live.write_text(client.get("/.well-known/jwks.json").text)
    refused = runner.invoke(
        app, ["receipt", "verify", str(files.write()), "--key", files.key, "--jwks", str(live)]
    )
    assert refused.exit_code == 1, "the live JWKS no longer has the key"
    assert files.verify().exit_code == 0, "an archived JWKS still verifies it"
    thumbprint = OKPKey.import_key(files.bundle["signing_key"]).thumbprint()
    again = client.get("/v1/me/receipts/" + files.bundle["id"], headers=bearer(customer))
    assert again.json()["signing_key"] == files.bundle["signing_key"], "the bundle keeps the key"
    assert files.verify(again.json(), "--thumbprint", thumbprint, jwks=False).exit_code == 0


def test_the_jwks_can_be_fetched_from_a_url(files: Files, client: TestClient) -> None:
    jwks = client.get("/.well-known/jwks.json").json()

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            return httpx.Response(200, json=jwks)
        return httpx.Response(404)

    args = ["receipt", "verify", str(files.write()), "--key", files.key, "--jwks"]
    url = "https://broker.example/.well-known/jwks.json"
    result = runner.invoke(app, [*args, url], obj=httpx.MockTransport(server))
    assert result.exit_code == 0, result.output
    missing = runner.invoke(app, [*args, url + "x"], obj=httpx.MockTransport(server))
    assert missing.exit_code == 2, "a JWKS that cannot be fetched is not a failed receipt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jwks", "/nonexistent/jwks.json"], "cannot load a JWKS"),
        ([], "which signing keys to trust"),
    ],
)
def test_usage_errors_exit_2(files: Files, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["receipt", "verify", str(files.write()), "--key", files.key, *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_missing_file_is_a_usage_error(files: Files) -> None:
    result = runner.invoke(
        app,
        ["receipt", "verify", str(files.tmp / "nope.json"), "--key", files.key, "--jwks", str(files.jwks)],
    )
    assert result.exit_code == 2


def test_a_file_that_is_not_a_bundle_fails(files: Files) -> None:
    assert files.verify({"hello": "world"}).exit_code == 1
    path = files.tmp / "junk.json"
    path.write_text("not json")
    args = ["receipt", "verify", str(path), "--key", files.key, "--jwks", str(files.jwks)]
    assert runner.invoke(app, args).exit_code == 1


def test_a_renewal_gets_a_receipt_that_verifies_offline(
    tmp_path: Path,
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    clock: FakeClock,
) -> None:
    tokens = authorized(client, brand, offer)
    grant_id = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth())
    clock.advance(days=offer["grant_duration_days"] - 3)  # inside the renewal window
    session = client.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
    token = session.json()["token"]
    renewed = client.post(f"/v1/me/grants/{grant_id.json()['grant_id']}/renewal", headers=bearer(token))
    assert renewed.status_code == 200, renewed.text
    latest = receipts(client, token)[0]
    assert latest["event"] == "renewed" and latest["receipt"]["state"] == "given"
    assert latest["audit_entry"]["kind"] == "grant.renewed"
    checked = Files(tmp_path, client, latest, latest).verify()
    assert checked.exit_code == 0, checked.output
