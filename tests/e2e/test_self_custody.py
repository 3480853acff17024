"""Self-custody in a real Chromium, with a CDP virtual authenticator that has the PRF extension.

The customer moves the profile to their own key on the portal, edits it there, grants it to a brand
(the browser seals it to the brand's key), the brand reads with the SDK and opens it, the customer
revokes; then the passkey is lost and the recovery key lets a new passkey unlock the vault. The
server's database and log never see the distinctive values the customer typed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import ECKey
from playwright.sync_api import Page, Route, expect
from support.browser import serious_violations, virtual_authenticator
from support.core import STRONG_PASSWORD
from support.held import unb64
from support.mail import sign_up_over_http
from support.oauth import OFFER, REDIRECT, create_brand_with_cli

from clients.brand import ConsentryClient

EMAIL = "ada@example.org"
# Values nobody else has: the server must never hold them in the clear once the vault is held.
GIVEN_NAME, NEW_CITY = "Zephyrine", "Quillbrook"


def _log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(STRONG_PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your data, your terms")


def _add_passkey(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/portal/security")
    page.get_by_label("Name for a new passkey").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Passkey “{name}” added.")


def _status(page: Page) -> Any:
    return page.locator("[data-held-message]")


def test_a_customer_holds_their_key_edits_grants_revokes_and_recovers(
    localhost: str, page: Page, tmp_path: Path, fresh_database_url: str, artifacts: Path
) -> None:
    data_dir = tmp_path / "var"
    key = ECKey.generate_key("P-256", parameters={"kid": "grocer-enc-1", "use": "enc"}, private=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url, jwks=jwks)
    with httpx.Client(base_url=localhost, timeout=30) as http:
        sign_up_over_http(http, data_dir, EMAIL)
        token = http.post("/v1/sessions", json={"email": EMAIL, "password": STRONG_PASSWORD}).json()["token"]
        profile = {"email": EMAIL, "given_name": GIVEN_NAME, "dietary": ["vegetarian"], "household_size": 3,
                   "birthdate": "1990-12-10"}  # fmt: skip
        assert (
            http.put("/v1/me/profile", json=profile, headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )

    # Move to self-custody: a passkey with PRF, the warning, the recovery key.
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    cdp, first = virtual_authenticator(page, prf=True)
    _log_in(page, localhost)
    _add_passkey(page, localhost, "This laptop")
    page.goto(f"{localhost}/portal/custody")
    expect(page.get_by_text("Consentry holds the key to your profile.")).to_be_visible()
    expect(
        page.get_by_text("If you lose every passkey and your recovery key, your profile is gone.")
    ).to_be_visible()
    assert serious_violations(page) == []
    page.get_by_role("button", name="Make my recovery key").click()
    expect(_status(page)).to_contain_text("Tick the box to say you understand")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Make my recovery key").click()
    recovery = page.locator("[data-recovery-key]").inner_text()
    assert len(recovery.replace("-", "")) == 52
    page.get_by_label("I have written down or printed my recovery key.").check()
    page.get_by_role("button", name="Move my profile to self-custody").click()
    expect(_status(page)).to_contain_text("Done: your profile is in your custody.", timeout=20_000)
    held = httpx.get(f"{localhost}/v1/me/custody", headers={"Authorization": f"Bearer {token}"}).json()[
        "held"
    ]
    lengths = {name: len(unb64(blob)) - 29 for name, blob in held["fields"].items()}  # format, nonce, tag
    assert set(lengths) == {"given_name", "dietary", "household_size", "birthdate"}
    assert all(n % 64 == 0 for n in lengths.values()), lengths  # padded: a length says little of a value
    page.screenshot(path=artifacts / "custody-held.png", full_page=True)

    # Edit: the browser opens the profile, then seals what changed.
    page.goto(f"{localhost}/portal/profile")
    expect(page.get_by_label("Given name")).to_have_value("")
    page.get_by_role("button", name="Unlock with a passkey").click()
    expect(page.get_by_label("Given name")).to_have_value(GIVEN_NAME)
    page.get_by_label("Town or city").fill(NEW_CITY)
    page.get_by_label("Household size").fill("4")
    page.get_by_role("button", name="Save").click()
    expect(_status(page)).to_contain_text("Saved.")
    assert serious_violations(page) == []

    # Grant: the consent screen seals the shared fields to the brand's key.
    callbacks: list[str] = []

    def brand_callback(route: Route) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/plain", body="back at the brand")

    page.route(REDIRECT + "**", brand_callback)
    with ConsentryClient(localhost, client_id=client_id, client_secret=secret, redirect_uri=REDIRECT,
                         decryption_keys=[key.as_dict(private=True)]) as sdk:  # fmt: skip
        offer = sdk.publish_offer(OFFER)
        asked = sdk.authorization_url(offer_id=offer.id)
        page.goto(asked.url)
        expect(page.get_by_text("Your profile is in your custody: when you share")).to_be_visible()
        page.get_by_label("Household size").check()
        page.get_by_label("Given name").check()
        page.get_by_label("I explicitly agree").check()  # dietary requirements can say more than diet
        page.get_by_role("button", name="Share and accept").click()
        page.wait_for_function("() => document.body.innerText.includes('back at the brand')", timeout=20_000)
        session = sdk.handle_callback(
            callbacks[-1], expected_state=asked.state, code_verifier=asked.code_verifier
        )
        read = sdk.read_profile(session)
        assert read.sealed is not None and read.grant_version == 1
        assert read.fields["given_name"] == GIVEN_NAME and read.fields["household_size"] == 4
        assert read.fields["dietary"] == ["vegetarian"] and read.fields["email"] == EMAIL

        # Narrow: the kept fields sealed anew; the brand's next read no longer has the given name.
        page.goto(f"{localhost}/portal/grants/{session.grant_id}")
        expect(page.get_by_text("in your custody").first).to_be_visible()
        page.locator("#keep-given_name").uncheck()
        page.get_by_role("button", name="Stop sharing the unticked fields").click()
        page.wait_for_url(f"**/portal/grants/{session.grant_id}")
        expect(page.locator("#keep-given_name")).to_have_count(0)
        narrowed = sdk.read_profile(session)
        assert narrowed.grant_version == 2 and "given_name" not in narrowed.fields
        assert narrowed.fields["household_size"] == 4

        # Revoke: the brand's next read fails, and the copy is gone.
        page.locator("#confirm-revoke").check()
        page.get_by_role("button", name="Stop sharing", exact=True).click()
        expect(page.get_by_text("revoked").first).to_be_visible()
        refused = httpx.get(
            f"{localhost}/v1/profile", headers={"Authorization": f"Bearer {session.tokens.access_token}"}
        )
        assert refused.status_code in (401, 403)

    # The passkey is lost: a new one, unlocked into the vault with the recovery key.
    cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": first})
    virtual_authenticator(page, prf=True)
    _add_passkey(page, localhost, "New phone")
    page.goto(f"{localhost}/portal/custody")
    page.get_by_label("Recovery key", exact=True).fill(recovery)
    page.get_by_role("button", name="Unlock with my recovery key").click()
    expect(_status(page)).to_contain_text("Unlocked with your recovery key.")
    page.get_by_role("button", name="Let a passkey of mine unlock it").click()
    expect(_status(page)).to_contain_text("That passkey unlocks your profile now.")
    page.goto(f"{localhost}/portal/profile")
    page.get_by_role("button", name="Unlock with a passkey").click()
    expect(page.get_by_label("Town or city")).to_have_value(NEW_CITY)

    # And back: the browser hands the values over, and Consentry holds the key again.
    page.goto(f"{localhost}/portal/custody")
    page.get_by_role("button", name="Give the key back").click()
    expect(_status(page)).to_contain_text("Done: Consentry holds the key to your profile again.")
    mine = {"Authorization": f"Bearer {token}"}
    back = httpx.get(f"{localhost}/v1/me/profile", headers=mine).json()["fields"]
    assert back["city"] == NEW_CITY and back["household_size"] == 4 and back["given_name"] == GIVEN_NAME

    # Nothing the customer typed is in the server's files in the clear (its data directory, the SQLite
    # database with its WAL, and its log).
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != jwks:
            content = path.read_bytes()
            assert GIVEN_NAME.encode() not in content and NEW_CITY.encode() not in content, path
    assert script_errors == []
