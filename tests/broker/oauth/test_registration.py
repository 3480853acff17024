"""Dynamic client registration (RFC 7591): a brand registers itself with an initial access token, or
with none when the operator opened registration; bad metadata and bad tokens are refused in RFC 7591's
terms, and nothing is registered."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import Session, col, select
from support.core import FakeClock
from support.oauth import (
    ISSUER,
    REDIRECT,
    BrandCredentials,
    authorize_params,
    consent,
    exchange,
    pkce,
    publish_offer,
    redirect_params,
)

from broker.accounts.models import Brand
from broker.app import create_app
from broker.audit.models import AuditEntry
from broker.oauth.assertions import ASSERTION_TYPE
from broker.oauth.registration import issue_registration_token
from broker.runtime import Runtime

METADATA = {
    "client_name": "Corner Bakery",
    "redirect_uris": [REDIRECT],
    "post_logout_redirect_uris": ["https://grocer.example/bye"],
    "token_endpoint_auth_method": "client_secret_post",
    "grant_types": ["authorization_code", "refresh_token"],
    "contacts": ["privacy@bakery.example"],
    "policy_uri": "https://bakery.example/privacy",
    "tos_uri": "https://bakery.example/terms",
    "id_token_signed_response_alg": "Ed25519",
    "logo_uri": "https://bakery.example/logo.png",  # not kept: unknown metadata is ignored
}


def _token(db: Session, runtime: Runtime, uses: int = 1, days: int = 7) -> str:
    token, _ = issue_registration_token(db, uses=uses, lifetime=timedelta(days=days), now=runtime.clock())
    db.commit()
    return token


def _register(client: TestClient, body: Any, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/oauth/register", json=body, headers=headers)


def test_a_brand_registers_itself_and_signs_customers_in(
    client: TestClient, runtime: Runtime, db: Session, customer: str
) -> None:
    discovered = client.get("/.well-known/openid-configuration").json()
    assert discovered["registration_endpoint"] == f"{ISSUER}/oauth/register"
    answer = _register(client, METADATA, _token(db, runtime))
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["client_id"].startswith("brd_") and body["client_secret"].startswith("cs_")
    assert body["client_secret_expires_at"] == 0 and body["registration_access_token"].startswith("rat_")
    assert body["registration_client_uri"] == f"{ISSUER}/oauth/register/{body['client_id']}"
    assert body["contacts"] == METADATA["contacts"] and body["tos_uri"] == METADATA["tos_uri"]
    assert body["grant_types"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert "logo_uri" not in body
    brand = db.exec(select(Brand).where(col(Brand.client_id) == body["client_id"])).one()
    assert brand.name == "Corner Bakery" and brand.policy_uri == METADATA["policy_uri"]
    assert brand.registration_token_hash is not None and brand.id_token_signed_response_alg == "Ed25519"
    entries = db.exec(select(AuditEntry).where(col(AuditEntry.kind) == "client.registered")).all()
    assert (
        len(entries) == 1 and b"Corner Bakery" not in entries[0].entry and b"privacy@" not in entries[0].entry
    )

    credentials = BrandCredentials(body["client_id"], body["client_secret"])
    token = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "offers:write",
                                              "client_id": credentials.client_id,
                                              "client_secret": body["client_secret"]})  # fmt: skip
    assert token.status_code == 200, token.text
    offer = publish_offer(client, token.json()["access_token"])
    verifier, challenge = pkce()
    params = authorize_params(credentials, offer["id"], challenge, scope="openid", nonce="n-reg")
    screen = client.get("/oauth/authorize", params=params).text
    assert "mailto:privacy@bakery.example" in screen and 'href="https://bakery.example/privacy"' in screen
    assert 'href="https://bakery.example/terms"' in screen, "the customer sees whom to ask, before consenting"
    code = redirect_params(consent(client, params))["code"]
    tokens = exchange(client, credentials, code, verifier)
    assert tokens.status_code == 200 and "id_token" in tokens.json()
    receipts = client.get("/v1/me/receipts", headers={"Authorization": f"Bearer {customer}"}).json()["items"]
    controller = receipts[0]["receipt"]["controller"]
    assert controller["contact"] == "privacy@bakery.example" and controller["terms"] == METADATA["tos_uri"]
    assert controller["privacy_policy"] == METADATA["policy_uri"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"redirect_uris": ["http://bakery.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://bakery.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"post_logout_redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "client_secret_jwt"}, "invalid_client_metadata"),
        ({"client_name": ""}, "invalid_client_metadata"),
        ({"client_name": None}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"response_types": ["token"]}, "invalid_client_metadata"),
        (
            {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]},
            "invalid_client_metadata",
        ),
        ({"contacts": ["not an address"]}, "invalid_client_metadata"),
        ({"policy_uri": "http://bakery.example/privacy"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "HS256"}, "invalid_client_metadata"),
    ],
)
def test_bad_metadata_is_refused_in_rfc_7591_terms_and_spends_no_use(
    client: TestClient, runtime: Runtime, db: Session, change: dict[str, Any], error: str
) -> None:
    token = _token(db, runtime, uses=1)
    refused = _register(client, {**METADATA, **change}, token)
    assert refused.status_code == 400 and refused.json()["error"] == error, refused.text
    assert refused.json()["error_description"]
    assert _register(client, METADATA, token).status_code == 201, "the refusal did not use the token up"


def test_bodies_that_are_not_metadata_are_refused(client: TestClient, runtime: Runtime, db: Session) -> None:
    token = _token(db, runtime, uses=5)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for content in (b"not json", b"[]", b'"text"', b"{}"):
        refused = client.post("/oauth/register", content=content, headers=headers)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata", content


def test_initial_access_tokens_are_checked_spent_and_expire(
    client: TestClient, runtime: Runtime, db: Session, clock: FakeClock
) -> None:
    for token in (None, "rit_unknown", "Basic abc"):
        refused = _register(client, METADATA, token)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token", token
        assert refused.headers["www-authenticate"].startswith("Bearer")
    once = _token(db, runtime, uses=1)
    assert _register(client, METADATA, once).status_code == 201
    used_up = _register(client, METADATA, once)
    assert used_up.status_code == 401 and "used up" in used_up.json()["error_description"]
    soon = _token(db, runtime, uses=3, days=1)
    clock.advance(days=1, seconds=1)
    expired = _register(client, METADATA, soon)
    assert expired.status_code == 401 and "expired" in expired.json()["error_description"]
    with pytest.raises(Exception, match="at least one use"):
        issue_registration_token(db, uses=0, lifetime=timedelta(days=1), now=runtime.clock())


def test_open_registration_needs_no_token(runtime: Runtime) -> None:
    opened = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"open_registration": True})
    )
    with TestClient(create_app(runtime=opened), base_url=ISSUER) as open_client:
        answer = _register(open_client, {**METADATA, "token_endpoint_auth_method": "none"})
        assert answer.status_code == 201, answer.text
        assert "client_secret" not in answer.json()
        assert answer.json()["grant_types"] == ["authorization_code", "refresh_token"]
        assert _register(open_client, METADATA, "rit_unknown").status_code == 401, "a token sent is checked"


def test_a_brand_reads_and_updates_its_registration_with_its_registration_access_token(
    client: TestClient, runtime: Runtime, db: Session, brand: BrandCredentials
) -> None:
    mine = _register(client, METADATA, _token(db, runtime, uses=2)).json()
    other = _register(client, {**METADATA, "client_name": "Other"}, _token(db, runtime)).json()
    uri, token = f"/oauth/register/{mine['client_id']}", mine["registration_access_token"]
    read = client.get(uri, headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200 and read.headers["cache-control"] == "no-store"
    assert read.json()["client_name"] == "Corner Bakery" and "client_secret" not in read.json()
    assert read.json()["registration_client_uri"] == f"{ISSUER}{uri}"
    for wrong in (None, other["registration_access_token"], "rat_unknown"):
        headers = {"Authorization": f"Bearer {wrong}"} if wrong else {}
        refused = client.get(uri, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token", wrong
    operator_brand = client.get(
        f"/oauth/register/{brand.client_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert operator_brand.status_code == 401, "a brand the operator registered has no registration to manage"

    changed = {
        **METADATA,
        "client_id": mine["client_id"],
        "client_name": "Corner Bakery & Co",
        "contacts": ["dpo@bakery.example"],
        "redirect_uris": [REDIRECT, "https://bakery.example/cb2"],
    }
    updated = client.put(uri, json=changed, headers={"Authorization": f"Bearer {token}"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["client_name"] == "Corner Bakery & Co"
    assert client.get(uri, headers={"Authorization": f"Bearer {token}"}).json()["contacts"] == [
        "dpo@bakery.example"
    ]
    row = db.exec(select(Brand).where(col(Brand.client_id) == mine["client_id"])).one()
    db.refresh(row)
    assert row.name == "Corner Bakery & Co" and len(row.redirect_uris) == 2
    assert len(db.exec(select(AuditEntry).where(col(AuditEntry.kind) == "client.updated")).all()) == 1
    for change, error in (
        ({"client_id": other["client_id"]}, "invalid_client_metadata"),
        ({"client_id": None}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
        ({"redirect_uris": ["http://bakery.example/cb"]}, "invalid_redirect_uri"),
    ):
        refused = client.put(uri, json={**changed, **change}, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 400 and refused.json()["error"] == error, change
    stolen = client.put(
        uri, json=changed, headers={"Authorization": f"Bearer {other['registration_access_token']}"}
    )
    assert stolen.status_code == 401


def _assertion(client_id: str, key: Any, *, alg: str = "ES256", **changes: Any) -> str:
    now = int(time.time())  # Authlib checks the assertion's times against the real clock
    claims = {"iss": client_id, "sub": client_id, "aud": f"{ISSUER}/oauth/token", "iat": now,
              "exp": now + 60, "jti": secrets.token_urlsafe(16), **changes}  # fmt: skip
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def _unsigned(claims: dict[str, Any]) -> str:
    """An `alg: none` JWT, built by hand (joserfc rightly refuses to make one)."""
    part = [
        base64.urlsafe_b64encode(json.dumps(x).encode()).rstrip(b"=").decode()
        for x in ({"alg": "none"}, claims)
    ]
    return f"{part[0]}.{part[1]}."


def _with_assertion(client: TestClient, path: str, client_id: str, assertion: str, **form: str) -> Any:
    return client.post(path, data={**form, "client_id": client_id, "client_assertion": assertion,
                                   "client_assertion_type": ASSERTION_TYPE})  # fmt: skip


def test_a_brand_with_keys_authenticates_with_signed_assertions_each_used_once(
    client: TestClient, runtime: Runtime, db: Session
) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "bakery-1", "use": "sig"})
    metadata = {**METADATA, "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [key.as_dict(private=False)]}}  # fmt: skip
    registered = _register(client, metadata, _token(db, runtime))
    assert registered.status_code == 201, registered.text
    body = registered.json()
    cid = body["client_id"]
    assert "client_secret" not in body and body["jwks"]["keys"][0]["kid"] == "bakery-1"
    assert body["token_endpoint_auth_method"] == "private_key_jwt"

    grant = {"grant_type": "client_credentials", "scope": "offers:read"}
    assertion = _assertion(cid, key)
    issued = _with_assertion(client, "/oauth/token", cid, assertion, **grant)
    assert issued.status_code == 200, issued.text
    replayed = _with_assertion(client, "/oauth/token", cid, assertion, **grant)
    # invalid_client: 400 when the client did not use the Authorization header (RFC 6749 §5.2)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_client"

    access = issued.json()["access_token"]
    seen = _with_assertion(client, "/oauth/introspect", cid, _assertion(cid, key), token=access)
    assert seen.status_code == 200 and seen.json()["active"] is True
    revoked = _with_assertion(client, "/oauth/revoke", cid, _assertion(cid, key), token=access)
    assert revoked.status_code == 200

    stranger = ECKey.generate_key("P-256", parameters={"kid": "bakery-1"})  # same kid, another key
    for bad in (
        _assertion(cid, stranger),
        _assertion(cid, key, exp=int(time.time()) - 600),
        _assertion(cid, key, aud="https://elsewhere.example/token"),
        _assertion(cid, key, iss="brd_someone_else"),
        _assertion(cid, key, jti="x" * 300),
        "not.a.jwt",
        _unsigned({"iss": cid, "sub": cid, "aud": f"{ISSUER}/oauth/token", "exp": int(time.time()) + 60}),
    ):
        refused = _with_assertion(client, "/oauth/token", cid, bad, **grant)
        assert refused.status_code in (400, 401) and refused.json()["error"] in (
            "invalid_client",
            "invalid_request",
        )
    with_secret = client.post("/oauth/token", data=grant, auth=(cid, "cs_guess"))
    assert with_secret.status_code == 401, "a brand with keys has no secret to guess"


def test_keys_are_registered_public_and_only_for_private_key_jwt(
    client: TestClient, runtime: Runtime, db: Session
) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"})
    token = _token(db, runtime, uses=10)
    signing = {**METADATA, "token_endpoint_auth_method": "private_key_jwt"}
    for body in (
        signing,  # no keys
        {**signing, "jwks": {"keys": [key.as_dict(private=True)]}},  # a private key
        {**signing, "jwks": {"keys": []}},
        {**signing, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},  # a shared secret
        {**signing, "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "bad"}]}},
        {**signing, "jwks": {"keys": [{**key.as_dict(private=False), "use": "enc"}]}},  # none to sign with
        {**METADATA, "jwks": {"keys": [key.as_dict(private=False)]}},  # keys, but a secret to use
        {**METADATA, "jwks": {"keys": [{**key.as_dict(private=False), "use": "wrap"}]}},  # neither use
        # encryption keys are for ECDH-ES on P-256 or X25519 only
        {**METADATA, "jwks": {"keys": [{**key.as_dict(private=False), "use": "enc", "alg": "RSA-OAEP"}]}},
        {
            **METADATA,
            "jwks": {"keys": [{**ECKey.generate_key("P-384").as_dict(private=False), "use": "enc"}]},
        },
    ):
        refused = _register(client, body, token)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata", body


def test_a_brand_that_deletes_its_registration_ends_its_grants_and_stops_authenticating(
    client: TestClient, runtime: Runtime, db: Session, customer: str
) -> None:
    body = _register(client, METADATA, _token(db, runtime)).json()
    cid, secret, token = body["client_id"], body["client_secret"], body["registration_access_token"]
    credentials = BrandCredentials(cid, secret)
    form = {"grant_type": "client_credentials", "scope": "offers:write grants:read",
            "client_id": cid, "client_secret": secret}  # fmt: skip
    brand_token = client.post("/oauth/token", data=form).json()["access_token"]
    offer = publish_offer(client, brand_token)
    verifier, challenge = pkce()
    code = redirect_params(consent(client, authorize_params(credentials, offer["id"], challenge)))["code"]
    access = exchange(client, credentials, code, verifier).json()["access_token"]
    assert client.get("/v1/profile", headers={"Authorization": f"Bearer {access}"}).status_code == 200

    uri = f"/oauth/register/{cid}"
    assert client.delete(uri).status_code == 401, "only with its registration access token"
    assert client.delete(uri, headers={"Authorization": f"Bearer {token}"}).status_code == 204
    mine = client.get("/v1/me/grants", headers={"Authorization": f"Bearer {customer}"}).json()["items"]
    assert [(g["status"], g["ended_by"]) for g in mine] == [("revoked", "brand")]
    assert client.get("/v1/profile", headers={"Authorization": f"Bearer {access}"}).status_code in (401, 403)
    assert client.get("/v1/offers", headers={"Authorization": f"Bearer {brand_token}"}).status_code == 401
    gone = client.post("/oauth/token", data=form)
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_client"
    assert client.get(uri, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    again = client.get("/oauth/authorize", params=authorize_params(credentials, offer["id"], challenge))
    assert again.status_code == 400, "an authorization request for a deleted brand is not shown"
    kinds = [e.kind for e in db.exec(select(AuditEntry).order_by(col(AuditEntry.index))).all()]
    after = kinds[kinds.index("profile.read") + 1 :]
    assert after[0] == "offer.withdrawn" and "grant.revoked" in after and after[-1] == "client.deleted", after
    row = db.exec(select(Brand).where(col(Brand.client_id) == cid)).one()
    db.refresh(row)
    assert row.deleted_at is not None and row.secret_hash is None, "the row stays for what it owes"
    owed = client.get("/v1/me/value", headers={"Authorization": f"Bearer {customer}"}).json()["items"]
    assert [item["state"] for item in owed] == ["owed"], "the voucher it declared is still owed"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=12,
)
_MEMBERS = st.sampled_from([*METADATA, "jwks", "client_id", "software_statement"])


@hypothesis.settings(
    max_examples=60, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(changes=st.dictionaries(_MEMBERS, _JSON, max_size=4))
def test_any_metadata_is_registered_or_refused_never_a_500(
    client: TestClient, runtime: Runtime, db: Session, changes: dict[str, Any]
) -> None:
    answer = _register(client, {**METADATA, **changes}, _token(db, runtime))
    assert answer.status_code in (201, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")


def test_a_brand_rotates_its_secret_with_its_registration_access_token(
    client: TestClient, runtime: Runtime, db: Session
) -> None:
    body = _register(client, METADATA, _token(db, runtime)).json()
    cid, old, token = body["client_id"], body["client_secret"], body["registration_access_token"]
    form = {"grant_type": "client_credentials", "scope": "offers:read", "client_id": cid}
    assert client.post("/oauth/token", data={**form, "client_secret": old}).status_code == 200
    assert client.post(f"/oauth/register/{cid}/secret").status_code == 401
    rotated = client.post(f"/oauth/register/{cid}/secret", headers={"Authorization": f"Bearer {token}"})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["client_secret"]
    assert new != old and client.post("/oauth/token", data={**form, "client_secret": new}).status_code == 200
    dead = client.post("/oauth/token", data={**form, "client_secret": old})
    assert dead.status_code in (400, 401) and dead.json()["error"] == "invalid_client", "the old one is dead"
    public = _register(client, {**METADATA, "token_endpoint_auth_method": "none"}, _token(db, runtime)).json()
    manage = {"Authorization": f"Bearer {public['registration_access_token']}"}
    no_secret = client.post(f"/oauth/register/{public['client_id']}/secret", headers=manage)
    assert no_secret.status_code == 400 and no_secret.json()["error"] == "invalid_client_metadata"


def _encryption_key(kid: str = "enc-1") -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "use": "enc", "alg": "ECDH-ES"})


def test_a_brand_registers_an_encryption_key_beside_its_secret(
    client: TestClient, runtime: Runtime, db: Session
) -> None:
    """A key to receive self-custody grants (JWE, ECDH-ES) is not a credential: any brand may hold one."""
    key = _encryption_key()
    body = {**METADATA, "jwks": {"keys": [key.as_dict(private=False)]}}
    registered = _register(client, body, _token(db, runtime))
    assert registered.status_code == 201, registered.text
    kept = registered.json()
    assert kept["token_endpoint_auth_method"] != "private_key_jwt" and "client_secret" in kept
    assert kept["jwks"]["keys"][0]["use"] == "enc"
    brand = db.exec(select(Brand).where(col(Brand.client_id) == kept["client_id"])).one()
    assert brand.encryption_jwks() == {"keys": [key.as_dict(private=False)]}
    assert brand.signing_jwks() is None


def test_an_encryption_key_never_signs_for_its_brand(
    client: TestClient, runtime: Runtime, db: Session
) -> None:
    """The attack: a P-256 key registered for encryption is also a valid ES256 key. An assertion signed
    with it must not authenticate the brand. The broker offers only the signing keys (`keys_of_use`),
    and joserfc refuses a key whose `use` is enc besides: two locks."""
    signing = ECKey.generate_key("P-256", parameters={"kid": "sig-1", "use": "sig"})
    encryption = ECKey.generate_key("P-256", parameters={"kid": "enc-1", "use": "enc"})
    keys = [signing.as_dict(private=False), encryption.as_dict(private=False)]
    metadata = {**METADATA, "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": keys}}
    registered = _register(client, metadata, _token(db, runtime))
    assert registered.status_code == 201, registered.text
    cid = registered.json()["client_id"]
    grant = {"grant_type": "client_credentials", "scope": "offers:read"}
    assert _with_assertion(client, "/oauth/token", cid, _assertion(cid, signing), **grant).status_code == 200
    # the same key material without its `use` (joserfc, rightly, will not sign with an enc key)
    forged = ECKey.import_key({k: v for k, v in encryption.as_dict(private=True).items() if k != "use"})
    refused = _with_assertion(client, "/oauth/token", cid, _assertion(cid, forged), **grant)
    assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_client"
