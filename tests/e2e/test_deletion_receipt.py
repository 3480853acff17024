"""The evidence of erasure, end to end against a real `consentry serve` whose mail goes to a real SMTP
server (aiosmtpd, in this process): a customer with grants at two brands deletes the account over
HTTP (`DELETE /v1/me`) and in Chromium (the portal's account page), and leaves with the deletion
receipt (the answer; the goodbye page's download) and a copy in the mailbox. `consentry-audit receipt
verify` checks each offline (exit 0) and refuses a flipped byte, an edited copy and a checkpoint
signed by another key (exit 1); later, an auditor's `--url` shows the entry still in the grown log.
The receipt names every grant, with what each brand sees on its side (status, end, the pairwise
subject it knows, the deletion due date, what it owes), and holds no profile value."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect
from support.browser import serious_violations
from support.core import STRONG_PASSWORD, cli_env, running_server
from support.http_customer import approves
from support.mail import SmtpServer, running_smtp, sign_up_over_smtp, text_of, wait_for_smtp
from support.oauth import OFFER, REDIRECT, create_brand_with_cli
from support.receipts import attached_receipt, forgeries

from clients.brand import ConsentryClient, GrantSession
from clients.brand.errors import GrantInactive, RefreshRejected, Unauthenticated

EMAIL = "ada@example.org"
PROFILE = {"email": EMAIL, "given_name": "Qzdelgiven", "city": "Qzdelcity", "postcode": "QZ9 4DL",
           "dietary": ["vegan"], "household_size": 5}  # fmt: skip
NEEDLES = [EMAIL, "Qzdelgiven", "Qzdelcity", "QZ9 4DL", "QZ9"]  # none may be in the receipt
SHARED = {**OFFER, "optional_fields": [*OFFER["optional_fields"], "city"]}


@dataclass(frozen=True)
class Broker:
    """The live server, and where its data and database are."""

    base: str
    data_dir: Path
    database_url: str


@dataclass(frozen=True)
class Brand:
    """A brand as the test drives it: its SDK client, and its credentials for the raw API."""

    name: str
    sdk: ConsentryClient
    auth: tuple[str, str]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def broker(tmp_path: Path, fresh_database_url: str, smtp: SmtpServer) -> Iterator[Broker]:
    data_dir, log = tmp_path / "var", tmp_path / "server.log"
    env = {"CONSENTRY_SMTP_URL": smtp.url}
    with running_server(data_dir, fresh_database_url, log, env=env) as server:
        yield Broker(server.url, data_dir, fresh_database_url)


def brand(broker: Broker, name: str) -> Brand:
    client_id, secret = create_brand_with_cli(broker.data_dir, broker.database_url, name=name)
    sdk = ConsentryClient(broker.base, client_id=client_id, client_secret=secret, redirect_uri=REDIRECT)
    return Brand(name, sdk, (client_id, secret))


def signed_up(http: httpx.Client, smtp: SmtpServer) -> dict[str, str]:
    """Ada, her address confirmed from the mail the SMTP server got, her profile set: her headers."""
    sign_up_over_smtp(http, smtp, EMAIL)
    token = http.post("/v1/sessions", json={"email": EMAIL, "password": STRONG_PASSWORD}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert http.put("/v1/me/profile", json=PROFILE, headers=headers).status_code == 200
    http.cookies.clear()
    return headers


class Auditor:
    """`consentry-audit receipt verify`, the real command, with the log key and JWKS fetched once."""

    def __init__(self, base: str, directory: Path) -> None:
        self.key = httpx.get(f"{base}/v1/audit/key").text.strip()
        self.jwks = directory / "jwks.json"
        self.jwks.write_text(httpx.get(f"{base}/.well-known/jwks.json").text)
        self.file = directory / "checked.json"

    def verify(self, document: dict[str, Any], *options: str) -> subprocess.CompletedProcess[str]:
        self.file.write_text(json.dumps(document))
        command = [str(Path(sys.executable).parent / "consentry-audit"), "receipt", "verify", str(self.file),
                   "--key", self.key, "--jwks", str(self.jwks), *options]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def still_logged(self, bundle: dict[str, Any], base: str, token: str) -> int:
        """Later, an auditor: `--url` and a token add the consistency proof to the latest checkpoint;
        the tree size at which the entry is shown still in the log."""
        done = self.verify(bundle, "--url", base, "--token", token, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["verified"] is True
        size: int = report["still_logged_at"]
        return size

    def check(self, bundle: dict[str, Any]) -> None:
        """Exit 0 for the bundle as handed over; exit 1 for each of three forgeries."""
        done = self.verify(bundle)
        assert done.returncode == 0, done.stderr
        assert "deletion receipt verified: account-deleted" in done.stdout
        for what, forged in forgeries(bundle).items():
            refused = self.verify(forged)
            assert refused.returncode == 1, (what, refused.stdout, refused.stderr)
            assert "receipt verification failed" in refused.stderr, what


def brands_see(broker: Broker, brands: dict[str, tuple[Brand, GrantSession, str]]) -> dict[str, Any]:
    """Each brand's own view of its grant, by grant id: the raw `GET /v1/grants/{id}`, and the pairwise
    subject its reads carried."""
    seen = {}
    for who, session, sub in brands.values():
        asked = {"grant_type": "client_credentials", "scope": "grants:read"}
        token = httpx.post(f"{broker.base}/oauth/token", auth=who.auth, data=asked).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        grant = httpx.get(f"{broker.base}/v1/grants/{session.grant_id}", headers=headers)
        assert grant.status_code == 200, grant.text
        listed = [g.id for g in who.sdk.list_grants().items]
        assert listed == [session.grant_id]  # each brand has exactly this one grant from Ada
        value = [(str(o.id), o.state) for o in who.sdk.list_value(session.grant_id)]
        seen[str(session.grant_id)] = {**grant.json(), "sub": sub, "brand": who.name, "value": value}
    return seen


def assert_matches_the_brands(receipt: dict[str, Any], seen: dict[str, Any], ended: set[str]) -> None:
    """The receipt names every grant, each as its brand sees it."""
    assert {g["grant_id"] for g in receipt["grants"]} == set(seen)
    for grant in receipt["grants"]:
        theirs = seen[grant["grant_id"]]
        assert grant["brand"]["name"] == theirs["brand"] == theirs["brand_name"]
        assert grant["brand"]["client_id"] == theirs["brand_client_id"]
        assert grant["subject"] == theirs["sub"]  # the name the brand knows Ada by
        assert grant["status"] == theirs["status"] == "revoked" and theirs["account_deleted"] is True
        assert _instant(grant["ended_at"]) == _instant(theirs["status_changed_at"])
        assert _instant(grant["deletion"]["due_at"]) == _instant(theirs["deletion_due_at"])
        assert grant["deletion"]["status"] == "due" and theirs["deletion"]["status"] == "due"
        assert grant["ended_by_this_deletion"] is (grant["grant_id"] in ended)
        # It read under the grant: what it owes stays owed, on its record as on the receipt.
        assert [(o["obligation_id"], o["state"]) for o in grant["value"]] == theirs["value"]
        assert [o["state"] for o in grant["value"]] == ["owed"]


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_names_nobody(*texts: str) -> None:
    for text in texts:
        for needle in NEEDLES:
            assert needle not in text, needle


def test_over_http_the_receipt_names_every_grant_verifies_offline_and_arrives_by_mail(
    broker: Broker, smtp: SmtpServer, tmp_path: Path
) -> None:
    grocer, rival = brand(broker, "Green Grocer"), brand(broker, "Rival Foods")
    with httpx.Client(base_url=broker.base, timeout=30) as http, grocer.sdk, rival.sdk:
        headers = signed_up(http, smtp)
        held: dict[str, tuple[Brand, GrantSession, str]] = {}
        for who in (grocer, rival):
            asked = who.sdk.authorization_url(offer_id=who.sdk.publish_offer(SHARED).id)
            callback = approves(http, asked.url, EMAIL, who.name)
            http.cookies.clear()
            session = who.sdk.handle_callback(
                callback, expected_state=asked.state, code_verifier=asked.code_verifier
            )
            read = who.sdk.read_profile(session)
            assert read.fields["given_name"] == "Qzdelgiven"  # shared, so the brands hold it
            held[who.name] = (who, session, read.sub)
        ended_before = str(held["Rival Foods"][1].grant_id)
        assert http.delete(f"/v1/me/grants/{ended_before}", headers=headers).status_code == 204
        mails = len(smtp.to(EMAIL))

        answer = http.delete("/v1/me", headers=headers)
        assert answer.status_code == 200, answer.text
        bundle = answer.json()
        assert bundle["mail"] == "sent"
        assert http.get("/v1/me/profile", headers=headers).status_code == 401
        with pytest.raises((Unauthenticated, GrantInactive, RefreshRejected)):  # its tokens died
            grocer.sdk.read_profile(held["Green Grocer"][1])

        # The copy in the mailbox is the same receipt; both verify, the forgeries do not.
        message = wait_for_smtp(smtp, EMAIL, count=mails + 1)
        assert message["Subject"] == "Your Consentry account is deleted: your receipt"
        mailed = attached_receipt(message)
        assert (mailed["id"], mailed["jws"]) == (bundle["id"], bundle["jws"])
        auditor = Auditor(broker.base, tmp_path)
        auditor.check(bundle)
        auditor.check(mailed)

        seen = brands_see(broker, held)

        # Later: the log grew (a brand published an offer); an auditor shows the entry is still in it.
        rival.sdk.publish_offer(SHARED)
        created = subprocess.run(
            [str(Path(sys.executable).parent / "consentry"), "auditors", "create", "--name", "Audit Co"],
            env=cli_env(broker.data_dir, broker.database_url), check=True, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        token = json.loads(created.stdout)["token"]
        assert auditor.still_logged(bundle, broker.base, token) > bundle["tree_size"]
    ended_now = {str(held["Green Grocer"][1].grant_id)}
    assert_matches_the_brands(bundle["receipt"], seen, ended_now)
    assert ended_before not in ended_now
    assert_names_nobody(json.dumps(bundle), json.dumps(mailed), text_of(message))
    assert base64.urlsafe_b64decode(bundle["jws"].split(".")[1] + "==").decode().count("Qzdel") == 0


def test_in_the_browser_the_goodbye_page_hands_over_a_receipt_that_verifies_and_was_mailed(
    broker: Broker, smtp: SmtpServer, page: Page, tmp_path: Path, artifacts: Path
) -> None:
    grocer = brand(broker, "Green Grocer")
    with httpx.Client(base_url=broker.base, timeout=30) as http, grocer.sdk:
        signed_up(http, smtp)
        asked = grocer.sdk.authorization_url(offer_id=grocer.sdk.publish_offer(SHARED).id)
        callbacks: list[str] = []

        def brand_callback(route: Route) -> None:
            callbacks.append(route.request.url)
            route.fulfill(status=200, content_type="text/plain", body="back at the brand")

        page.route(REDIRECT + "**", brand_callback)
        page.goto(asked.url)
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(STRONG_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(
            "Green Grocer asks for some of your data"
        )
        page.get_by_label("I explicitly agree").check()  # diet is special-category data
        page.get_by_role("button", name="Share and accept").click()
        expect(page.get_by_text("back at the brand")).to_be_visible()
        session = grocer.sdk.handle_callback(
            callbacks[-1], expected_state=asked.state, code_verifier=asked.code_verifier
        )
        sub = grocer.sdk.read_profile(session).sub
        mails = len(smtp.to(EMAIL))

        page.goto(f"{broker.base}/portal/account")
        expect(page.get_by_text("You leave with a signed deletion receipt")).to_be_visible()
        page.get_by_label("To confirm, type").fill("delete my account")
        page.get_by_role("button", name="Delete my account for good").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Your account is deleted")
        expect(page.locator("#receipt-mail")).to_have_text(
            "We sent a copy to your email address, the last message it gets from us: we kept no copy of "
            "the address."
        )
        assert serious_violations(page) == []
        page.screenshot(path=artifacts / "deleted-receipt.png", full_page=True)
        with page.expect_download() as download:
            page.get_by_role("link", name="Download your deletion receipt").click()
        assert download.value.suggested_filename == "consentry-deletion-receipt.json"
        saved = tmp_path / "downloaded.json"
        download.value.save_as(saved)
        bundle = json.loads(saved.read_text())

        message = wait_for_smtp(smtp, EMAIL, count=mails + 1)
        mailed = attached_receipt(message)
        assert mailed["jws"] == bundle["jws"] and mailed["receipt"] == bundle["receipt"]
        auditor = Auditor(broker.base, tmp_path)
        auditor.check(bundle)
        seen = brands_see(broker, {"Green Grocer": (grocer, session, sub)})
    assert_matches_the_brands(bundle["receipt"], seen, {str(session.grant_id)})
    assert_names_nobody(json.dumps(bundle), text_of(message))
    page.goto(f"{broker.base}/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")  # logged out everywhere
