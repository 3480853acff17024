"""The receipt of an account's deletion: what `DELETE /v1/me` answers with, what it says (what was
destroyed, the grants it ended with the pairwise subject each brand knows, the brands' deletion
duties, what stays), that it names nobody, and that `consentry-audit receipt verify` checks it offline
and refuses a flipped byte, an edited copy and a checkpoint of another log."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select
from support.core import STRONG_PASSWORD, FakeClock, bearer, free_port, log_in, make_settings, sign_up
from support.mail import SmtpServer, code_in, deliver, running_smtp, sink_messages, text_of
from support.oauth import (
    BrandCredentials,
    authorized,
    brand_token,
    grant_id_of,
    parse_form,
    portal_login,
    publish_offer,
)
from support.receipts import attached_receipt, foreign_checkpoint, forgeries
from typer.testing import CliRunner

from broker.audit.entries import Actor, Kind
from broker.audit.models import AuditEntry
from broker.mail.models import MailMessage
from broker.mail.transport import SmtpTransport
from broker.receipts.models import DeletionReceipt
from broker.receipts.schemas import DeletionReceiptPublic
from broker.receipts.service import Receipts
from broker.runtime import Runtime
from broker.settings import Settings
from clients.auditor import format_checkpoint, generate_private_key, parse_checkpoint, parse_private_key
from clients.auditor.cli import app
from clients.auditor.receipt import ReceiptReport, check_still_logged, verify_receipt
from clients.auditor.tlog import (
    Checkpoint,
    Signer,
    consistency_proof,
    leaf_hash,
    open_note,
    parse_verifier_key,
    root_hash,
)
from vault.models import VaultField

runner = CliRunner()
ADA = "ada@example.org"
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
    # Neither brand ever read: what each owed is cancelled, as for any grant ending unread.
    ((voucher,), (rivals,)) = live["value"], ended["value"]
    assert (voucher["kind"], voucher["amount"], voucher["currency"]) == ("voucher", "10.00", "EUR")
    assert voucher["state"] == rivals["state"] == "cancelled"
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

    for what, forged in forgeries(bundle).items():
        assert verify(forged).exit_code == 1, what
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


def test_the_goodbye_page_says_the_receipt_went_by_mail(
    client: TestClient, runtime: Runtime, customer: str, brand: BrandCredentials
) -> None:
    """With no SMTP server configured, mail is filed in the `.eml` sink: the page says it went."""
    authorized(client, brand, publish_offer(client, brand_token(client, brand)))
    form = {**dict(parse_form(client.get("/portal/account").text).fields), "confirm": "delete my account"}
    deleted = client.post("/portal/account/delete", data=form, follow_redirects=False)
    assert deleted.status_code == 200
    assert 'id="receipt-mail" role="status">We sent a copy to your email address' in deleted.text
    (message,) = [m for m in sink_messages(runtime.settings.data_dir, ADA) if m.is_multipart()
                  and any(True for _ in m.iter_attachments())]  # fmt: skip
    mailed = attached_receipt(message)
    link = re.search(r'href="(/portal/deleted/[^"]+/receipt)"', deleted.text)
    assert link is not None and mailed["id"] in link.group(1)
    assert mailed["jws"] == client.get(link.group(1)).json()["jws"]


def _unprovable(self: Receipts, session: Session, receipt_id: UUID) -> DeletionReceiptPublic:
    raise OperationalError("SELECT checkpoint", {}, Exception("the database went away"))


def test_a_receipt_that_cannot_be_proven_at_once_never_undoes_the_deletion(
    client: TestClient, customer: str, brand: BrandCredentials, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The deletion is committed before its proof is fetched: if that fails, the answer says the
    account is gone and where the signed receipt waits, never that the deletion failed."""
    authorized(client, brand, publish_offer(client, brand_token(client, brand)))
    monkeypatch.setattr(Receipts, "deletion_bundle", _unprovable)
    with caplog.at_level(logging.INFO):
        answer = client.delete("/v1/me", headers=bearer(customer))
    assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
    assert "retry-after" not in answer.headers  # retrying cannot help: the account is gone
    problem = answer.json()
    assert problem["type"].endswith("/deletion-receipt-pending") and "is deleted" in problem["detail"]
    capability = problem["receipt_url"].split("/")[-2]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "could not be proven" in logged and capability not in logged
    monkeypatch.undo()
    later = client.get(problem["receipt_url"])
    assert later.status_code == 200 and later.json()["receipt"]["grants"][0]["ended_by_this_deletion"]
    gone = client.post("/v1/sessions", json={"email": ADA, "password": STRONG_PASSWORD})
    assert gone.status_code == 401


def test_the_goodbye_page_says_so_when_the_receipt_is_not_ready(
    client: TestClient, customer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Receipts, "deletion_bundle", _unprovable)
    form = {**dict(parse_form(client.get("/portal/account").text).fields), "confirm": "delete my account"}
    deleted = client.post("/portal/account/delete", data=form, follow_redirects=False)
    assert deleted.status_code == 200 and "Your account is deleted" in deleted.text
    assert 'role="alert">Your receipt could not be prepared just now, so it was not mailed' in deleted.text
    monkeypatch.undo()
    link = re.search(r'href="(/portal/deleted/[^"]+/receipt)"', deleted.text)
    assert link is not None and client.get(link.group(1)).status_code == 200


def test_an_address_never_confirmed_is_not_sent_the_receipt(client: TestClient, runtime: Runtime) -> None:
    """An unconfirmed address may be someone else's, and the receipt lists the brands."""
    token = sign_up(client, "bea@example.org", verify=False)
    before = len(sink_messages(runtime.settings.data_dir, "bea@example.org"))
    answer = client.delete("/v1/me", headers=bearer(token))
    assert answer.status_code == 200 and answer.json()["mail"] == "no_confirmed_address"
    deliver(runtime)
    assert len(sink_messages(runtime.settings.data_dir, "bea@example.org")) == before


def test_an_address_that_cannot_be_read_never_blocks_the_deletion(
    client: TestClient, runtime: Runtime, db: Session, customer: str
) -> None:
    """The address is read before the shred, to mail the receipt: if its ciphertext is damaged (or
    the key service is down), the erasure goes on without the mail."""
    who = runtime.accounts.authenticate(db, customer).customer_id
    field = db.get(VaultField, (who, "email"))
    assert field is not None
    field.ciphertext = bytes(len(field.ciphertext))
    db.add(field)
    db.commit()
    answer = client.delete("/v1/me", headers=bearer(customer))
    assert answer.status_code == 200 and answer.json()["mail"] == "not_sent"
    assert client.get("/v1/me/profile", headers=bearer(customer)).status_code == 401


class TestMailedOverSmtp:
    """The receipt reaches a real SMTP server (aiosmtpd, in process) before the address is destroyed;
    a refused send never blocks the deletion."""

    @pytest.fixture
    def smtp(self) -> Iterator[SmtpServer]:
        with running_smtp() as server:
            yield server

    @pytest.fixture
    def settings(self, tmp_path: Path, database_url: str, smtp: SmtpServer) -> Settings:
        return make_settings(tmp_path / "var", database_url, smtp_url=smtp.url)

    @pytest.fixture
    def customer(self, client: TestClient, runtime: Runtime, smtp: SmtpServer) -> str:
        """Ada, signed up with the code the SMTP server received, her profile set."""
        created = client.post("/v1/customers", json={"email": ADA, "password": STRONG_PASSWORD})
        assert created.status_code == 202
        deliver(runtime)
        confirmed = client.post("/v1/customers/verify", json={"code": code_in(smtp.to(ADA)[-1])})
        assert confirmed.status_code == 200
        token = log_in(client, ADA)
        profile = {"email": ADA, "dietary": ["vegan", "nut_allergy"], "household_size": 3,
                   "birthdate": "1990-12-10", "given_name": "Ada"}  # fmt: skip
        assert client.put("/v1/me/profile", json=profile, headers=bearer(token)).status_code == 200
        assert portal_login(client, ADA).status_code == 303  # the consent screen's session
        return token

    def test_the_receipt_is_mailed_to_the_address_before_it_is_destroyed(
        self, client: TestClient, db: Session, smtp: SmtpServer, customer: str,
        brand: BrandCredentials, rival: BrandCredentials,
    ) -> None:  # fmt: skip
        before = len(smtp.to(ADA))
        bundle = _deleted(client, customer, brand, rival)
        assert bundle["mail"] == "sent"
        assert len(smtp.to(ADA)) == before + 1  # sent in the request itself, not queued
        message = smtp.to(ADA)[-1]
        assert message["Subject"] == "Your Consentry account is deleted: your receipt"
        assert "2 grant(s)" in text_of(message) and "1 ended by this deletion" in text_of(message)
        mailed = attached_receipt(message)
        answered = {k: v for k, v in bundle.items() if not k.startswith("_")}
        assert {**mailed, "mail": "sent"} == answered  # the very bundle of the answer, proof and all
        jwks = client.get("/.well-known/jwks.json").json()["keys"]
        key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
        assert verify_receipt(mailed, log_key=key, jwks=jwks).problems == []
        body = message.as_string().replace(f"To: {ADA}", "")
        for value in PROFILE_VALUES:  # the address only as the recipient; no profile value at all
            assert value not in body and value not in json.dumps(mailed), value
        # Nothing kept to send it again: no outbox row, no sealed copy of the address.
        assert db.exec(select(MailMessage).where(MailMessage.template == "deletion_receipt")).all() == []

    def test_a_refused_send_never_blocks_the_deletion(
        self, client: TestClient, smtp: SmtpServer, customer: str, brand: BrandCredentials
    ) -> None:
        authorized(client, brand, publish_offer(client, brand_token(client, brand)))
        smtp.refuse.append("550 5.1.1 no such mailbox")
        form = {**dict(parse_form(client.get("/portal/account").text).fields), "confirm": "delete my account"}
        deleted = client.post("/portal/account/delete", data=form, follow_redirects=False)
        assert deleted.status_code == 200 and "Your account is deleted" in deleted.text
        assert 'role="alert">We could not send a copy by mail: download it now.' in deleted.text
        link = re.search(r'href="(/portal/deleted/[^"]+/receipt)"', deleted.text)
        assert link is not None
        client.cookies.clear()
        assert client.get(link.group(1)).status_code == 200
        gone = client.post("/v1/sessions", json={"email": ADA, "password": STRONG_PASSWORD})
        assert gone.status_code == 401

    def test_a_mail_server_that_hangs_holds_up_no_other_writer(
        self, client: TestClient, runtime: Runtime, customer: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The receipt is proven and committed before the send, which holds no transaction: while it
        waits on a silent server, other writers go on at once. Here one appends to the log between the
        deletion's commit and the proof, so the receipt is proven against a newer checkpoint."""
        prove = Receipts.deletion_bundle

        def after_another_entry(self: Receipts, session: Session, receipt_id: UUID) -> DeletionReceiptPublic:
            """A writer got in after the deletion's commit: the proof must sign a new checkpoint."""
            runtime.audit.record_alone(runtime.sessions, Kind.KEY_ROTATED, actor=Actor.OPERATOR,
                                       key="receipt", version="2")  # fmt: skip
            return prove(self, session, receipt_id)

        monkeypatch.setattr(Receipts, "deletion_bundle", after_another_entry)
        with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
            port = silent.getsockname()[1]
            transport = SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=3)
            delivery = dataclasses.replace(runtime.mail_delivery, transport=transport)
            object.__setattr__(
                runtime, "account_deletion", dataclasses.replace(runtime.account_deletion, delivery=delivery)
            )
            answers: list[httpx.Response] = []
            deleting = threading.Thread(
                target=lambda: answers.append(client.delete("/v1/me", headers=bearer(customer)))
            )
            deleting.start()
            silent.settimeout(20)
            connection, _ = silent.accept()  # the deletion is committed and proven: the send began
            with connection:
                started = time.monotonic()
                with runtime.sessions() as session:  # a write while the send waits
                    runtime.auditors.create(session, "Independent Audit Ltd")
                    session.commit()
                assert time.monotonic() - started < 1.5
                deleting.join(30)
        (answer,) = answers
        assert answer.status_code == 200 and answer.json()["mail"] == "not_sent"
        assert answer.json()["tree_size"] == answer.json()["audit_entry"]["index"] + 2  # a new checkpoint

    def test_an_unreachable_mail_server_never_blocks_the_deletion(
        self, client: TestClient, runtime: Runtime, customer: str
    ) -> None:
        unreachable = SmtpTransport.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=2)
        delivery = dataclasses.replace(runtime.mail_delivery, transport=unreachable)
        deletion = dataclasses.replace(runtime.account_deletion, delivery=delivery)
        object.__setattr__(runtime, "account_deletion", deletion)
        answer = client.delete("/v1/me", headers=bearer(customer))
        assert answer.status_code == 200 and answer.json()["mail"] == "not_sent"
        assert client.get("/v1/me/profile", headers=bearer(customer)).status_code == 401


def test_a_later_consistency_proof_shows_the_entry_is_still_in_the_log(
    client: TestClient, runtime: Runtime, db: Session, customer: str, brand: BrandCredentials,
    rival: BrandCredentials, tmp_path: Path,
) -> None:  # fmt: skip
    """An auditor, later, with `--url` and a token: the server's latest checkpoint extends the receipt's."""
    bundle = {k: v for k, v in _deleted(client, customer, brand, rival).items() if not k.startswith("_")}
    sign_up(client, "bea@example.org")
    assert portal_login(client, "bea@example.org").status_code == 303
    authorized(client, brand, publish_offer(client, brand_token(client, brand)))  # the log grows
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()

    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(request.method, str(request.url), headers=dict(request.headers))
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.items()), content=answer.content
        )

    (tmp_path / "jwks.json").write_text(client.get("/.well-known/jwks.json").text)
    (tmp_path / "deletion.json").write_text(json.dumps(bundle))
    key = client.get("/v1/audit/key").text.strip()
    files = [str(tmp_path / "deletion.json"), "--jwks", str(tmp_path / "jwks.json")]
    args = ["receipt", "verify", *files, "--key", key, "--url", "http://127.0.0.1:8000"]
    done = runner.invoke(app, [*args, "--token", token, "--json"], obj=httpx.MockTransport(forward))
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["verified"] and report["still_logged_at"] > report["tree_size"] == bundle["tree_size"]
    shown = runner.invoke(app, [*args, "--token", token], obj=httpx.MockTransport(forward))
    assert shown.exit_code == 0 and "still in the log" in shown.stdout
    assert runner.invoke(app, args, obj=httpx.MockTransport(forward)).exit_code == 2  # proofs need a token
    # A server that shows a checkpoint its pinned key did not sign (a forked view): exit 1.
    latest = client.get("/v1/audit/checkpoint", headers={"Authorization": f"Bearer {token}"}).text

    def forked(note: str) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/audit/checkpoint":
                return httpx.Response(200, text=note, headers={"Consentry-API-Version": "1"})
            return forward(request)

        return answer

    fork = runner.invoke(
        app,
        [*args, "--token", token],
        obj=httpx.MockTransport(forked(foreign_checkpoint(latest))),
    )
    assert fork.exit_code == 1 and "later checkpoint does not verify" in fork.stderr
    garbled = runner.invoke(
        app, [*args, "--token", token], obj=httpx.MockTransport(forked("not a checkpoint"))
    )
    assert garbled.exit_code == 2 and "malformed" in garbled.stderr
    refused = runner.invoke(app, [*args, "--token", "not-a-token"], obj=httpx.MockTransport(forward))
    assert refused.exit_code == 2


class TestStillLogged:
    """`check_still_logged` against logs built here: one that grew, one rewritten, one rolled back."""

    ORIGIN = "example.org/log"

    @pytest.fixture
    def signer(self) -> Signer:
        return parse_private_key(generate_private_key(self.ORIGIN))

    def checkpoint(self, signer: Signer, leaves: list[bytes]) -> str:
        return signer.sign(format_checkpoint(Checkpoint(self.ORIGIN, len(leaves), root_hash(leaves))))

    def report(self, signer: Signer, leaves: list[bytes]) -> ReceiptReport:
        """A receipt's report as `verify_receipt` leaves it, its checkpoint over `leaves`."""
        note = self.checkpoint(signer, leaves)
        return ReceiptReport(claims={}, checkpoint=parse_checkpoint(open_note(note, [signer.verifier])))

    def test_a_log_that_only_grew_holds_the_entry_still(self, signer: Signer) -> None:
        leaves = [leaf_hash(f"entry {i}".encode()) for i in range(13)]
        report = self.report(signer, leaves[:6])
        check_still_logged(
            report, self.checkpoint(signer, leaves), consistency_proof(leaves, 6), signer.verifier
        )
        assert report.verified and report.later is not None and report.later.size == 13

    def test_a_log_that_did_not_grow_must_have_the_same_root(self, signer: Signer) -> None:
        leaves = [leaf_hash(f"entry {i}".encode()) for i in range(6)]
        same = self.report(signer, leaves)
        check_still_logged(same, self.checkpoint(signer, leaves), [], signer.verifier)
        assert same.verified and same.later is not None and same.later.size == 6
        forked = self.report(signer, leaves)
        fork = [*leaves[:5], leaf_hash(b"entry 5, forked")]
        check_still_logged(forked, self.checkpoint(signer, fork), [], signer.verifier)
        assert not forked.verified and "rewritten" in forked.problems[0]

    def test_a_rewritten_log_a_rollback_a_foreign_key_and_another_log_fail(self, signer: Signer) -> None:
        leaves = [leaf_hash(f"entry {i}".encode()) for i in range(13)]
        rewritten = [*leaves[:3], leaf_hash(b"entry 3, edited"), *leaves[4:]]
        other = parse_private_key(generate_private_key(self.ORIGIN))
        elsewhere = parse_private_key(generate_private_key("example.net/log"))
        cases = [
            (self.checkpoint(signer, rewritten), consistency_proof(rewritten, 6), "rewritten"),
            (self.checkpoint(signer, leaves[:4]), [], "rolled back"),
            (self.checkpoint(other, leaves), consistency_proof(leaves, 6), "pinned log key"),
        ]
        for note, proof, said in cases:
            report = self.report(signer, leaves[:6])
            check_still_logged(report, note, proof, signer.verifier)
            assert not report.verified and report.later is None and said in report.problems[0], said
        report = self.report(signer, leaves[:6])
        note = elsewhere.sign(format_checkpoint(Checkpoint("example.net/log", 13, root_hash(leaves))))
        check_still_logged(report, note, consistency_proof(leaves, 6), elsewhere.verifier)
        assert not report.verified and "not of 'example.org/log'" in report.problems[0]


def test_a_receipt_whose_type_is_not_a_string_is_reported_not_raised() -> None:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    token = f"{part({'alg': 'Ed25519', 'typ': ['deletion-receipt+jwt']})}.{part({})}.AA"
    bundle = {"jws": token, "audit_entry": {"index": 0, "entry": "", "inclusion_proof": []}, "checkpoint": ""}
    key = parse_private_key(generate_private_key("example.org/log")).verifier
    report = verify_receipt(bundle, log_key=key)
    assert not report.verified and "typ" in report.problems[0]
