"""The customer API: profile reads and writes, export, and the bad input each must refuse."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from support.core import bearer, log_in, sign_up

from broker.accounts.models import AccountTombstone, Customer, CustomerSession
from broker.runtime import Runtime
from vault import crypto
from vault.errors import DecryptionFailed
from vault.keys import active_version
from vault.models import VaultField, VaultKey

FULL_PROFILE = {
    "email": "ada@example.org",
    "phone": "+447400123456",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birthdate": "1990-12-10",
    "postcode": "sw1a 1aa",
    "city": "London",
    "country": "gb",
    "household_size": 2,
    "life_stage": "couple",
    "dietary": ["vegan", "gluten_free"],
    "interests": ["cooking", "books"],
    "preferred_channels": ["email", "app"],
}


@pytest.fixture
def token(client: TestClient) -> str:
    return sign_up(client)


def test_a_new_profile_holds_only_the_email(client: TestClient, token: str) -> None:
    body = client.get("/v1/me/profile", headers=bearer(token)).json()
    assert body["fields"]["email"] == "ada@example.org"
    assert [k for k, v in body["fields"].items() if v is not None] == ["email"]


def test_put_stores_normalised_values_and_reads_derive_age_band_and_region(
    client: TestClient, token: str
) -> None:
    response = client.put("/v1/me/profile", json=FULL_PROFILE, headers=bearer(token))
    assert response.status_code == 200, response.text
    fields = response.json()["fields"]
    assert fields["postcode"] == "SW1A 1AA" and fields["country"] == "GB"
    assert fields["dietary"] == ["vegan", "gluten_free"]
    assert response.json()["derived"] == {"age_band": "35-44", "region": "GB-SW"}
    assert client.get("/v1/me/profile", headers=bearer(token)).json() == response.json()


def test_put_removes_fields_that_are_left_out(client: TestClient, token: str) -> None:
    client.put("/v1/me/profile", json=FULL_PROFILE, headers=bearer(token))
    response = client.put(
        "/v1/me/profile", json={"email": "ada@example.org", "city": "Leeds"}, headers=bearer(token)
    )
    fields = {k: v for k, v in response.json()["fields"].items() if v is not None}
    assert fields == {"email": "ada@example.org", "city": "Leeds"}
    assert response.json()["derived"] == {"age_band": None, "region": None}


def test_patch_changes_given_fields_and_null_removes(client: TestClient, token: str) -> None:
    client.put("/v1/me/profile", json=FULL_PROFILE, headers=bearer(token))
    response = client.patch("/v1/me/profile", json={"city": "Bath", "phone": None}, headers=bearer(token))
    fields = response.json()["fields"]
    assert fields["city"] == "Bath" and fields["phone"] is None and fields["given_name"] == "Ada"


def test_email_cannot_be_removed(client: TestClient, token: str) -> None:
    for method, body in (("put", {"city": "Bath"}), ("patch", {"email": None})):
        response = client.request(method, "/v1/me/profile", json=body, headers=bearer(token))
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"pointer": "/email", "detail": "email is required: it is how you log in"}
        ]


def test_the_profile_does_not_change_the_email_but_points_at_the_verified_change(
    client: TestClient, token: str
) -> None:
    for method in ("patch", "put"):
        response = client.request(
            method, "/v1/me/profile", json={"email": "lovelace@example.org"}, headers=bearer(token)
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/email-change-needs-verification")
        assert "POST /v1/me/email" in response.json()["detail"]
    assert client.get("/v1/me/profile", headers=bearer(token)).json()["fields"]["email"] == "ada@example.org"
    log_in(client, "ada@example.org")


def test_the_profile_may_restate_the_email_in_another_case(client: TestClient, token: str) -> None:
    response = client.patch("/v1/me/profile", json={"email": "ADA@example.org"}, headers=bearer(token))
    assert response.status_code == 200
    log_in(client, "ada@example.org")


def test_unknown_field_is_422_naming_it(client: TestClient, token: str) -> None:
    response = client.patch("/v1/me/profile", json={"shoe_size": 42}, headers=bearer(token))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/shoe_size"
    assert "shoe_size: unknown field" in response.json()["detail"]


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("household_size", 0, "1"),
        ("household_size", "three", "whole number"),
        ("phone", "07700 900123", "E.164"),
        ("country", "XX", "ISO 3166-1"),
        ("life_stage", "teenager", "student"),
        ("dietary", ["vegan", "carnivore"], "carnivore"),
        ("interests", ["cooking"] * 2, "twice"),
        ("birthdate", "2999-01-01", "future"),
        ("given_name", "", "given_name"),
    ],
)
def test_invalid_values_are_422_saying_what_is_allowed(
    client: TestClient, token: str, field: str, value: object, hint: str
) -> None:
    response = client.patch("/v1/me/profile", json={field: value}, headers=bearer(token))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["pointer"].startswith(f"/{field}")
    assert hint in body["detail"], body["detail"]


def test_a_rejected_write_changes_nothing(client: TestClient, token: str) -> None:
    client.put("/v1/me/profile", json=FULL_PROFILE, headers=bearer(token))
    before = client.get("/v1/me/profile", headers=bearer(token)).json()
    bad = {**FULL_PROFILE, "city": "Bristol", "household_size": 99}
    assert client.put("/v1/me/profile", json=bad, headers=bearer(token)).status_code == 422
    assert client.get("/v1/me/profile", headers=bearer(token)).json() == before


def test_malformed_json_is_400(client: TestClient, token: str) -> None:
    headers = {**bearer(token), "Content-Type": "application/json"}
    response = client.patch("/v1/me/profile", content=b'{"city": "Bath",', headers=headers)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-request")
    assert client.patch("/v1/me/profile", content=b"[1, 2]", headers=headers).status_code == 400


def test_body_over_64_kib_is_413(client: TestClient, token: str) -> None:
    big = json.dumps({"city": "x" * (65 * 1024)})
    response = client.patch(
        "/v1/me/profile", content=big, headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_chunked_body_over_the_limit_is_413(client: TestClient, token: str) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(70):
            yield b"x" * 1024

    response = client.patch(
        "/v1/me/profile", content=chunks(), headers={**bearer(token), "Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_export_holds_everything_decrypted(client: TestClient, token: str) -> None:
    client.put("/v1/me/profile", json=FULL_PROFILE, headers=bearer(token))
    response = client.get("/v1/me/export", headers=bearer(token))
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["profile"]["fields"]["family_name"] == "Lovelace"
    assert document["profile"]["derived"]["region"] == "GB-SW"
    assert set(document["profile"]["field_updated_at"]) == set(FULL_PROFILE)
    assert document["account"]["id"] and len(document["sessions"]) == 1


def test_delete_me_shreds_the_vault_and_ends_every_session(
    client: TestClient, token: str, db: Session, runtime: Runtime
) -> None:
    other = sign_up(client, "grace@example.org")
    client.put("/v1/me/profile", json={**FULL_PROFILE, "email": "grace@example.org"}, headers=bearer(other))
    other_export = client.get("/v1/me/export", headers=bearer(other)).json()
    client.put("/v1/me/profile", json=FULL_PROFILE, headers=bearer(token))
    second = log_in(client, "ada@example.org")
    customer_id = db.exec(
        select(Customer.id).where(Customer.email_index == runtime.accounts.email_token("ada@example.org"))
    ).one()
    ciphertexts = [
        (f.name, f.dek_version, f.ciphertext)
        for f in db.exec(select(VaultField).where(VaultField.customer_id == customer_id))
    ]
    assert len(ciphertexts) == len(FULL_PROFILE)

    assert client.delete("/v1/me", headers=bearer(token)).status_code == 200

    for t in (token, second):
        assert client.get("/v1/me/profile", headers=bearer(t)).status_code == 401
    login = client.post(
        "/v1/sessions", json={"email": "ada@example.org", "password": "plum-otter-satchel-91-lantern"}
    )
    assert login.status_code == 401
    db.expire_all()
    assert db.get(VaultKey, customer_id) is None
    assert db.exec(select(VaultField).where(VaultField.customer_id == customer_id)).all() == []
    assert db.exec(select(CustomerSession).where(CustomerSession.customer_id == customer_id)).all() == []
    assert db.get(AccountTombstone, customer_id) is not None
    # Even holding the KEK and every remaining wrapped key, the old ciphertexts do not open.
    kek_version = active_version(runtime.keys)
    deks = [
        crypto.unwrap_dek(
            runtime.keys.kek(k.kek_version),
            customer_id=k.customer_id,
            kek_version=k.kek_version,
            wrapped=k.wrapped_dek,
        )
        for k in db.exec(select(VaultKey))
    ]
    assert kek_version and deks
    for name, version, ciphertext in ciphertexts:
        for dek in deks:
            with pytest.raises(DecryptionFailed):
                crypto.open_field(
                    dek, customer_id=customer_id, field=name, dek_version=version, ciphertext=ciphertext
                )
    assert client.get("/v1/me/export", headers=bearer(other)).json()["profile"] == other_export["profile"]
