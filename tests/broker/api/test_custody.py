"""Self-custody through the API, the browser played by `support.held`: the move to the customer's key
and back, edits, grants sealed to their brands and read by them, and every bad input refused.

The brand reads with the SDK (`clients.brand`), which opens the sealed copy with its private key: the
broker hands over what it cannot open."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from joserfc import jwe
from joserfc.jwk import ECKey
from sqlmodel import Session, col, select, update
from support.core import bearer, sign_up
from support.factors import reauthenticate_with_passkey, register_passkey
from support.held import HeldBrowser, b64, unb64, unwrap
from support.oauth import (
    ISSUER,
    BrandCredentials,
    authorize_params,
    authorized,
    brand_token,
    consent,
    exchange,
    grant_id_of,
    pkce,
    portal_login,
    publish_offer,
    redirect_params,
)
from support.webauthn import SoftAuthenticator

from broker.accounts.models import Brand
from broker.audit.models import AuditEntry
from broker.consent.models import Grant, GrantStatus, SealedCopy
from broker.errors import ValidationFailed
from broker.runtime import Runtime
from clients.auditor import check_reads
from clients.auditor.receipt import verify_receipt
from clients.auditor.tlog import parse_verifier_key
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


def test_an_edit_reseals_exactly_the_grants_it_reaches_and_the_brand_reads_the_new_version(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], granted: dict[str, Any],
    brand_key: ECKey,
) -> None:  # fmt: skip
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    (grant,) = view(client, customer)["grants"]
    changed = {**PROFILE, "household_size": 4}
    values = readable({**changed, "email": "ada@example.org"})

    # The grant holds household_size: an edit of it without the grant sealed anew is refused, whole.
    alone = client.put("/v1/me/custody/fields", json={"fields": browser.seal_fields({"household_size": 4})},
                       headers=bearer(customer))  # fmt: skip
    assert alone.status_code == 422, alone.text
    assert alone.json()["errors"][0]["pointer"] == f"/grants/{grant['grant_id']}"
    body = {
        "fields": browser.seal_fields({"household_size": 4}),
        "grants": {grant["grant_id"]: browser.seal_grant(grant, values)},
    }
    answer = client.put("/v1/me/custody/fields", json=body, headers=bearer(customer))
    assert answer.status_code == 200, answer.text
    assert browser.open_fields(answer.json()["held"]["fields"]) == changed
    assert answer.json()["grants"][0]["sealed_version"] == 2
    read = client.get("/v1/profile", headers=bearer(granted["access_token"])).json()
    opened = json.loads(jwe.decrypt_compact(read["sealed"], brand_key).plaintext or b"")
    assert read["grant_version"] == opened["grant_version"] == 2 and opened["fields"]["household_size"] == 4

    # The grant does not hold the city: an edit of it reaches no grant, and sealing one anyway is refused.
    extra = {
        "fields": browser.seal_fields({"city": "Bath"}),
        "grants": {grant["grant_id"]: browser.seal_grant(grant, values, version=3)},
    }
    refused = client.put("/v1/me/custody/fields", json=extra, headers=bearer(customer))
    assert refused.status_code == 422 and "leave it out" in refused.json()["detail"]
    city = client.put(
        "/v1/me/custody/fields",
        json={"fields": browser.seal_fields({"city": "Bath"})},
        headers=bearer(customer),
    )
    assert city.status_code == 200 and city.json()["grants"][0]["sealed_version"] == 2
    removed = client.put("/v1/me/custody/fields", json={"fields": {"city": None}}, headers=bearer(customer))
    assert removed.status_code == 200 and "city" not in removed.json()["held"]["fields"]


def test_narrowing_a_self_custody_grant_takes_it_sealed_anew_and_its_old_copy_goes(
    client: TestClient, customer: str, passkey: dict[str, Any], granted: dict[str, Any], brand_key: ECKey
) -> None:
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    (grant,) = view(client, customer)["grants"]
    path = f"/v1/me/grants/{grant['grant_id']}"
    kept = ["email", "dietary"]
    unsealed = client.patch(path, json={"fields": kept}, headers=bearer(customer))
    assert unsealed.status_code == 422 and unsealed.json()["errors"][0]["pointer"] == "/sealed"
    narrowed = {
        **grant,
        "purposes": {p: [f for f in names if f in kept] for p, names in grant["purposes"].items()},
    }
    seal = browser.seal_grant(narrowed, readable({**PROFILE, "email": "ada@example.org"}))
    answer = client.patch(path, json={"fields": kept, "sealed": seal}, headers=bearer(customer))
    assert answer.status_code == 200, answer.text
    read = client.get("/v1/profile", headers=bearer(granted["access_token"])).json()
    opened = json.loads(jwe.decrypt_compact(read["sealed"], brand_key).plaintext or b"")
    assert read["grant_version"] == 2 and set(opened["fields"]) == {"email", "dietary"}
    # Shortening alone changes no field: no sealing needed.
    shorter = client.patch(path, json={"expires_at": "2027-01-01T00:00:00Z"}, headers=bearer(customer))
    assert shorter.status_code == 200, shorter.text


def test_revoking_deletes_the_sealed_copy_and_the_log_says_so(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], granted: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    grant_id = UUID(granted["grant_id"])
    assert db.exec(select(SealedCopy).where(SealedCopy.grant_id == grant_id)).all()
    assert client.delete(f"/v1/me/grants/{grant_id}", headers=bearer(customer)).status_code == 204
    db.expire_all()
    assert db.exec(select(SealedCopy).where(SealedCopy.grant_id == grant_id)).all() == []
    kinds = db.exec(select(AuditEntry.kind).where(AuditEntry.grant_id == grant_id)).all()
    assert kinds.index("grant.revoked") < kinds.index("grant.seal_deleted") == len(kinds) - 1
    assert client.get("/v1/profile", headers=bearer(granted["access_token"])).status_code in (401, 403)
    assert view(client, customer)["grants"] == []


def test_an_expired_grant_loses_its_copy_to_the_sweep(
    client: TestClient, runtime: Runtime, db: Session, clock: Any, customer: str, passkey: dict[str, Any],
    granted: dict[str, Any],
) -> None:  # fmt: skip
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    clock.advance(days=181)
    with runtime.sessions() as session:
        assert runtime.grants.settle_lapsed(session) == 1
        session.commit()
    grant_id = UUID(granted["grant_id"])
    assert db.exec(select(SealedCopy).where(SealedCopy.grant_id == grant_id)).all() == []
    entry = db.exec(
        select(AuditEntry).where(AuditEntry.grant_id == grant_id, AuditEntry.kind == "grant.seal_deleted")
    ).one()
    assert json.loads(entry.entry)["reason"] == "expired"


def test_back_to_the_brokers_custody_the_brand_reads_plainly_again(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], granted: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    missing = client.post(
        "/v1/me/custody/release", json={"fields": {"dietary": ["vegan"]}}, headers=bearer(customer)
    )
    assert missing.status_code == 422 and {e["pointer"] for e in missing.json()["errors"]} >= {
        "/birthdate",
        "/given_name",
    }
    answer = client.post("/v1/me/custody/release", json={"fields": PROFILE}, headers=bearer(customer))
    assert answer.status_code == 200, answer.text
    assert answer.json()["custody"] == "broker" and answer.json()["held"] is None
    assert db.exec(select(HeldField)).all() == [] and db.exec(select(HeldUnlock)).all() == []
    assert client.get("/v1/me/profile", headers=bearer(customer)).json()["fields"]["household_size"] == 3
    read = client.get("/v1/profile", headers=bearer(granted["access_token"])).json()
    assert "sealed" not in read and read["fields"]["dietary"] == ["vegan", "nut_allergy"]
    again = client.post("/v1/me/custody/release", json={"fields": PROFILE}, headers=bearer(customer))
    assert again.status_code == 409 and again.json()["type"].endswith("/profile-not-held")


def test_a_live_grant_to_a_brand_without_an_encryption_key_blocks_the_move(
    client: TestClient, customer: str, passkey: dict[str, Any], brand: BrandCredentials
) -> None:
    offer = publish_offer(client, brand_token(client, brand))  # the brand registered no jwks
    authorized(client, brand, offer)
    browser = browser_of(client, customer)
    body = {"fields": browser.seal_fields(PROFILE), "unlocks": browser.unlocks(passkey["id"]), "grants": {}}
    answer = client.post("/v1/me/custody/hold", json=body, headers=bearer(customer))
    assert answer.status_code == 409 and answer.json()["type"].endswith("/grants-unsealable")
    assert "Green Grocer" in answer.json()["detail"]
    assert view(client, customer)["custody"] == "broker"


def _hold_body(
    client: TestClient, token: str, browser: HeldBrowser, passkey: dict[str, Any]
) -> dict[str, Any]:
    return {"fields": browser.seal_fields(PROFILE), "unlocks": browser.unlocks(passkey["id"]), "grants": {}}


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda b: b["fields"].pop("dietary"), "/dietary"),  # a stored field left out: it would be lost
        (lambda b: b["fields"].update(city=b["fields"]["given_name"]), "/city"),  # one the profile lacks
        (lambda b: b["fields"].update(email=b["fields"]["given_name"]), "/email"),  # stays with the broker
        (lambda b: b["fields"].update(dietary="AAAA"), "/dietary"),  # not a sealed value
        (lambda b: b["fields"].update(dietary="not base64!"), "/fields/dietary"),
        (lambda b: b["unlocks"].pop(), "/unlocks"),  # no recovery key
        (
            lambda b: b["unlocks"].__setitem__(
                0, {**b["unlocks"][0], "passkey_id": "9b0c7a52-55a5-4f0b-9a43-8c1f4e0a7c11"}
            ),
            "/unlocks",
        ),  # someone else's (or nobody's) passkey
        (lambda b: b["unlocks"].__setitem__(1, {**b["unlocks"][1], "salt": "AAAA"}), "/unlocks/1/salt"),
        (
            lambda b: b["unlocks"].__setitem__(
                1, {**b["unlocks"][1], "wrapped_key": b64(b"\x01" + b"k" * 40)}
            ),
            "/unlocks/1/wrapped_key",
        ),
        (lambda b: b["unlocks"].append(b["unlocks"][1]), "/unlocks"),  # two recovery keys
    ],
)
def test_a_move_with_bad_input_is_refused_and_changes_nothing(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], change: Any, pointer: str
) -> None:
    browser = browser_of(client, customer)
    body = _hold_body(client, customer, browser, passkey)
    change(body)
    answer = client.post("/v1/me/custody/hold", json=body, headers=bearer(customer))
    assert answer.status_code == 422, answer.text
    assert pointer in {e["pointer"] for e in answer.json()["errors"]}, answer.json()
    assert view(client, customer)["custody"] == "broker"
    assert client.get("/v1/me/profile", headers=bearer(customer)).json()["fields"]["dietary"] == [
        "vegan",
        "nut_allergy",
    ]


def test_a_sealed_copy_of_the_wrong_shape_or_version_is_refused(
    client: TestClient, customer: str, passkey: dict[str, Any], granted: dict[str, Any], brand_key: ECKey
) -> None:
    browser = browser_of(client, customer)
    (grant,) = view(client, customer)["grants"]
    values = readable({**PROFILE, "email": "ada@example.org"})
    other = ECKey.generate_key("P-256", parameters={"kid": "not-theirs", "use": "enc"}, private=True)
    purpose = next(iter(grant["purposes"]))
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": "enc-2026", "cty": "consentry-grant+json"}

    def raw(*algorithms: str, **changes: str) -> dict[str, Any]:
        """A copy whose header differs from the sealed copy's by `changes`."""
        registry = jwe.JWERegistry(algorithms=list(algorithms or ("ECDH-ES", "A256GCM")))
        return {"version": 1, "copies": {purpose: jwe.encrypt_compact({**header, **changes}, b"{}", brand_key,
                                                                       registry=registry)}}  # fmt: skip

    foreign = {**grant, "keys": [other.as_dict(private=False)]}
    cases = {
        "an older version": browser.seal_grant(grant, values, version=0),
        "a version skipped": browser.seal_grant(grant, values, version=2),
        "a key the brand never registered": browser.seal_grant(foreign, values),
        "a purpose missing": {"version": 1, "copies": {}},
        "another purpose": {"version": 1, "copies": {"analytics": raw()["copies"][purpose]}},
        "not a JWE": {"version": 1, "copies": {purpose: "a.b.c"}},
        "another content type": raw(cty="json"),
        "key wrapping": raw("ECDH-ES+A256KW", "A256GCM", alg="ECDH-ES+A256KW"),
        "compression": raw("ECDH-ES", "A256GCM", "DEF", zip="DEF"),
    }
    for case, seal in cases.items():
        body = {**_hold_body(client, customer, browser, passkey), "grants": {grant["grant_id"]: seal}}
        answer = client.post("/v1/me/custody/hold", json=body, headers=bearer(customer))
        assert answer.status_code == 422, (case, answer.text)
        assert answer.json()["errors"][0]["pointer"].startswith(f"/grants/{grant['grant_id']}"), (
            case,
            answer.json(),
        )
        assert view(client, customer)["custody"] == "broker", case
    missing = client.post(
        "/v1/me/custody/hold", json=_hold_body(client, customer, browser, passkey), headers=bearer(customer)
    )
    assert missing.status_code == 422 and "must be sealed" in missing.json()["detail"]


def test_another_passkey_and_a_new_recovery_key_unlock_the_vault(
    client: TestClient, customer: str, passkey: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    second = register_passkey(client, customer, SoftAuthenticator(), name="Phone")
    other = HeldBrowser(browser.customer_id, browser.issuer, dek=browser.dek)
    (unlock, recovery) = other.unlocks(second["id"])
    added = client.post("/v1/me/custody/unlocks", json=unlock, headers=bearer(customer))
    assert added.status_code == 200, added.text
    assert [p["unlocks"] for p in added.json()["passkeys"]] == [True, True]
    replaced = client.post("/v1/me/custody/unlocks", json=recovery, headers=bearer(customer))
    unlocks = replaced.json()["held"]["unlocks"]
    new_recovery = next(u for u in unlocks if u["kind"] == "recovery")
    assert len(unlocks) == 3 and new_recovery["salt"] == recovery["salt"]
    assert unwrap(new_recovery, other.recovery, browser.customer_id) == browser.dek
    # Removing the passkey from the account takes its unlock with it.
    assert client.delete(f"/v1/me/passkeys/{second['id']}", headers=bearer(customer)).status_code == 204
    assert [u["passkey_id"] for u in view(client, customer)["held"]["unlocks"] if u["kind"] == "passkey"] == [
        passkey["id"]
    ]


def test_custody_needs_a_fresh_sign_in_to_move(
    client: TestClient, clock: Any, customer: str, passkey: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    clock.advance(minutes=6)
    client.get("/v1/me/custody", headers=bearer(customer))  # the session stays alive
    answer = hold(client, customer, browser, passkey)
    assert answer.status_code == 403 and answer.json()["type"].endswith("/reauthentication-required")


def test_custodial_and_self_custody_customers_side_by_side(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], granted: dict[str, Any],
    brand: BrandCredentials, brand_key: ECKey,
) -> None:  # fmt: skip
    """Ada holds her key, Bob leaves his with Consentry: the brand reads both, owes and delivers value to
    both, both get signed receipts, and the auditor's replay accounts for every read of the log."""
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    bob = sign_up(client, "bob@example.org")
    assert (
        client.put(
            "/v1/me/profile", json={"email": "bob@example.org", **PROFILE}, headers=bearer(bob)
        ).status_code
        == 200
    )
    assert portal_login(client, "bob@example.org").status_code == 303
    bobs = authorized(client, brand, granted["offer"])
    bobs_grant = grant_id_of(client, brand, bobs)

    ada_read = client.get("/v1/profile", headers=bearer(granted["access_token"])).json()
    bob_read = client.get("/v1/profile", headers=bearer(bobs["access_token"])).json()
    assert ada_read["fields"] == {} and "sealed" in ada_read
    assert "sealed" not in bob_read and bob_read["fields"]["given_name"] == "Ada"  # Bob copied Ada's profile
    opened = json.loads(jwe.decrypt_compact(ada_read["sealed"], brand_key).plaintext or b"")
    plain = {k: v for k, v in bob_read["fields"].items() if k != "email_verified"}
    assert opened["fields"] == plain | {"email": "ada@example.org"}  # the same shape, sealed or not

    token = brand_token(client, brand)
    voucher = {"kind": "voucher", "redemption": "BOX-10-OFF", "amount": "10.00", "currency": "EUR"}
    for grant_id in (granted["grant_id"], bobs_grant):
        delivered = client.post(f"/v1/grants/{grant_id}/value", headers=bearer(token), json=voucher)
        assert delivered.status_code == 201, delivered.text

    jwks = client.get("/.well-known/jwks.json").json()["keys"]
    log_key = parse_verifier_key(client.get("/v1/audit/key").text.strip())
    for token_of, grant_id in ((customer, granted["grant_id"]), (bob, bobs_grant)):
        receipts = client.get(f"/v1/me/receipts?grant_id={grant_id}", headers=bearer(token_of)).json()[
            "items"
        ]
        assert [r["event"] for r in receipts] == ["given"], receipts
        for bundle in receipts:
            assert verify_receipt(bundle, log_key=log_key, jwks=jwks).problems == []

    entries = [json.loads(row.entry) for row in db.exec(select(AuditEntry).order_by(col(AuditEntry.index)))]
    report = check_reads(enumerate(entries))
    assert report.violations == [] and not {"custody.changed", "grant.sealed"} & set(report.unknown)
    assert report.reads == 2 and report.kinds["custody.changed"] == 1 and report.kinds["grant.sealed"] == 1


def test_userinfo_answers_a_self_custody_grant_with_its_sealed_copy(
    client: TestClient, customer: str, passkey: dict[str, Any], brand: BrandCredentials, brand_key: ECKey
) -> None:
    offer = publish_offer(client, brand_token(client, brand))
    scope = "openid profile:email profile:dietary profile:household_size profile:given_name"
    verifier, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge, scope=scope, nonce="n-1")
    answer = redirect_params(consent(client, params))
    tokens = exchange(client, brand, answer["code"], verifier).json()
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    claims = client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))
    assert claims.status_code == 200, claims.text
    body = claims.json()
    assert "given_name" not in body and "https://consentry.dev/claims/fields" not in body
    assert body["https://consentry.dev/claims/sealed_version"] == 1
    opened = json.loads(
        jwe.decrypt_compact(body["https://consentry.dev/claims/sealed"], brand_key).plaintext or b""
    )
    assert opened["sub"] == body["sub"] and opened["fields"]["given_name"] == "Ada"


def test_consent_in_self_custody_needs_the_grant_sealed_to_a_brand_that_can_open_it(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], brand: BrandCredentials,
    rival: BrandCredentials, brand_key: ECKey,
) -> None:  # fmt: skip
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    offer = publish_offer(client, brand_token(client, brand))
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge)
    unsealed = consent(client, params)  # a browser without the script: nothing sealed
    assert unsealed.status_code == 400 and "unlock it with your passkey" in unsealed.text
    page = client.get("/oauth/authorize", params=params)
    assert "data-held-consent" in page.text and "in your custody" in page.text
    # A made-up copy is refused, and no grant is made.
    forged = {
        "grant_id": "7d0b7f5e-1d8c-4e8e-9d6a-2f1f3b0c9a11",
        "sealed": json.dumps({"version": 1, "copies": {"personalised_offers": "a.b.c.d.e"}}),
    }
    refused = consent(client, params, extra=forged)
    assert refused.status_code == 400 and "unlock it with your passkey" in refused.text
    assert db.exec(select(SealedCopy)).all() == []
    # The rival registered no encryption key: it cannot be given a self-custody grant.
    rivals = publish_offer(client, brand_token(client, rival))
    screen = client.get("/oauth/authorize", params=authorize_params(rival, rivals["id"], challenge))
    assert (
        "registered no encryption key" in screen.text
        and "disabled>Share and accept" in screen.text.replace("\n", "").replace("  ", "")
    )
    assert consent(client, authorize_params(rival, rivals["id"], challenge)).status_code == 400


def test_the_directory_shows_a_self_custody_customer_only_brands_that_can_open_sealed_data(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], brand: BrandCredentials,
    rival: BrandCredentials, brand_key: ECKey,
) -> None:  # fmt: skip
    ours = publish_offer(client, brand_token(client, brand), listed=True)
    theirs = publish_offer(client, brand_token(client, rival), listed=True)  # no encryption key
    listed = {
        o["offer_id"] for o in client.get("/v1/directory/offers", headers=bearer(customer)).json()["items"]
    }
    assert {ours["id"], theirs["id"]} <= listed
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    listed = {
        o["offer_id"] for o in client.get("/v1/directory/offers", headers=bearer(customer)).json()["items"]
    }
    assert ours["id"] in listed and theirs["id"] not in listed
    filled = client.get(f"/v1/directory/offers/{ours['id']}", headers=bearer(customer)).json()["fields"]
    assert {f["name"]: f["filled"] for f in filled}["dietary"] is True  # the broker knows which, not what

    path = "/v1/directory/offers/{}/grant"
    choice = {"fields": ["household_size"], "special_category_consent": True}
    unsealed = client.post(path.format(ours["id"]), json=choice, headers=bearer(customer))
    assert unsealed.status_code == 422 and unsealed.json()["errors"][0]["pointer"] == "/sealed"
    refused = client.post(path.format(theirs["id"]), json=choice, headers=bearer(customer))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/grants-unsealable")

    sealing = client.get(f"/v1/me/custody/offers/{ours['id']}", headers=bearer(customer)).json()
    assert sealing["keys"][0]["kid"] == "enc-2026" and sealing["client_id"] == brand.client_id
    grant_id = str(uuid4())
    purpose = {sealing["purpose"]: ["email", "dietary", "household_size"]}  # required, and the one ticked
    grant = {**sealing, "grant_id": grant_id, "purposes": purpose, "sealed_version": 0}
    sealed = browser.seal_grant(grant, readable({**PROFILE, "email": "ada@example.org"}))
    started = client.post(path.format(ours["id"]), json={**choice, "grant_id": grant_id, "sealed": sealed},
                          headers=bearer(customer))  # fmt: skip
    assert started.status_code == 201, started.text
    assert started.json()["id"] == grant_id
    assert db.exec(select(SealedCopy).where(SealedCopy.grant_id == UUID(grant_id))).one().version == 1


def test_a_sealing_that_lost_a_race_is_refused_rather_than_bringing_back_dropped_fields(
    client: TestClient, runtime: Runtime, db: Session, customer: str, passkey: dict[str, Any],
    granted: dict[str, Any], brand_key: ECKey,
) -> None:  # fmt: skip
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    (state,) = view(client, customer)["grants"]
    grant = db.get(Grant, UUID(granted["grant_id"]))
    brand = db.exec(select(Brand).where(Brand.client_id == state["client_id"])).one()
    assert grant is not None and grant.sealed_version == 1
    # Another request (a narrowing in another tab) sealed version 2 after this one read version 1.
    stale_row = update(Grant).where(col(Grant.id) == grant.id).execution_options(synchronize_session=False)
    db.exec(stale_row.values(sealed_version=2))  # the object in hand still says 1
    stale = browser.seal_grant(state, readable({**PROFILE, "email": "ada@example.org"}), version=2)
    with pytest.raises(ValidationFailed, match="changed meanwhile"):
        runtime.custody.sealed.store(db, grant, brand, stale["copies"], version=2, pointer="/grants/x")
    # An ended grant is never sealed again, whatever version a stale request names.
    db.exec(stale_row.values(sealed_version=1, status=GrantStatus.REVOKED))
    with pytest.raises(ValidationFailed, match="changed meanwhile"):
        runtime.custody.sealed.store(db, grant, brand, stale["copies"], version=2, pointer="/grants/x")
    db.rollback()


def test_a_copy_sealed_to_a_key_the_brand_dropped_is_not_served_until_sealed_anew(
    client: TestClient, db: Session, customer: str, passkey: dict[str, Any], granted: dict[str, Any],
    brand_key: ECKey,
) -> None:  # fmt: skip
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    row = db.exec(
        select(Brand).where(Brand.client_id == view(client, customer)["grants"][0]["client_id"])
    ).one()
    new_key = ECKey.generate_key("P-256", parameters={"kid": "enc-2027", "use": "enc"}, private=True)
    row.jwks = {"keys": [new_key.as_dict(private=False)]}  # the brand rotated its key
    db.add(row)
    db.commit()
    refused = client.get("/v1/profile", headers=bearer(granted["access_token"]))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/sealed-copy-missing")
    (grant,) = view(client, customer)["grants"]
    assert grant["sealed"] is False and grant["keys"][0]["kid"] == "enc-2027"
    values = readable({**PROFILE, "email": "ada@example.org"})
    seals = {"grants": {grant["grant_id"]: browser.seal_grant(grant, values)}}
    resealed = client.post("/v1/me/custody/seals", json=seals, headers=bearer(customer))
    assert resealed.status_code == 200 and resealed.json()["grants"][0]["sealed"] is True
    read = client.get("/v1/profile", headers=bearer(granted["access_token"])).json()
    assert read["grant_version"] == 2
    assert (
        json.loads(jwe.decrypt_compact(read["sealed"], new_key).plaintext or b"")["fields"]["household_size"]
        == 3
    )


def test_a_copy_whose_header_is_not_an_object_is_refused(
    client: TestClient, customer: str, passkey: dict[str, Any], granted: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    (grant,) = view(client, customer)["grants"]
    header = b64(b'["alg", "enc"]')
    odd = {
        "version": 1,
        "copies": dict.fromkeys(grant["purposes"], f"{header}..AAAAAAAAAAAAAAAA.AA.AAAAAAAAAAAAAAAAAAAAAA"),
    }
    body = {**_hold_body(client, customer, browser, passkey), "grants": {grant["grant_id"]: odd}}
    answer = client.post("/v1/me/custody/hold", json=body, headers=bearer(customer))
    assert answer.status_code == 422, answer.text


def test_an_unlock_needs_a_fresh_sign_in_and_a_move_may_be_larger_than_other_bodies(
    client: TestClient, clock: Any, customer: str, passkey: dict[str, Any]
) -> None:
    browser = browser_of(client, customer)
    assert hold(client, customer, browser, passkey).status_code == 200
    clock.advance(minutes=6)
    view(client, customer)  # the session stays alive
    (_, recovery) = browser.unlocks(passkey["id"])
    stale = client.post("/v1/me/custody/unlocks", json=recovery, headers=bearer(customer))
    assert stale.status_code == 403 and stale.json()["type"].endswith("/reauthentication-required")
    big = {"fields": {"city": b64(b"\x01" + b"x" * 100_000)}}
    assert (
        client.put("/v1/me/profile", json={"city": "x" * 100_000}, headers=bearer(customer)).status_code
        == 413
    )
    answer = client.put("/v1/me/custody/fields", json=big, headers=bearer(customer))
    assert answer.status_code == 422 and answer.json()["errors"][0]["pointer"].startswith("/fields/city"), (
        answer.text
    )
