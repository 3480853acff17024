"""Reads bound to a purpose: an offer declares several purposes, each with its explanation and
fields; the customer agrees to each apart; every read states its purpose and gets only that
purpose's fields; a purpose not granted is refused and logged; single-purpose offers work as before."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.core import bearer, log_in
from support.oauth import (
    OFFER,
    BrandCredentials,
    authorize_params,
    brand_token,
    consent,
    exchange,
    grant_id_of,
    pkce,
    portal_login,
    publish_offer,
    redirect_params,
)
from support.problems import assert_problem

from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.consent.models import Grant
from clients.auditor import check_reads

SEVERAL = {
    **OFFER,
    "required_fields": ["email"],
    "optional_fields": ["dietary", "household_size", "age_band"],
    "purposes": [
        {"purpose": "personalised_offers", "explanation": "We pick recipes for what you eat.",
         "fields": ["email", "dietary", "household_size"]},
        {"purpose": "research", "explanation": "We study which boxes suit which ages.",
         "fields": ["age_band", "household_size"]},
    ],
}  # fmt: skip
del SEVERAL["purpose"], SEVERAL["purpose_explanation"]


def publish_several(client: TestClient, brand: BrandCredentials) -> dict[str, Any]:
    published = client.post("/v1/offers", json=SEVERAL, headers=bearer(brand_token(client, brand)))
    assert published.status_code == 201, published.text
    offer: dict[str, Any] = published.json()
    return offer


class Agreed:
    """Ada's grant of the several-purpose offer, agreeing to `purposes`; the brand's tokens."""

    def __init__(
        self,
        client: TestClient,
        brand: BrandCredentials,
        purposes: tuple[str, ...] | None = None,
        **params: str,
    ) -> None:
        self.client, self.brand = client, brand
        self.offer = publish_several(client, brand)
        verifier, challenge = pkce()
        params = authorize_params(brand, self.offer["id"], challenge, **params)
        answer = redirect_params(consent(client, params, purposes=purposes))
        self.tokens = exchange(client, brand, answer["code"], verifier).json()
        self.grant_id = grant_id_of(client, brand, self.tokens)

    def read(self, purpose: str | None = None, token: str | None = None) -> Any:
        query = "" if purpose is None else f"?purpose={purpose}"
        return self.client.get(f"/v1/profile{query}", headers=bearer(token or self.tokens["access_token"]))


@pytest.fixture
def agreed(client: TestClient, brand: BrandCredentials, customer: str) -> Agreed:
    return Agreed(client, brand)


def test_an_offer_declares_several_purposes_each_with_its_fields(
    client: TestClient, brand: BrandCredentials
) -> None:
    published = publish_several(client, brand)
    assert published["purpose"] == "personalised_offers" and published["purpose_explanation"].startswith(
        "We pick"
    )
    assert [p["purpose"] for p in published["purposes"]] == ["personalised_offers", "research"]
    single = publish_offer(client, brand_token(client, brand), title="One purpose")
    fields = [*single["required_fields"], *single["optional_fields"]]
    whole = {"purpose": single["purpose"], "explanation": single["purpose_explanation"], "fields": fields}
    assert single["purposes"] == [whole]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (
            {"purposes": [{"purpose": "astrology", "explanation": "x", "fields": ["email"]}]},
            "/purposes/0/purpose",
        ),
        ({"purposes": [{"purpose": "research", "explanation": "x", "fields": []}]}, "/purposes/0/fields"),
        (
            {"purposes": [{"purpose": "research", "explanation": "x", "fields": ["email", "phone"]}]},
            "/purposes",
        ),
        ({"purposes": [{"purpose": "research", "explanation": "x", "fields": ["email"]}]}, "/purposes"),
        ({"purposes": [*SEVERAL["purposes"], SEVERAL["purposes"][1]]}, "/purposes"),
        ({"purpose": "research"}, "/purpose"),
        ({"purposes": []}, "/purposes"),
    ],
)
def test_bad_purposes_are_refused_pointing_at_what_to_fix(
    client: TestClient, brand: BrandCredentials, change: dict[str, Any], pointer: str
) -> None:
    body = {**SEVERAL, **change}
    answer = client.post("/v1/offers", json=body, headers=bearer(brand_token(client, brand)))
    assert_problem(answer, 422, "validation", pointer)


def test_one_purpose_without_purposes_still_needs_its_explanation(
    client: TestClient, brand: BrandCredentials
) -> None:
    body = {k: v for k, v in OFFER.items() if k != "purpose_explanation"}
    answer = client.post("/v1/offers", json=body, headers=bearer(brand_token(client, brand)))
    assert_problem(answer, 422, "validation", "/purpose_explanation")


def test_each_read_states_its_purpose_and_gets_only_its_fields(agreed: Agreed, db: Session) -> None:
    grant = db.get(Grant, UUID(agreed.grant_id))
    assert grant is not None
    assert grant.purpose_fields == {"personalised_offers": ["email", "dietary", "household_size"],
                                    "research": ["age_band", "household_size"]}  # fmt: skip
    offers = agreed.read("personalised_offers")
    assert offers.status_code == 200, offers.text
    assert offers.json()["purpose"] == "personalised_offers"
    assert set(offers.json()["fields"]) == {"email", "email_verified", "dietary", "household_size"}
    research = agreed.read("research")
    assert research.status_code == 200 and set(research.json()["fields"]) == {"household_size", "age_band"}
    assert_problem(agreed.read(), 400, "purpose-required")
    refused = agreed.read("marketing")
    assert_problem(refused, 403, "purpose-not-granted")
    assert_problem(agreed.read("astrology"), 422, "validation", "/purpose")
    entries = [decode(row.entry) for row in db.exec(select(AuditEntry).order_by(col(AuditEntry.index)))]
    reads = [(e["kind"], e.get("purpose")) for e in entries if e["kind"].startswith("profile.")]
    assert reads == [("profile.read", "personalised_offers"), ("profile.read", "research"),
                     ("profile.read_refused", "marketing")]  # fmt: skip
    assert check_reads(enumerate(entries)).violations == [], "every read within what was granted for it"


def test_a_token_asked_for_one_purpose_reads_for_it_alone(agreed: Agreed) -> None:
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": agreed.tokens["refresh_token"],
        "purpose": "research",
    }
    narrowed = agreed.client.post("/oauth/token", data=refresh, auth=agreed.brand.auth())
    assert narrowed.status_code == 200, narrowed.text
    token = narrowed.json()["access_token"]
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["purpose"] == "research"
    assert set(agreed.read(token=token).json()["fields"]) == {"household_size", "age_band"}
    assert_problem(agreed.read("personalised_offers", token=token), 403, "purpose-not-granted")
    refused = {
        "grant_type": "refresh_token",
        "refresh_token": narrowed.json()["refresh_token"],
        "purpose": "marketing",
    }
    bad = agreed.client.post("/oauth/token", data=refused, auth=agreed.brand.auth())
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


def test_the_customer_agrees_to_each_purpose_apart(
    client: TestClient, brand: BrandCredentials, customer: str, db: Session
) -> None:
    only = Agreed(client, brand, purposes=("personalised_offers",))
    grant = db.get(Grant, UUID(only.grant_id))
    assert grant is not None and grant.purpose_fields == {
        "personalised_offers": ["email", "dietary", "household_size"]
    }
    assert "age_band" not in grant.fields, "a field of a purpose refused is not shared"
    assert only.read().status_code == 200, "one purpose granted: the read need not say it"
    assert_problem(only.read("research"), 403, "purpose-not-granted")
    offer = publish_several(client, brand)
    for purposes, message in (
        ((), "Tick each purpose you agree to"),
        (("research",), "A field this offer requires"),
    ):
        assert portal_login(client, "ada@example.org").status_code == 303
        _, challenge = pkce()
        retry = consent(client, authorize_params(brand, offer["id"], challenge), purposes=purposes)
        assert retry.status_code == 400 and message in retry.text


def test_receipts_and_the_timeline_name_each_purpose(agreed: Agreed, client: TestClient) -> None:
    agreed.read("research")
    me = bearer(log_in(client, "ada@example.org"))
    (receipt,) = client.get(f"/v1/me/receipts?grant_id={agreed.grant_id}", headers=me).json()["items"]
    said = [(p["purpose"], p["fields"]) for p in receipt["receipt"]["purposes"]]
    assert said == [
        ("personalised_offers", ["email", "dietary", "household_size"]),
        ("research", ["age_band", "household_size"]),
    ]
    assert portal_login(client, "ada@example.org").status_code == 303
    page = client.get(f"/portal/grants/{agreed.grant_id}").text
    assert "read your data, for research and development" in page
    assert "Research and development (Age band, Household size)" in page


def test_narrowing_drops_a_purpose_left_without_fields(agreed: Agreed, client: TestClient) -> None:
    me = bearer(log_in(client, "ada@example.org"))
    narrowed = client.patch(
        f"/v1/me/grants/{agreed.grant_id}", json={"fields": ["email", "dietary"]}, headers=me
    )
    assert narrowed.status_code == 200, narrowed.text
    assert agreed.read().json()["purpose"] == "personalised_offers", "one purpose left: reads need not say it"
    assert_problem(agreed.read("research"), 403, "purpose-not-granted")


def test_userinfo_reads_for_a_purpose_too(client: TestClient, brand: BrandCredentials, customer: str) -> None:
    scope = "openid profile:email profile:dietary profile:household_size profile:age_band"
    agreed = Agreed(client, brand, scope=scope, nonce="n-1")
    headers = bearer(agreed.tokens["access_token"])
    research = client.get("/oauth/userinfo?purpose=research", headers=headers)
    assert research.status_code == 200, research.text
    assert (
        "email" not in research.json() and research.json()["https://consentry.dev/claims/fields"]["age_band"]
    )
    unsaid = client.get("/oauth/userinfo", headers=headers)
    assert unsaid.status_code == 400 and unsaid.json()["error"] == "invalid_request"
    refused = client.post("/oauth/userinfo", data={"purpose": "marketing"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["type"].endswith("/purpose-not-granted")
