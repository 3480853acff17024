"""The receipt of an account's deletion: what `DELETE /v1/me` answers with, what it says (what was
destroyed, the grants it ended with the pairwise subject each brand knows, the brands' deletion
duties, what stays), that it names nobody, and that `consentry-audit receipt verify` checks it offline
and refuses a flipped byte, an edited copy and a checkpoint of another log."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import FakeClock, bearer
from support.oauth import BrandCredentials, authorized, brand_token, grant_id_of, parse_form, publish_offer
from typer.testing import CliRunner

from broker.audit.models import AuditEntry
from broker.receipts.models import DeletionReceipt
from broker.runtime import Runtime
from clients.auditor import format_checkpoint, generate_private_key, parse_checkpoint, parse_private_key
from clients.auditor.cli import app
from clients.auditor.receipt import verify_receipt
from clients.auditor.tlog import parse_verifier_key

runner = CliRunner()
# The `customer` fixture's profile: none of it may be in the receipt.
PROFILE_VALUES = ["ada@example.org", "Ada", "vegan", "nut_allergy", "1990-12-10"]


def _deleted(
    client: TestClient, customer: str, brand: BrandCredentials, rival: BrandCredentials
) -> dict[str, Any]:
    """Ada grants the brand (live) and the rival (then revokes it herself), then deletes her account."""
    live = authorized(client, brand, publish_offer(client, brand_token(client, brand)))
    ended = authorized(client, rival, publish_offer(client, brand_token(client, rival)))
    ended_id = grant_id_of(client, rival, ended)
    assert client.delete(f"/v1/me/grants/{ended_id}", headers=bearer(customer)).status_code == 204
    introspected = client.post(
        "/oauth/introspect", data={"token": live["access_token"]}, auth=brand.auth()
    ).json()
    answer = client.delete("/v1/me", headers=bearer(customer))
    assert answer.status_code == 200, answer.text
    bundle: dict[str, Any] = answer.json()
    bundle["_live"], bundle["_ended"], bundle["_sub"] = (
        introspected["grant_id"],
        ended_id,
        introspected["sub"],
    )
    return bundle


def test_deleting_the_account_answers_with_a_receipt_of_what_went_and_what_stays(
    client: TestClient, db: Session, customer: str, brand: BrandCredentials, rival: BrandCredentials
) -> None:
    bundle = _deleted(client, customer, brand, rival)
    receipt = bundle["receipt"]
    assert receipt["version"] == "consentry-deletion-receipt/1" and receipt["event"] == "account-deleted"
    assert bundle["event"] == "account-deleted" and receipt["event_by"] == "customer"
    assert {d["what"] for d in receipt["destroyed"]} >= {
        "profile",
        "email address",
        "sessions",
        "second factors",
    }
    stays = {"value owed to you", "brands' deletion duties", "audit log", "consent receipts"}
    assert {s["what"] for s in receipt["stays"]} == stays
    grants = {g["grant_id"]: g for g in receipt["grants"]}
    live, ended = grants[bundle["_live"]], grants[bundle["_ended"]]
    assert live["ended_by_this_deletion"] is True and live["status"] == "revoked"
    assert ended["ended_by_this_deletion"] is False and ended["brand"]["name"] == "Rival Foods"
    assert live["subject"] == bundle["_sub"]  # the name the brand knows Ada by, to hold it to its duty
    assert live["deletion"]["status"] == "due" and live["deletion"]["due_at"] > receipt["event_time"]
    # The entry it names is the log's account.deleted entry; the receipt is kept, linked to nothing.
    entry = db.exec(select(AuditEntry).where(AuditEntry.index == receipt["audit"]["index"])).one()
    assert entry.kind == "account.deleted" and entry.customer_id is None
    row = db.get(DeletionReceipt, UUID(bundle["id"]))
    assert row is not None and not hasattr(row, "customer_id")
    text = json.dumps(bundle)
    for value in PROFILE_VALUES:
        assert value not in text, value
    assert "cst_" not in text and "customer_id" not in text


def test_the_receipt_verifies_offline_and_a_tampered_one_does_not(
    client: TestClient, runtime: Runtime, customer: str, brand: BrandCredentials, rival: BrandCredentials,
    tmp_path: Path,
) -> None:  # fmt: skip
    jwks = client.get("/.well-known/jwks.json").json()
    key = client.get("/v1/audit/key").text.strip()
    bundle = {k: v for k, v in _deleted(client, customer, brand, rival).items() if not k.startswith("_")}
    assert verify_receipt(bundle, log_key=parse_verifier_key(key), jwks=jwks["keys"]).problems == []
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    path = tmp_path / "deletion.json"
    path.write_text(json.dumps(bundle))
    audit = str(Path(sys.executable).parent / "consentry-audit")
    command = [audit, "receipt", "verify", str(path), "--key", key, "--jwks", str(tmp_path / "jwks.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "deletion receipt verified: account-deleted" in done.stdout and "ended by it" in done.stdout

    def verify(document: dict[str, Any]) -> Any:
        path.write_text(json.dumps(document))
        return runner.invoke(
            app, ["receipt", "verify", str(path), "--key", key, "--jwks", str(tmp_path / "jwks.json")]
        )

    header, payload, signature = bundle["jws"].split(".")
    flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    assert verify({**bundle, "jws": f"{header}.{flipped}.{signature}"}).exit_code == 1
    edited = {**bundle["receipt"], "grants": []}  # a copy that leaves the grants out
    assert verify({**bundle, "receipt": edited}).exit_code == 1
    checkpoint = parse_checkpoint(bundle["checkpoint"].split("\n\n")[0] + "\n")
    impostor = parse_private_key(generate_private_key(checkpoint.origin))  # same log name, another key
    foreign = impostor.sign(format_checkpoint(checkpoint))
    assert verify({**bundle, "checkpoint": foreign}).exit_code == 1
    assert verify(bundle).exit_code == 0


def test_the_goodbye_page_offers_the_receipt_for_an_hour(
    client: TestClient, db: Session, clock: FakeClock, customer: str, brand: BrandCredentials
) -> None:
    authorized(client, brand, publish_offer(client, brand_token(client, brand)))
    page = client.get("/portal/account").text
    csrf = parse_form(page).fields
    form = {**dict(csrf), "confirm": "delete my account"}
    deleted = client.post("/portal/account/delete", data=form, follow_redirects=False)
    assert deleted.status_code == 200 and "Download your deletion receipt" in deleted.text
    link = re.search(r'href="(/portal/deleted/[^"]+/receipt)"', deleted.text)
    assert link is not None
    client.cookies.clear()  # the account, and its session, are gone: the link is the only key
    download = client.get(link.group(1))
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    jwks = client.get("/.well-known/jwks.json").json()["keys"]
    key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
    assert verify_receipt(download.json(), log_key=key, jwks=jwks).problems == []
    assert download.json()["receipt"]["grants"][0]["ended_by_this_deletion"] is True
    clock.advance(minutes=61)
    assert client.get(link.group(1)).status_code == 404
    assert db.exec(select(DeletionReceipt)).all() == []  # past its hour, the broker keeps none
    assert client.get("/portal/deleted/9b0c7a52-55a5-4f0b-9a43-8c1f4e0a7c11/receipt").status_code == 404


def test_a_receipt_whose_type_is_not_a_string_is_reported_not_raised() -> None:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'Ed25519', 'typ': ['deletion-receipt+jwt']})}.{part({})}.AA"
    bundle = {"jws": token, "audit_entry": {"index": 0, "entry": "", "inclusion_proof": []}, "checkpoint": ""}
    key = parse_private_key(generate_private_key("example.org/log")).verifier
    report = verify_receipt(bundle, log_key=key)
    assert not report.verified and "typ" in report.problems[0]
