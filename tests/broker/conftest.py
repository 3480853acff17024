"""Fixtures of the broker's tests: two brands, a published offer, a customer with a profile."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import bearer, sign_up
from support.oauth import REDIRECT, BrandCredentials, brand_token, portal_login, publish_offer

from broker.oauth.clients import register_brand
from broker.runtime import Runtime


@pytest.fixture
def brand(runtime: Runtime, db: Session) -> BrandCredentials:
    registered = register_brand(
        db, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
    )
    db.commit()
    return BrandCredentials(registered.brand.client_id, registered.client_secret)


@pytest.fixture
def rival(runtime: Runtime, db: Session) -> BrandCredentials:
    registered = register_brand(
        db, name="Rival Foods", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
    )
    db.commit()
    return BrandCredentials(registered.brand.client_id, registered.client_secret)


@pytest.fixture
def offer(client: TestClient, brand: BrandCredentials) -> dict[str, Any]:
    return publish_offer(client, brand_token(client, brand))


@pytest.fixture
def customer(client: TestClient) -> str:
    token = sign_up(client, "ada@example.org")
    profile = {"email": "ada@example.org", "dietary": ["vegan", "nut_allergy"], "household_size": 3,
               "birthdate": "1990-12-10", "given_name": "Ada"}  # fmt: skip
    assert client.put("/v1/me/profile", json=profile, headers=bearer(token)).status_code == 200
    assert portal_login(client, "ada@example.org").status_code == 303
    return token
