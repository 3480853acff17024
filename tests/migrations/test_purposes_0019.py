"""Migration 0019 (reads bound to a purpose): a single-purpose offer and its grant, made before it,
keep working unchanged: the same token reads the same fields for the same purpose, the grant's
receipts and views are as they were, and refreshing still works."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import bearer, make_settings, new_database_url, sign_up
from support.oauth import REDIRECT, BrandCredentials, authorized, brand_token, portal_login, publish_offer

from broker.app import create_app
from broker.db import alembic_config
from broker.oauth.clients import register_brand
from broker.runtime import build_runtime

PROFILE = {"email": "ada@example.org", "dietary": ["vegan"], "household_size": 3}


def test_a_grant_made_before_purposes_reads_as_before(tmp_path: Path) -> None:
    url = new_database_url(tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "0018")
    command.upgrade(config, "head")
    settings = make_settings(tmp_path / "var", url)
    runtime = build_runtime(settings)
    with Session(runtime.engine) as db:
        made = register_brand(
            db, name="Green Grocer", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
        )
        db.commit()
        brand = BrandCredentials(made.brand.client_id, made.client_secret)
    with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as client:
        me = sign_up(client, "ada@example.org")
        assert client.put("/v1/me/profile", json=PROFILE, headers=bearer(me)).status_code == 200
        assert portal_login(client, "ada@example.org").status_code == 303
        tokens = authorized(client, brand, publish_offer(client, brand_token(client, brand)))
        before = client.get("/v1/profile", headers=bearer(tokens["access_token"])).json()
    runtime.dispose()

    # The data as it stood at 0018 (the columns purposes and purpose_fields gone), then upgraded.
    command.downgrade(config, "0018")
    command.upgrade(config, "head")
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as client:
            after = client.get("/v1/profile", headers=bearer(tokens["access_token"]))
            assert after.status_code == 200, after.text
            assert after.json() == before and after.json()["purpose"] == "personalised_offers"
            said = client.get(
                "/v1/profile?purpose=personalised_offers", headers=bearer(tokens["access_token"])
            )
            assert said.json() == before
            refused = client.get("/v1/profile?purpose=research", headers=bearer(tokens["access_token"]))
            assert refused.status_code == 403
            refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            assert client.post("/oauth/token", data=refresh, auth=brand.auth()).status_code == 200
            offers = client.get("/v1/offers", headers=bearer(brand_token(client, brand))).json()["items"]
            assert [p["purpose"] for p in offers[0]["purposes"]] == ["personalised_offers"]
    finally:
        runtime.dispose()
