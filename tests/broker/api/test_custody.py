"""Self-custody through the API, the browser played by `support.held`: the move to the customer's key
and back, edits, grants sealed to their brands and read by them, and every bad input refused.

The brand reads with the SDK (`clients.brand`), which opens the sealed copy with its private key: the
broker hands over what it cannot open."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from joserfc import jwe
from joserfc.jwk import ECKey
from sqlmodel import Session, select
from support.core import bearer
from support.factors import reauthenticate_with_passkey, register_passkey
from support.held import HeldBrowser, unb64, unwrap
from support.oauth import ISSUER, BrandCredentials, authorized, brand_token, grant_id_of, publish_offer
from support.webauthn import SoftAuthenticator

from broker.accounts.models import Brand
from broker.audit.models import AuditEntry
from broker.runtime import Runtime
from vault import crypto
from vault.errors import DecryptionFailed
from vault.keys import active_version
from vault.models import HeldField, HeldUnlock, VaultField

PROFILE = {
    "dietary": ["vegan", "nut_allergy"],
    "household_size": 3,
    "birthdate": "1990-12-10",
    "given_name": "Ada",
}


@pytest.fixture
def brand_key(runtime: Runtime, db: Session, brand: BrandCredentials) -> ECKey:
    """The brand's encryption key pair, its public half registered (`use: enc`)."""
    key = ECKey.generate_key("P-256", parameters={"kid": "enc-2026", "use": "enc"}, private=True)
    row = db.exec(select(Brand).where(Brand.client_id == brand.client_id)).one()
    row.jwks = {"keys": [key.as_dict(private=False)]}
    db.add(row)
    db.commit()
    return key


@pytest.fixture
def passkey(client: TestClient, customer: str) -> dict[str, Any]:
    """The customer's passkey, just confirmed (a move of custody needs a fresh sign-in)."""
    authenticator = SoftAuthenticator()
    registered = register_passkey(client, customer, authenticator)
    reauthenticate_with_passkey(client, customer, authenticator)
    return {**registered, "authenticator": authenticator}


@pytest.fixture
def granted(client: TestClient, customer: str, brand: BrandCredentials, brand_key: ECKey) -> dict[str, Any]:
    """A live grant of the default offer (email, dietary, household_size, age_band, given_name)."""
    offer = publish_offer(client, brand_token(client, brand))
    tokens = authorized(client, brand, offer)
    return {**tokens, "grant_id": grant_id_of(client, brand, tokens), "offer": offer}


def view(client: TestClient, token: str) -> dict[str, Any]:
    answer = client.get("/v1/me/custody", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def browser_of(client: TestClient, token: str) -> HeldBrowser:
    state = view(client, token)
    return HeldBrowser(customer_id=UUID(state["customer_id"]), issuer=state["issuer"])


def readable(values: dict[str, Any]) -> dict[str, Any]:
    """What a brand is given of these stored values: them and their derived fields."""
    return {**values, "age_band": "35-44"} if "birthdate" in values else values


def hold(
    client: TestClient, token: str, browser: HeldBrowser, passkey: dict[str, Any], **changes: Any
) -> Any:
    """Move to self-custody as the portal does: seal every field but the email and every live grant."""
    state = view(client, token)
    values = {**PROFILE, "email": state["email"]}
    body = {
        "fields": browser.seal_fields(PROFILE),
        "unlocks": browser.unlocks(passkey["id"]),
        "grants": {g["grant_id"]: browser.seal_grant(g, readable(values)) for g in state["grants"]},
        **changes,
    }
    return client.post("/v1/me/custody/hold", json=body, headers=bearer(token))


def test_a_new_customer_is_in_the_brokers_custody(client: TestClient, customer: str) -> None:
    state = view(client, customer)
    assert state["custody"] == "broker" and state["held"] is None
    assert unb64(state["prf_input"]) == b"consentry/held-vault/v1"
    assert state["email"] == "ada@example.org" and state["issuer"] == ISSUER


def test_in_self_custody_the_server_keeps_only_what_it_cannot_open_and_the_brand_reads_sealed(
    client: TestClient,
    runtime: Runtime,
    db: Session,
    customer: str,
    passkey: dict[str, Any],
    granted: dict[str, Any],
    brand: BrandCredentials,
    brand_key: ECKey,
) -> None:
    browser = browser_of(client, customer)
    answer = hold(client, customer, browser, passkey)
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert state["custody"] == "customer"
    assert set(state["held"]["fields"]) == set(PROFILE)
    assert [p["unlocks"] for p in state["passkeys"]] == [True]
    (grant,) = state["grants"]
    assert grant["sealed_version"] == 1 and grant["keys"][0]["kid"] == "enc-2026"

    # The broker keeps the email alone under its key; the rest opens with the held key only.
    stored = db.exec(select(VaultField.name).where(VaultField.customer_id == browser.customer_id)).all()
    assert stored == ["email"]
    assert browser.open_fields(state["held"]["fields"]) == PROFILE
    (recovery,) = [u for u in state["held"]["unlocks"] if u["kind"] == "recovery"]
    assert unwrap(recovery, browser.recovery, browser.customer_id) == browser.dek

    # The customer's own reads of the profile: the broker cannot answer them.
    refused = client.get("/v1/me/profile", headers=bearer(customer))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/profile-held")

    # The brand's read: the sealed copy, which the SDK opens with the brand's private key.
    read = client.get("/v1/profile", headers=bearer(granted["access_token"]))
    assert read.status_code == 200, read.text
    assert read.json()["fields"] == {} and read.json()["grant_version"] == 1
    opened = json.loads(jwe.decrypt_compact(read.json()["sealed"], brand_key).plaintext or b"")
    assert opened["grant_id"] == granted["grant_id"] and opened["fields"]["dietary"] == [
        "vegan",
        "nut_allergy",
    ]
    again = client.get("/v1/profile", headers=bearer(granted["access_token"]))  # the plain path this time
    assert again.status_code == 200 and again.json()["sealed"] == read.json()["sealed"]
    kinds = db.exec(select(AuditEntry.kind).where(AuditEntry.customer_id == browser.customer_id)).all()
    assert kinds[-5:] == ["value.created", "custody.changed", "grant.sealed", "profile.read", "profile.read"]


def test_every_key_the_server_holds_fails_to_open_a_held_field_or_unlock(
    client: TestClient, runtime: Runtime, db: Session, customer: str, passkey: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    fields = db.exec(select(HeldField).where(HeldField.customer_id == browser.customer_id)).all()
    unlocks = db.exec(select(HeldUnlock).where(HeldUnlock.customer_id == browser.customer_id)).all()
    assert fields and len(unlocks) == 2
    # The server's data key for this customer, and every key-encryption key it has.
    server_dek = runtime.vault._dek(runtime.vault._key(db, browser.customer_id))
    keks = [runtime.keys.kek(v) for v in range(1, active_version(runtime.keys) + 1)]
    for key in [server_dek, *keks]:
        for row in fields:
            for version in (1, 2):
                cipher = crypto.FieldCipher(key, customer_id=browser.customer_id, dek_version=version)
                with pytest.raises(DecryptionFailed):
                    cipher.open(row.name, row.ciphertext)
        for unlock in unlocks:
            with pytest.raises(DecryptionFailed):
                crypto.unwrap_dek(
                    key, customer_id=browser.customer_id, kek_version=1, wrapped=unlock.wrapped_dek
                )
