"""OpenID Connect on the code flow: discovery, ID tokens, UserInfo, and the request parameters a
relying party relies on (`nonce`, `prompt`, `max_age`, `claims`, `login_hint`)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet
from sqlmodel import Session, col, select
from support.core import STRONG_PASSWORD, FakeClock, log_in
from support.lifecycle import entries_about
from support.oauth import (
    ISSUER,
    BrandCredentials,
    authorize_params,
    brand_token,
    consent,
    exchange,
    parse_form,
    pkce,
    portal_login,
    publish_offer,
    redirect_params,
)

from broker.accounts.models import Brand
from broker.audit.models import AuditEntry
from broker.errors import ValidationFailed
from broker.oauth.clients import register_brand
from broker.oauth.oidc import (
    ACR_MULTI_FACTOR,
    ACR_SINGLE_FACTOR,
    FIELDS_CLAIM,
    PREFERENCES_CLAIM,
    Authentication,
)
from broker.runtime import Runtime
from broker.web.deps import SESSION_COOKIE

PERSONAL = {"email", "given_name", "family_name", "birthdate", "phone_number", "address", FIELDS_CLAIM}


def _jwks(client: TestClient) -> KeySet:
    return KeySet.import_key_set(client.get("/.well-known/jwks.json").json())


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return header


def _signed_in(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], **extra: str
) -> dict[str, Any]:
    """The whole code flow with `openid` for the logged-in customer: the token response."""
    verifier, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge, scope="openid", nonce="n-0S6_WzA2Mj", **extra)
    answer = redirect_params(consent(client, params))
    assert answer["iss"] == ISSUER and answer["state"] == params["state"]
    tokens = exchange(client, brand, answer["code"], verifier)
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


def _userinfo(client: TestClient, access_token: str, method: str = "GET") -> Any:
    return client.request(method, "/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def _reads(db: Session) -> int:
    query = select(AuditEntry).where(col(AuditEntry.kind) == "profile.read")
    return len(db.exec(query).all())


def test_discovery_is_one_document_at_both_well_known_addresses(client: TestClient) -> None:
    oidc = client.get("/.well-known/openid-configuration").json()
    assert oidc == client.get("/.well-known/oauth-authorization-server").json()
    assert oidc["issuer"] == ISSUER and oidc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert oidc["userinfo_endpoint"] == f"{ISSUER}/oauth/userinfo"
    assert oidc["subject_types_supported"] == ["pairwise"]
    assert oidc["id_token_signing_alg_values_supported"][0] == "RS256"
    assert "Ed25519" in oidc["id_token_signing_alg_values_supported"]
    assert {"openid", "profile", "email", "phone", "address"} <= set(oidc["scopes_supported"])
    assert oidc["response_types_supported"] == ["code"]
    assert oidc["code_challenge_methods_supported"] == ["S256"]
    assert set(oidc["prompt_values_supported"]) == {"none", "login", "consent"}
    keys = {k["kty"]: k for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert keys["RSA"]["alg"] == "RS256" and keys["OKP"]["alg"] == "Ed25519"


def test_the_id_token_says_who_and_how_and_nothing_about_them(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = _signed_in(client, brand, offer)
    assert tokens["scope"].split()[0] == "openid"
    id_token = tokens["id_token"]
    assert _header(id_token)["alg"] == "RS256" and _header(id_token)["typ"] == "JWT"
    claims = jwt.decode(id_token, _jwks(client), algorithms=["RS256"]).claims
    access = _claims(tokens["access_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == brand.client_id == claims["azp"]
    assert claims["sub"] == access["sub"], "the same pairwise subject as the access token"
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["acr"] == ACR_SINGLE_FACTOR and claims["amr"] == ["pwd"]
    assert claims["iat"] <= claims["auth_time"] + 5 and claims["exp"] - claims["iat"] == 600
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert not PERSONAL & set(claims), "personal data comes from UserInfo, where each read is logged"
    tampered = id_token[:-4] + ("AAAA" if not id_token.endswith("AAAA") else "BBBB")
    with pytest.raises(BadSignatureError):
        jwt.decode(tampered, _jwks(client), algorithms=["RS256"])


def test_an_id_token_is_never_an_access_token(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = _signed_in(client, brand, offer)
    refused = _userinfo(client, tokens["id_token"])
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    as_access = client.get("/v1/profile", headers={"Authorization": f"Bearer {tokens['id_token']}"})
    assert as_access.status_code == 401


def test_a_brand_that_registered_ed25519_gets_ed25519_id_tokens(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    row = db.exec(select(Brand).where(col(Brand.client_id) == brand.client_id)).one()
    row.id_token_signed_response_alg = "Ed25519"
    db.add(row)
    db.commit()
    tokens = _signed_in(client, brand, offer)
    assert _header(tokens["id_token"])["alg"] == "Ed25519"
    claims = jwt.decode(tokens["id_token"], _jwks(client), algorithms=["Ed25519"]).claims
    digest = hashlib.sha512(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:32]).rstrip(b"=").decode()


def test_userinfo_is_an_audited_read_of_the_grant_as_standard_claims(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, db: Session
) -> None:
    tokens = _signed_in(client, brand, offer)
    before = _reads(db)
    answer = _userinfo(client, tokens["access_token"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    claims = answer.json()
    assert claims["sub"] == _claims(tokens["id_token"])["sub"]
    assert claims["email"] == "ada@example.org" and claims["email_verified"] is True
    assert claims["given_name"] == "Ada"
    ours = {"dietary": ["vegan", "nut_allergy"], "household_size": 3, "age_band": "35-44"}
    assert claims[FIELDS_CLAIM] == ours
    assert "birthdate" not in claims, "not part of the offer: never given"
    assert claims[PREFERENCES_CLAIM]["version"] == 0, "the preferences, whatever the offer asked"
    assert _reads(db) == before + 1, "one profile read per UserInfo call"
    grant_id = _claims(tokens["access_token"])["grant_id"]
    assert len(entries_about(db, grant_id, "preferences.read")) == 1, "and an access of its own"
    assert _userinfo(client, tokens["access_token"], "POST").json() == claims
    assert _reads(db) == before + 2


def test_the_subject_is_the_same_everywhere_for_one_brand_and_different_for_another(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
) -> None:
    mine = _signed_in(client, brand, offer)
    theirs = _signed_in(client, rival, publish_offer(client, brand_token(client, rival)))
    subjects = {_claims(mine["id_token"])["sub"], _claims(mine["access_token"])["sub"],
                _userinfo(client, mine["access_token"]).json()["sub"]}  # fmt: skip
    assert len(subjects) == 1
    assert _claims(theirs["id_token"])["sub"] not in subjects


def test_userinfo_is_refused_after_revocation_while_suspended_and_without_openid(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    tokens = _signed_in(client, brand, offer)
    clock.advance(days=7, hours=1)  # the voucher was due within 7 days: the grant is suspended
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=brand.auth(),
    )
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    assert "openid" in _claims(access)["scope"].split(), "a refreshed token keeps openid"
    suspended = _userinfo(client, access)
    assert suspended.status_code == 403 and suspended.json()["error"] == "access_denied"
    assert suspended.json()["type"].endswith("/value-overdue")
    assert 'error="access_denied"' in suspended.headers["www-authenticate"]
    plain = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "offers:read"},
                        auth=brand.auth()).json()["access_token"]  # fmt: skip
    scopeless = _userinfo(client, plain)
    assert scopeless.status_code == 403 and scopeless.json()["error"] == "insufficient_scope"
    assert 'scope="openid"' in scopeless.headers["www-authenticate"]
    grant_id = client.post("/oauth/introspect", data={"token": access}, auth=brand.auth()).json()["grant_id"]
    again = log_in(client, "ada@example.org")  # the week-old session has ended
    revocation = client.delete(f"/v1/me/grants/{grant_id}", headers={"Authorization": f"Bearer {again}"})
    assert revocation.status_code == 204
    revoked = _userinfo(client, access)
    assert revoked.status_code == 401 and revoked.json()["error"] == "invalid_token"
    assert revoked.headers["www-authenticate"].startswith('Bearer realm="consentry", error="invalid_token"')
    for header in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        missing = client.get("/oauth/userinfo", headers=header)
        assert missing.status_code == 401 and missing.json()["error"] == "invalid_token"


def test_userinfo_gives_only_what_the_grant_still_covers(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    tokens = _signed_in(client, brand, offer)
    grant_id = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=brand.auth()
    ).json()["grant_id"]
    narrowed = client.patch(f"/v1/me/grants/{grant_id}", json={"fields": ["email", "dietary"]},
                            headers={"Authorization": f"Bearer {customer}"})  # fmt: skip
    assert narrowed.status_code == 200, narrowed.text
    claims = _userinfo(client, tokens["access_token"]).json()
    assert "given_name" not in claims and claims[FIELDS_CLAIM] == {"dietary": ["vegan", "nut_allergy"]}


def test_standard_scopes_and_claims_ask_only_within_the_offer(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge, scope="openid email phone address")
    page = parse_form(client.get("/oauth/authorize", params=params).text)
    assert page.checkboxes["fields"] == ["email", "dietary"], "the offer's required fields only"
    claims = json.dumps({"userinfo": {"given_name": {"essential": True}, "picture": None}})
    params = authorize_params(brand, offer["id"], challenge, scope="openid email", claims=claims)
    page = parse_form(client.get("/oauth/authorize", params=params).text)
    assert page.checkboxes["fields"] == ["email", "dietary", "given_name"], "claims add an offered field"
    for bad in ("not json", "[]", '{"userinfo": []}', '{"elsewhere": {}}'):
        refused = client.get("/oauth/authorize", params={**params, "claims": bad}, follow_redirects=False)
        assert redirect_params(refused)["error"] == "invalid_request", bad
    widened = client.get("/oauth/authorize", params={**params, "scope": "openid offline_access"},
                         follow_redirects=False)  # fmt: skip
    assert redirect_params(widened)["error"] == "invalid_scope"
    explicit = client.get("/oauth/authorize", params={**params, "scope": "openid profile:phone"},
                          follow_redirects=False)  # fmt: skip
    assert redirect_params(explicit)["error"] == "invalid_scope", "a profile: scope outside the offer"


def test_client_credentials_never_carry_openid(client: TestClient, brand: BrandCredentials) -> None:
    refused = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid"},
                          auth=brand.auth())  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"


def test_a_nonce_used_before_by_the_brand_is_refused_as_a_replay(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _signed_in(client, brand, offer)
    _, challenge = pkce()
    again = authorize_params(brand, offer["id"], challenge, scope="openid", nonce="n-0S6_WzA2Mj")
    refused = client.get("/oauth/authorize", params=again, follow_redirects=False)
    assert redirect_params(refused)["error"] == "invalid_request"


def test_prompt_none_answers_without_a_page(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    verifier, challenge = pkce()
    silent = authorize_params(brand, offer["id"], challenge, scope="openid", prompt="none")
    refused = redirect_params(client.get("/oauth/authorize", params=silent, follow_redirects=False))
    assert refused["error"] == "consent_required" and refused["state"] == silent["state"]
    first = _signed_in(client, brand, offer)
    answer = redirect_params(client.get("/oauth/authorize", params=silent, follow_redirects=False))
    tokens = exchange(client, brand, answer["code"], verifier).json()
    assert _claims(tokens["id_token"])["sub"] == _claims(first["id_token"])["sub"]
    assert _claims(tokens["access_token"])["grant_id"] == _claims(first["access_token"])["grant_id"]
    client.cookies.clear()  # logged out
    logged_out = redirect_params(client.get("/oauth/authorize", params=silent, follow_redirects=False))
    assert logged_out["error"] == "login_required"
    mixed = {**silent, "prompt": "none login"}
    assert portal_login(client, "ada@example.org").status_code == 303
    assert redirect_params(client.get("/oauth/authorize", params=mixed, follow_redirects=False))["error"] in {
        "invalid_request", "login_required"}  # fmt: skip


def test_prompt_login_and_max_age_ask_for_a_fresh_login_once(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str, clock: FakeClock
) -> None:
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge, scope="openid", prompt="login",
                              login_hint="ada@example.org")  # fmt: skip
    to_login = client.get("/oauth/authorize", params=params, follow_redirects=False)
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/portal/login?")
    login_page = client.get(to_login.headers["location"])
    assert 'value="ada@example.org"' in login_page.text, "login_hint fills the email in"
    back = parse_qs(urlsplit(to_login.headers["location"]).query)["next"][0]
    clock.advance(seconds=1)
    assert portal_login(client, "ada@example.org", STRONG_PASSWORD, next_path=back).status_code == 303
    shown = client.get(back, follow_redirects=False)
    assert shown.status_code == 200 and "<form" in shown.text, "the consent screen, not the login again"

    recent = authorize_params(brand, offer["id"], challenge, scope="openid", max_age="3600")
    assert client.get("/oauth/authorize", params=recent, follow_redirects=False).status_code == 200
    clock.advance(hours=2)
    stale = client.get("/oauth/authorize", params=recent, follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/portal/login?")
    for bad in ("-1", "soon", "1e3", "99999999999"):
        refused = client.get("/oauth/authorize", params={**recent, "max_age": bad}, follow_redirects=False)
        assert redirect_params(refused)["error"] == "invalid_request", bad


def test_acr_and_amr_tell_how_the_customer_proved_who_they_are() -> None:
    at = datetime(2026, 12, 3, tzinfo=UTC)
    told = {method: (Authentication(at, method, second).acr, Authentication(at, method, second).amr)
            for method, second in [("password", False), ("passkey", True), ("password+totp", True),
                                   ("password+recovery", True), ("password+passkey", True)]}  # fmt: skip
    assert told["password"] == (ACR_SINGLE_FACTOR, ["pwd"])
    assert told["passkey"] == (ACR_MULTI_FACTOR, ["hwk", "user", "mfa"])
    assert told["password+totp"] == (ACR_MULTI_FACTOR, ["pwd", "otp", "mfa"])
    assert told["password+passkey"] == (ACR_MULTI_FACTOR, ["pwd", "hwk", "mfa"])
    assert Authentication(at, "something-new", True).amr == ["mfa"]


BYE = "https://grocer.example/bye"


def _allow_logout_redirect(db: Session, brand: BrandCredentials) -> None:
    row = db.exec(select(Brand).where(col(Brand.client_id) == brand.client_id)).one()
    row.post_logout_redirect_uris = [BYE]
    db.add(row)
    db.commit()


def _logged_in(client: TestClient, cookie: str) -> bool:
    """Whether the portal session behind `cookie` is still live (server-side, whatever the jar holds)."""
    client.cookies.set(SESSION_COOKIE, cookie)
    return client.get("/portal/", follow_redirects=False).status_code == 200


def test_rp_initiated_logout_with_the_customer_s_id_token_logs_out_and_goes_back(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
    clock: FakeClock,
) -> None:
    _allow_logout_redirect(db, brand)
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["end_session_endpoint"] == f"{ISSUER}/oauth/logout"
    id_token = _signed_in(client, brand, offer)["id_token"]
    cookie = client.cookies[SESSION_COOKIE]
    clock.advance(minutes=30)  # an expired ID token is still a good hint
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": BYE, "state": "s-1"}
    done = client.get("/oauth/logout", params=params, follow_redirects=False)
    assert done.status_code == 302 and done.headers["location"] == f"{BYE}?state=s-1"
    assert not _logged_in(client, cookie), "the session ended server-side, not only in the browser"


def test_logout_without_a_hint_naming_the_customer_asks_first(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    _allow_logout_redirect(db, brand)
    cookie = client.cookies[SESSION_COOKIE]
    asked = client.get(
        "/oauth/logout", params={"client_id": brand.client_id, "post_logout_redirect_uri": BYE}
    )
    assert asked.status_code == 200 and "Log out of Consentry?" in asked.text and "Green Grocer" in asked.text
    assert _logged_in(client, cookie), "a link alone logs nobody out"
    form = parse_form(asked.text)
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    without_token = urlencode([(k, v) for k, v in form.fields if k != "csrf_token"])
    forged = client.post("/oauth/logout", content=without_token, headers=urlencoded, follow_redirects=False)
    assert forged.status_code == 403 and _logged_in(client, cookie)
    confirmed = client.post("/oauth/logout", content=urlencode(form.fields), headers=urlencoded,
                            follow_redirects=False)  # fmt: skip
    assert confirmed.status_code == 302 and confirmed.headers["location"] == BYE
    assert not _logged_in(client, cookie)
    # Logged out already: no question, straight back (or to the logged-out page).
    client.cookies.clear()
    gone = client.get("/oauth/logout", follow_redirects=False)
    assert gone.status_code == 200 and "You are logged out" in gone.text


def test_logout_never_redirects_where_the_brand_did_not_register_nor_trusts_a_foreign_hint(
    client: TestClient,
    brand: BrandCredentials,
    rival: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    db: Session,
) -> None:
    _allow_logout_redirect(db, brand)
    tokens = _signed_in(client, brand, offer)
    cookie = client.cookies[SESSION_COOKIE]
    for params in (
        {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.example/"},
        {"post_logout_redirect_uri": BYE},  # which brand's address? nobody said
        {"client_id": rival.client_id, "post_logout_redirect_uri": BYE},  # not the rival's address
        {"id_token_hint": tokens["id_token"], "client_id": rival.client_id},
        {"id_token_hint": tokens["access_token"], "post_logout_redirect_uri": BYE},  # not an ID token
        {"id_token_hint": tokens["id_token"][:-6] + "AAAAAA", "post_logout_redirect_uri": BYE},
        {"id_token_hint": "not.a.jwt"},
        {"client_id": "brd_nobody"},
    ):
        refused = client.get("/oauth/logout", params=params, follow_redirects=False)
        assert refused.status_code == 400 and "location" not in refused.headers, params
    assert _logged_in(client, cookie)


def test_post_logout_redirect_uris_follow_the_redirect_uri_rules(runtime: Runtime, db: Session) -> None:
    for bad in ("http://grocer.example/bye", "https://grocer.example/bye#top", "ftp://x"):
        with pytest.raises(ValidationFailed, match="redirect URI"):
            register_brand(db, name="Shop", redirect_uris=[BYE], public=False, clock=runtime.clock,
                           post_logout_redirect_uris=[bad])  # fmt: skip


def test_each_flow_s_id_token_carries_its_own_nonce_and_a_replayed_code_gets_none(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    started = []
    for nonce in ("nonce-one", "nonce-two"):
        verifier, challenge = pkce()
        params = authorize_params(brand, offer["id"], challenge, scope="openid", nonce=nonce)
        started.append((nonce, verifier, redirect_params(consent(client, params))["code"]))
    for nonce, verifier, code in reversed(started):  # redeemed out of order: no mixing up
        tokens = exchange(client, brand, code, verifier).json()
        assert _claims(tokens["id_token"])["nonce"] == nonce
    nonce, verifier, code = started[0]
    replayed = exchange(client, brand, code, verifier)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert "id_token" not in replayed.json()


def test_hostile_userinfo_requests_are_refused_in_oauth_terms(client: TestClient) -> None:
    for authorization in (b"Bearer " + b"a" * 9000, b"Bearer a.b.c", "Bearer é".encode(), b"Bearer  \t ",
                          b"bearer x.y.z"):  # fmt: skip
        refused = client.get("/oauth/userinfo", headers={"Authorization": authorization})
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token", authorization
        assert refused.headers["www-authenticate"].startswith('Bearer realm="consentry"')
    posted = client.post("/oauth/userinfo", content=b"access_token=x", headers={"Content-Type": "text/plain"})
    assert posted.status_code == 401


def test_an_overlong_nonce_is_refused_and_plain_oauth_has_no_prompt(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    params = authorize_params(brand, offer["id"], challenge, scope="openid", nonce="n" * 513)
    assert redirect_params(client.get("/oauth/authorize", params=params, follow_redirects=False))[
        "error"
    ] == ("invalid_request")
    plain = authorize_params(brand, offer["id"], challenge, prompt="none", max_age="0")  # not OpenID Connect
    assert client.get("/oauth/authorize", params=plain, follow_redirects=False).status_code == 200
    hinted = client.get("/portal/login", params={"login_hint": "x" * 400 + "@example.org"})
    assert hinted.status_code == 200 and "x" * 400 not in hinted.text


def test_only_the_query_response_mode_is_offered(
    client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str
) -> None:
    _, challenge = pkce()
    for mode in ("fragment", "form_post", "web_message"):
        params = authorize_params(brand, offer["id"], challenge, scope="openid", response_mode=mode)
        refused = redirect_params(client.get("/oauth/authorize", params=params, follow_redirects=False))
        assert refused["error"] == "invalid_request", mode
    explicit = authorize_params(brand, offer["id"], challenge, scope="openid", response_mode="query")
    assert client.get("/oauth/authorize", params=explicit, follow_redirects=False).status_code == 200
