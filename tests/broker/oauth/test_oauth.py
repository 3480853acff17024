"""The OAuth consent flow end to end through the app, and the attacks of RFC 9700 against it."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import OctKey
from sqlmodel import Session
from support.core import FakeClock, bearer, sign_up
from support.oauth import (
    ISSUER,
    OFFER,
    REDIRECT,
    BrandCredentials,
    authorize_params,
    authorized,
    brand_token,
    consent,
    exchange,
    parse_form,
    pkce,
    portal_login,
    publish_offer,
    redirect_params,
)

from broker.consent.offer_schemas import OfferDraft
from broker.oauth.clients import ClientRecord, find_client, new_client_secret, register_brand
from broker.oauth.context import OAuthContext
from broker.runtime import Runtime


def _read(client: TestClient, access_token: str) -> Any:
    return client.get("/v1/profile", headers=bearer(access_token))


# --- the happy path --------------------------------------------------------------------------------


def test_consent_gives_the_brand_exactly_the_approved_fields(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer, untick=("given_name",))
    assert tokens["token_type"].lower() == "bearer" and tokens["expires_in"] <= 600
    read = _read(client, tokens["access_token"])
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["fields"] == {
        "email": "ada@example.org",
        "email_verified": True,
        "dietary": ["vegan", "nut_allergy"],
        "household_size": 3,
        "age_band": "35-44",
    }
    assert body["purpose"] == "personalised_offers"
    grants = client.get("/v1/me/grants", headers=bearer(customer)).json()["items"]
    assert [g["fields"] for g in grants] == [["email", "dietary", "household_size", "age_band"]]


def test_access_token_is_an_ed25519_jwt_with_pairwise_subject(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    header = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "Ed25519" and header["typ"] == "at+jwt" and header["kid"]
    jwks = client.get("/.well-known/jwks.json").json()
    assert header["kid"] in {k["kid"] for k in jwks["keys"]} and all("d" not in k for k in jwks["keys"])
    rival_offer = publish_offer(client, brand_token(client, rival))
    rival_tokens = authorized(client, rival, rival_offer)
    mine = _read(client, tokens["access_token"]).json()["sub"]
    theirs = _read(client, rival_tokens["access_token"]).json()["sub"]
    assert mine != theirs and len(mine) == 64


def test_deny_redirects_with_access_denied_and_creates_nothing(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge)
    answer = redirect_params(consent(client, params, decision="deny"))
    assert answer == {"error": "access_denied", "state": params["state"], "iss": ISSUER} | {
        k: v for k, v in answer.items() if k == "error_description"
    }
    assert client.get("/v1/me/grants", headers=bearer(customer)).json()["items"] == []


def test_special_category_fields_need_their_own_tick(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    response = consent(client, authorize_params(brand, offer["id"], challenge), special_consent=False)
    assert response.status_code == 400
    assert "explicit agreement" in response.text
    assert client.get("/v1/me/grants", headers=bearer(customer)).json()["items"] == []


def test_logged_out_customer_is_sent_to_log_in_and_back(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any]
) -> None:
    sign_up(client, "grace@example.org")
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge)
    first = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/portal/login?next=")
    back = portal_login(
        client,
        "grace@example.org",
        next_path=first.headers["location"]
        .split("next=", 1)[1]
        .replace("%2F", "/")
        .replace("%3F", "?")
        .replace("%3D", "=")
        .replace("%26", "&")
        .replace("%3A", ":")
        .replace("%20", " "),
    )
    assert back.status_code == 303 and back.headers["location"].startswith("/oauth/authorize?")


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    first = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=brand.auth(),
    )
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert _read(client, rotated["access_token"]).status_code == 200
    replay = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=brand.auth(),
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    again = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        auth=brand.auth(),
    )
    assert again.status_code == 400, "the whole family must be revoked after a reuse"
    assert _read(client, rotated["access_token"]).status_code == 401


def test_customer_revocation_blocks_the_very_next_read(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    grant_id = _read(client, tokens["access_token"]).json()["grant_id"]
    assert client.delete(f"/v1/me/grants/{grant_id}", headers=bearer(customer)).status_code == 204
    read = _read(client, tokens["access_token"])
    assert read.status_code == 403
    assert read.headers["content-type"] == "application/problem+json"
    assert read.json()["type"].endswith("/grant-revoked") and "since" in read.json()["detail"]
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=brand.auth(),
    )
    assert refresh.status_code == 400


def test_narrowing_drops_fields_from_the_next_read(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    grant_id = _read(client, tokens["access_token"]).json()["grant_id"]
    narrowed = client.patch(
        f"/v1/me/grants/{grant_id}", json={"fields": ["email", "dietary"]}, headers=bearer(customer)
    )
    assert narrowed.status_code == 200 and narrowed.json()["fields"] == ["email", "dietary"]
    assert set(_read(client, tokens["access_token"]).json()["fields"]) == {
        "email",
        "email_verified",
        "dietary",
    }
    widen = client.patch(
        f"/v1/me/grants/{grant_id}",
        json={"fields": ["email", "dietary", "given_name"]},
        headers=bearer(customer),
    )
    assert widen.status_code == 422
    drop_required = client.patch(
        f"/v1/me/grants/{grant_id}", json={"fields": ["email"]}, headers=bearer(customer)
    )
    assert drop_required.status_code == 422 and "required" in drop_required.text


def test_expiry_is_exact_to_the_second(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    tokens = authorized(client, brand, offer)
    grant = client.get("/v1/me/grants", headers=bearer(customer)).json()["items"][0]
    expiry = (clock.now + timedelta(seconds=60)).isoformat()
    assert (
        client.patch(
            f"/v1/me/grants/{grant['id']}", json={"expires_at": expiry}, headers=bearer(customer)
        ).status_code
        == 200
    )
    clock.advance(seconds=59)
    assert _read(client, tokens["access_token"]).status_code == 200
    clock.advance(seconds=1)
    read = _read(client, tokens["access_token"])
    assert read.status_code == 403 and read.json()["type"].endswith("/grant-expired")
    assert (
        client.get("/v1/me/grants", params={"status": "expired"}, headers=bearer(customer)).json()["items"][
            0
        ]["id"]
        == grant["id"]
    )


def test_every_read_leaves_an_audit_entry(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    from sqlmodel import col, select

    from broker.audit.entries import decode
    from broker.audit.models import AuditEntry

    tokens = authorized(client, brand, offer)
    response = client.get(
        "/v1/profile", headers={**bearer(tokens["access_token"]), "X-Request-ID": "read-42"}
    )
    reads = db.exec(
        select(AuditEntry).where(AuditEntry.kind == "profile.read").order_by(col(AuditEntry.index))
    )
    entries = [decode(row.entry) for row in reads]
    assert [(e["request_id"], e["purpose"], e["grant"]) for e in entries] == [
        ("read-42", "personalised_offers", response.json()["grant_id"])
    ]
    assert set(entries[0]["fields"]) == set(response.json()["fields"]) - {"email_verified"}
    assert entries[0]["subject"] == response.json()["sub"]


def test_brand_lists_and_ends_its_grants_and_cannot_see_others(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    grant_id = _read(client, tokens["access_token"]).json()["grant_id"]
    mine = brand_token(client, brand)
    listing = client.get("/v1/grants", headers=bearer(mine)).json()
    assert [g["id"] for g in listing["items"]] == [grant_id] and listing["next_cursor"] is None
    theirs = brand_token(client, rival)
    assert client.get(f"/v1/grants/{grant_id}", headers=bearer(theirs)).status_code == 404
    assert client.delete(f"/v1/grants/{grant_id}", headers=bearer(theirs)).status_code == 404
    assert client.get("/v1/grants", headers=bearer(theirs)).json()["items"] == []
    assert client.delete(f"/v1/grants/{grant_id}", headers=bearer(mine)).status_code == 204
    assert _read(client, tokens["access_token"]).status_code == 403


def test_metadata_lists_every_endpoint(client: TestClient) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == ISSUER
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    for name in ("authorization", "token", "revocation", "introspection"):
        assert meta[f"{name}_endpoint"].startswith(ISSUER)
    assert "profile:dietary" in meta["scopes_supported"]


def test_introspection_tells_a_brand_about_its_own_tokens_only(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    own = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth()).json()
    assert own["active"] is True and own["client_id"] == brand.client_id and "grant_id" in own
    other = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=rival.auth()).json()
    assert other == {"active": False}


def test_revoking_a_refresh_token_kills_the_access_token_too(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    assert (
        client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=brand.auth()).status_code
        == 200
    )
    assert _read(client, tokens["access_token"]).status_code == 401
    introspected = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth()
    ).json()
    assert introspected == {"active": False}


def test_public_brand_uses_pkce_without_a_secret(
    client: TestClient, runtime: Runtime, db: Session, customer: str
) -> None:
    registered = register_brand(
        db, name="Grocer App", redirect_uris=[REDIRECT], public=True, clock=runtime.clock
    )
    db.commit()
    public = BrandCredentials(registered.brand.client_id, None)
    assert registered.client_secret is None
    cc = client.post("/oauth/token", data={"grant_type": "client_credentials", "client_id": public.client_id})
    assert cc.status_code in (400, 401)
    offer = runtime.offers.create(db, registered.brand, OfferDraft.model_validate(OFFER))
    db.commit()
    tokens = authorized(client, public, {"id": str(offer.id)})
    assert _read(client, tokens["access_token"]).status_code == 200


# --- attacks (RFC 9700) ----------------------------------------------------------------------------


def test_replayed_code_fails_and_revokes_what_it_issued(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = authorized(client, brand, offer)
    replay = exchange(client, brand, tokens["code"], tokens["verifier"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert _read(client, tokens["access_token"]).status_code == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=brand.auth(),
    )
    assert refresh.status_code == 400


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge is required"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge_method": None}, "S256"),
    ],
)
def test_missing_or_plain_pkce_is_refused_with_a_redirect(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    changes: dict[str, Any],
    needle: str,
) -> None:
    _, challenge = pkce()
    params = {
        k: v
        for k, v in {**authorize_params(brand, offer["id"], challenge), **changes}.items()
        if v is not None
    }
    answer = redirect_params(client.get("/oauth/authorize", params=params, follow_redirects=False))
    assert (
        answer["error"] == "invalid_request"
        and needle in answer["error_description"]
        and answer["iss"] == ISSUER
    )


def test_wrong_pkce_verifier_fails(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    answer = redirect_params(consent(client, authorize_params(brand, offer["id"], challenge)))
    other_verifier, _ = pkce()
    response = exchange(client, brand, answer["code"], other_verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    missing = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": answer["code"], "redirect_uri": REDIRECT},
        auth=brand.auth(),
    )
    assert missing.status_code == 400


def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    for redirect in ("https://evil.example/steal", REDIRECT + "/extra", REDIRECT.upper()):
        response = client.get(
            "/oauth/authorize",
            params=authorize_params(brand, offer["id"], challenge, redirect_uri=redirect),
            follow_redirects=False,
        )
        assert response.status_code == 400 and "location" not in response.headers
        assert "text/html" in response.headers["content-type"]
    unknown = client.get(
        "/oauth/authorize",
        params=authorize_params(BrandCredentials("brd_nobody", None), offer["id"], challenge),
        follow_redirects=False,
    )
    assert unknown.status_code == 400 and "location" not in unknown.headers


def test_redirect_uri_must_match_at_the_token_endpoint(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    verifier, challenge = pkce()
    answer = redirect_params(consent(client, authorize_params(brand, offer["id"], challenge)))
    response = exchange(client, brand, answer["code"], verifier, redirect_uri="https://grocer.example/other")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_code_stolen_by_another_client_is_useless(
    client: TestClient, brand: BrandCredentials, rival: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    verifier, challenge = pkce()
    answer = redirect_params(consent(client, authorize_params(brand, offer["id"], challenge)))
    stolen = exchange(client, rival, answer["code"], verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert exchange(client, brand, answer["code"], verifier).status_code == 200


def test_scope_escalation_is_refused(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    outside = authorize_params(
        brand, offer["id"], challenge, scope="profile:email profile:dietary profile:phone"
    )
    answer = redirect_params(client.get("/oauth/authorize", params=outside, follow_redirects=False))
    assert answer["error"] == "invalid_scope" and "phone" in answer["error_description"]
    cc = client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": "profile:email"}, auth=brand.auth()
    )
    assert cc.status_code == 400 and cc.json()["error"] == "invalid_scope"
    tokens = authorized(client, brand, offer, untick=("given_name",))
    wider = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "profile:email profile:phone",
        },
        auth=brand.auth(),
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_brand_token_cannot_read_profiles_and_profile_token_cannot_manage_offers(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    assert _read(client, brand_token(client, brand)).status_code == 403
    tokens = authorized(client, brand, offer)
    assert client.get("/v1/offers", headers=bearer(tokens["access_token"])).status_code == 403


def _forge(claims_token: str, header: dict[str, Any], signature: bytes = b"") -> str:
    payload = claims_token.split(".")[1]
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_tampered_expired_and_confused_jwts_are_401(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    tokens = authorized(client, brand, offer)
    good = tokens["access_token"]
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] += " profile:phone"
    tampered = f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{sig}"
    none_alg = _forge(good, {"alg": "none", "typ": "at+jwt"})
    public_jwk = client.get("/.well-known/jwks.json").json()["keys"][0]
    hmac_key = OctKey.import_key(json.dumps(public_jwk).encode())
    hs256 = jws.serialize_compact(
        {"alg": "HS256", "typ": "at+jwt", "kid": public_jwk["kid"]}, json.dumps(claims).encode(), hmac_key
    )
    for token in (tampered, none_alg, hs256, "not.a.jwt", good + "x"):
        assert _read(client, token).status_code == 401, token[:40]
    clock.advance(minutes=11)
    expired = _read(client, good)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


def test_consent_page_cannot_be_framed_and_refuses_forms_without_csrf(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge)
    page = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "https://grocer.example" in csp
    form = parse_form(page.text)
    without_token = [(k, v) for k, v in form.fields if k != "csrf_token"] + [("decision", "approve")]
    assert (
        client.post("/oauth/authorize", data=dict(without_token), follow_redirects=False).status_code == 403
    )
    wrong = [(k, "x" * 43 if k == "csrf_token" else v) for k, v in form.fields] + [("decision", "approve")]
    assert client.post("/oauth/authorize", data=dict(wrong), follow_redirects=False).status_code == 403
    cross_site = client.post(
        "/oauth/authorize",
        data=dict([*form.fields, ("decision", "approve")]),
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403
    assert client.get("/v1/me/grants", headers=bearer(customer)).json()["items"] == []


def test_withdrawn_offer_cannot_be_authorized(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    token = brand_token(client, brand)
    assert client.delete(f"/v1/offers/{offer['id']}", headers=bearer(token)).status_code == 200
    _, challenge = pkce()
    answer = redirect_params(
        client.get(
            "/oauth/authorize", params=authorize_params(brand, offer["id"], challenge), follow_redirects=False
        )
    )
    assert answer["error"] == "invalid_request" and "withdrawn" in answer["error_description"]


def test_the_offer_can_be_named_in_authorization_details(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    verifier, challenge = pkce()
    details = json.dumps([{"type": "consentry_offer", "offer": offer["id"]}])
    params = {k: v for k, v in authorize_params(brand, offer["id"], challenge).items() if k != "offer"}
    answer = redirect_params(consent(client, {**params, "authorization_details": details}))
    assert exchange(client, brand, answer["code"], verifier).status_code == 200
    for bad in ("not json", json.dumps([{"type": "other", "offer": offer["id"]}])):
        refused = redirect_params(
            client.get(
                "/oauth/authorize", params={**params, "authorization_details": bad}, follow_redirects=False
            )
        )
        assert (
            refused["error"] == "invalid_request" and "authorization_details" in refused["error_description"]
        )


def test_signing_key_rotation_keeps_old_tokens_valid_until_they_expire(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    clock: FakeClock,
) -> None:
    from broker.oauth.context import ACCESS_TOKEN_LIFETIME

    old = authorized(client, brand, offer)
    old_kid = json.loads(base64.urlsafe_b64decode(old["access_token"].split(".")[0] + "=="))["kid"]
    new_kids, retired = runtime.oauth.signing.rotate(max_token_lifetime=ACCESS_TOKEN_LIFETIME)
    new_kid = new_kids["Ed25519"]
    assert retired == [] and new_kid != old_kid
    published = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert published == {old_kid, new_kid, new_kids["RS256"]}
    assert _read(client, old["access_token"]).status_code == 200
    fresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": old["refresh_token"]},
        auth=brand.auth(),
    ).json()
    assert json.loads(base64.urlsafe_b64decode(fresh["access_token"].split(".")[0] + "=="))["kid"] == new_kid
    clock.advance(minutes=11)
    _, retired = runtime.oauth.signing.rotate(max_token_lifetime=ACCESS_TOKEN_LIFETIME)
    assert retired == [old_kid]
    assert old_kid not in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}


def test_customer_grant_listing_pages_and_filters(
    client: TestClient,
    runtime: Runtime,
    db: Session,
    brand: BrandCredentials,
    rival: BrandCredentials,
    customer: str,
    clock: FakeClock,
) -> None:
    from sqlmodel import select

    from broker.accounts.models import Brand, Customer

    customer_id = db.exec(select(Customer.id)).one()
    created = []
    for credentials in (brand, rival):
        row = db.exec(select(Brand).where(Brand.client_id == credentials.client_id)).one()
        offer = runtime.offers.create(db, row, OfferDraft.model_validate(OFFER))
        for _ in range(4):
            created.append(
                runtime.grants.create(
                    db, customer_id=customer_id, offer=offer, fields=["email", "dietary"]
                ).id
            )
            # Two grants share each instant: pages must still neither repeat nor skip one.
            if len(created) % 2 == 0:
                clock.advance(seconds=1)
    db.commit()
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/me/grants", params=params, headers=bearer(customer)).json()
        seen += [g["id"] for g in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(map(str, created)) and len(seen) == 8
    rivals = client.get("/v1/me/grants", params={"brand": rival.client_id}, headers=bearer(customer)).json()[
        "items"
    ]
    assert {g["brand_client_id"] for g in rivals} == {rival.client_id} and len(rivals) == 4
    assert client.delete(f"/v1/me/grants/{seen[0]}", headers=bearer(customer)).status_code == 204
    revoked = client.get("/v1/me/grants", params={"status": "revoked"}, headers=bearer(customer)).json()[
        "items"
    ]
    assert [g["id"] for g in revoked] == [seen[0]]
    assert (
        len(
            client.get("/v1/me/grants", params={"status": "active"}, headers=bearer(customer)).json()["items"]
        )
        == 7
    )
    bad = client.get("/v1/me/grants", params={"cursor": "garbage"}, headers=bearer(customer))
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/cursor"


def test_non_ascii_redirect_uri_and_csrf_token_are_refused_not_500(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge, redirect_uri=REDIRECT + "/é")
    response = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert response.status_code == 400 and "location" not in response.headers
    page = client.get(
        "/oauth/authorize", params=authorize_params(brand, offer["id"], challenge), follow_redirects=False
    )
    form = [(k, "é" * 43 if k == "csrf_token" else v) for k, v in parse_form(page.text).fields] + [
        ("decision", "approve")
    ]
    assert client.post("/oauth/authorize", data=dict(form), follow_redirects=False).status_code == 403


def test_non_ascii_oauth_parameters_are_refused_in_oauth_terms(
    client: TestClient, brand: BrandCredentials
) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "offers:read ünïcode"},
        auth=brand.auth(),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "scope" in response.json()["error_description"]


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "https://evil.example"},
        {"aud": "https://other-broker.example"},
        {"exp": None},
        {"exp": "tomorrow"},
        {"iat": None},
        {"iat": 4_000_000_000},
    ],
    ids=["wrong-iss", "wrong-aud", "no-exp", "text-exp", "no-iat", "future-iat"],
)
def test_introspection_applies_the_resource_servers_claim_checks_and_never_answers_500(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    change: dict[str, Any],
) -> None:
    good = authorized(client, brand, offer)["access_token"]
    claims = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    claims.update(change)
    claims = {k: v for k, v in claims.items() if v is not None}
    signed = runtime.oauth.signing.sign(claims)  # with the broker's own key: only the claims are wrong
    assert _read(client, signed).status_code == 401
    answer = client.post("/oauth/introspect", data={"token": signed}, auth=brand.auth())
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"active": False}


# --- the brand the token endpoint reads ------------------------------------------------------------


def test_the_token_endpoint_reads_the_brand_s_current_row(db: Session) -> None:
    # `find_client` reads the columns on the driver's cursor (no ORM object): every column as the ORM
    # has it, for confidential and public brands, and nothing for an unknown or oversized client id.
    clock = lambda: datetime.now(UTC)  # noqa: E731
    for public in (False, True):
        brand = register_brand(
            db, name=" Grocer ", redirect_uris=[REDIRECT], public=public, clock=clock
        ).brand
        record = find_client(db.connection(), brand.client_id)
        assert record == ClientRecord(
            brand.id,
            brand.client_id,
            "Grocer",
            public,
            brand.secret_hash,
            tuple(brand.redirect_uris),
            tuple(brand.scopes),
        )
    assert find_client(db.connection(), "brd_nobody") is None
    assert find_client(db.connection(), "") is None
    assert find_client(db.connection(), "x" * 65) is None


def test_a_replaced_secret_stops_working_at_once(client: TestClient, runtime: Runtime) -> None:
    with runtime.sessions() as db:
        registered = register_brand(
            db, name="Rotating", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
        )
        db.commit()
        old = registered.client_secret
        assert old is not None
        form = {"grant_type": "client_credentials", "scope": "offers:read"}
        assert (
            client.post("/oauth/token", data=form, auth=(registered.brand.client_id, old)).status_code == 200
        )
        new = new_client_secret(db, registered.brand)
        db.commit()
    refused = client.post("/oauth/token", data=form, auth=(registered.brand.client_id, old))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert client.post("/oauth/token", data=form, auth=(registered.brand.client_id, new)).status_code == 200


def test_a_client_credentials_token_opens_no_session(
    client: TestClient, runtime: Runtime, brand: BrandCredentials
) -> None:
    """It reads one row on a read connection; a session (the ORM's, or a write transaction) would be
    pure cost. A grant that writes (a refresh) still gets its unit of work."""

    def no_session() -> Session:
        raise AssertionError("a client-credentials token opened a session")

    app_state = client.app.state  # type: ignore[attr-defined]
    app_state.runtime = replace(runtime, sessions=no_session, read_sessions=no_session)
    try:
        form = {"grant_type": "client_credentials", "scope": "offers:read"}
        issued = client.post("/oauth/token", data=form, auth=brand.auth())
        assert issued.status_code == 200, issued.text
        with pytest.raises(AssertionError, match="opened a session"):
            client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "rt_x"},
                        auth=brand.auth())  # fmt: skip
    finally:
        app_state.runtime = runtime


def test_a_read_only_oauth_context_refuses_to_write() -> None:
    ctx = OAuthContext(services=None, unit=None, request_id="r")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="only reads"):
        ctx.session  # noqa: B018


def test_client_credentials_accept_the_secret_in_the_form_too(
    client: TestClient, brand: BrandCredentials
) -> None:
    # RFC 6749 §2.3.1: client_secret_post, as the metadata advertises, besides HTTP Basic.
    assert brand.client_secret is not None
    form = {"grant_type": "client_credentials", "scope": "offers:read",
            "client_id": brand.client_id, "client_secret": brand.client_secret}  # fmt: skip
    assert client.post("/oauth/token", data=form).status_code == 200
    wrong = client.post("/oauth/token", data={**form, "client_secret": "cs_wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
