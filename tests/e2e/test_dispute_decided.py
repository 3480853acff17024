"""A dispute that ends in an auditor's decision, end to end on a live server: the brand (with the SDK)
delivers and answers; the customer (in Chromium, by keyboard) disputes, rejects the answer and agrees
to show the file when the brand escalates; the auditor (with `consentry-audit`) lists, reads, decides
and verifies the signed decision offline; the portal shows the decision and its receipt. Then the
customer stops sharing, the brand acknowledges the end with the SDK, and the termination receipt and
the acknowledgement's receipt verify offline."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from support.browser import serious_violations
from support.core import STRONG_PASSWORD, cli_env
from support.http_customer import customer_consents
from support.oauth import BrandCredentials, brand_token, create_brand_with_cli, publish_offer

from clients.brand import ConsentryClient

REDIRECT = "https://grocer.example/callback"
REASONS = "The voucher was refused at the till twice and the brand offered no working code."


def consentry_audit(*args: str) -> subprocess.CompletedProcess[str]:
    """The auditor's command as installed, in a process of its own."""
    command = [str(Path(sys.executable).parent / "consentry-audit"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_a_dispute_is_escalated_decided_and_the_decision_verified_offline(
    server: str, page: Page, tmp_path: Path, fresh_database_url: str, artifacts: Path
) -> None:
    data_dir = tmp_path / "var"
    brand = BrandCredentials(*create_brand_with_cli(data_dir, fresh_database_url, "Green Grocer", REDIRECT))
    with httpx.Client(base_url=server, timeout=30) as http:
        offer = publish_offer(http, brand_token(http, brand))
    sdk = ConsentryClient(
        server, client_id=brand.client_id, client_secret=brand.client_secret, redirect_uri=REDIRECT
    )
    request = sdk.authorization_url(offer_id=offer["id"])
    callback = customer_consents(server, request.url, data_dir)
    session = sdk.handle_callback(callback, expected_state=request.state, code_verifier=request.code_verifier)
    grant_id = session.tokens.grant_id
    assert grant_id is not None
    obligation = sdk.deliver_value(
        grant_id, kind="voucher", amount="10.00", currency="EUR", redemption="GROCER-10"
    )

    # The customer disputes in the portal, by keyboard.
    page.goto(f"{server}/portal/login")
    page.get_by_label("Email").fill("ada@example.org")
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{server}/portal/grants/{grant_id}")
    page.get_by_label("What is wrong with it?").fill("the code was refused at the till")
    page.get_by_label("What is wrong with it?").press("Enter")
    expect(page.get_by_text("disputed", exact=True)).to_be_visible()

    # The brand answers; the customer does not accept it; the brand asks an auditor.
    sdk.answer_dispute(grant_id, obligation.id, answer="It works now, try again.")
    page.reload()
    page.get_by_role("button", name="Their answer does not settle it").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Their answer does not settle it")).to_have_count(0)
    escalation = sdk.escalate_dispute(grant_id, obligation.id)
    assert escalation.status == "awaiting_customer"
    assert sdk.escalate_dispute(grant_id, obligation.id).id == escalation.id, "asking twice is one escalation"
    page.reload()
    expect(page.get_by_text("Green Grocer asked an auditor to decide.")).to_be_visible()
    assert serious_violations(page) == []
    page.screenshot(path=artifacts / "dispute-escalated.png", full_page=True)
    page.get_by_label("Show the auditors the dispute file").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Ask an auditor to decide").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("An auditor is deciding your dispute")).to_be_visible()

    # The auditor lists, reads, decides and checks the decision with the CLI alone.
    consentry = str(Path(sys.executable).parent / "consentry")
    made = subprocess.run(
        [consentry, "auditors", "create", "--name", "Independent Audit Ltd"],
        env=cli_env(data_dir, fresh_database_url), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    token = json.loads(made.stdout)["token"]
    auth = ["--url", server, "--token", token]
    listed = consentry_audit("disputes", "list", *auth, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [item["id"] for item in json.loads(listed.stdout)["items"]] == [str(escalation.id)]
    decided = consentry_audit(
        "disputes", "decide", str(escalation.id), *auth, "--outcome", "upheld", "--reasons", REASONS
    )
    assert decided.returncode == 0, decided.stderr
    assert "Decided: upheld" in decided.stdout
    again = consentry_audit(
        "disputes", "decide", str(escalation.id), *auth, "--outcome", "rejected", "--reasons", REASONS
    )
    assert again.returncode == 2 and "409" in again.stderr, "a decision is final"
    key = tmp_path / "log.key"
    key.write_text(httpx.get(f"{server}/v1/audit/key").text)
    bundle = tmp_path / "decision.json"
    checks = ["--key", f"@{key}", "--jwks", f"{server}/.well-known/jwks.json"]
    shown = consentry_audit(
        "disputes", "show", str(escalation.id), *auth, *checks, "--save-receipt", str(bundle), "--json"
    )
    assert shown.returncode == 0, shown.stderr
    shown_json = json.loads(shown.stdout)
    assert (
        shown_json["verification"] == []
        and shown_json["file"]["dispute"]["reason"] == "the code was refused at the till"
    )
    verified = consentry_audit("receipt", "verify", str(bundle), *checks)
    assert verified.returncode == 0, verified.stderr + verified.stdout

    # The brand sees the decision; the customer sees it and its receipt in the portal.
    (owed,) = sdk.list_value(grant_id)
    assert owed.state == "owed" and owed.escalation is not None and owed.escalation.decision is not None
    assert owed.escalation.decision.outcome == "upheld" and owed.escalation.decision.reasons == REASONS
    page.reload()
    expect(page.get_by_text("An auditor upheld your dispute")).to_be_visible()
    expect(page.get_by_text(f"Their reasons: {REASONS}")).to_be_visible()
    expect(page.get_by_text("an auditor's decision")).to_be_visible()
    assert serious_violations(page) == []

    # The customer stops sharing; the brand acknowledges; both receipts verify offline.
    page.get_by_label("I understand Green Grocer can no longer read my data, at once.").check()
    page.get_by_role("button", name="Stop sharing").last.click()
    expect(page.get_by_text("Green Grocer has not confirmed it stopped yet")).to_be_visible()
    ended = sdk.get_grant(grant_id)
    acknowledged = sdk.acknowledge_end(
        grant_id,
        stopped_processing_at=ended.status_changed_at,
        deletion_by=ended.status_changed_at + timedelta(days=1),
    )
    assert acknowledged.on_time and acknowledged.method == "client-authentication"
    page.reload()
    expect(page.get_by_text("Green Grocer confirmed on")).to_be_visible()
    assert serious_violations(page) == []
    with httpx.Client(base_url=server, timeout=30) as http:
        me = http.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD}).json()[
            "token"
        ]
        listed = http.get(
            f"/v1/me/receipts?grant_id={grant_id}", headers={"Authorization": f"Bearer {me}"}
        ).json()
    by_event = {item["event"]: item for item in listed["items"]}
    for event in ("withdrawn", "end-acknowledged"):
        receipt = tmp_path / f"{event}.json"
        receipt.write_text(json.dumps(by_event[event]))
        checked = consentry_audit("receipt", "verify", str(receipt), *checks)
        assert checked.returncode == 0, checked.stderr + checked.stdout
    sdk.close()
