"""The whole consent flow over real HTTP against a uvicorn server, driven by a brand using Authlib's
httpx OAuth client (not our server code) and a customer clicking through the portal; then an auditor
verifies the resulting log with the offline `consentry-audit`, and catches an edit made behind our back."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from sqlmodel import Session, select
from support.core import cli_env, live_server
from support.http_customer import customer_consents
from support.oauth import OFFER, REDIRECT, create_brand_with_cli

from broker.audit.models import AuditEntry
from broker.db import create_db_engine


@pytest.mark.slow
def test_brand_with_authlib_client_gets_consented_data_over_http(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        meta = httpx.get(base + "/.well-known/oauth-authorization-server").json()
        pkce = {"redirect_uri": REDIRECT, "code_challenge_method": "S256"}
        brand = OAuth2Client(client_id, secret, scope="offers:write offers:read grants:read", **pkce)
        shopper = OAuth2Client(
            client_id, secret, scope="profile:email profile:dietary profile:household_size", **pkce
        )
        with brand, shopper:
            _run_flow(base, meta, brand, shopper, data_dir)
        _audit(base, tmp_path, cli_env(data_dir, fresh_database_url), fresh_database_url)


@pytest.mark.slow
def test_a_brand_that_does_not_deliver_is_blocked_until_it_does(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    pkce = {"redirect_uri": REDIRECT, "code_challenge_method": "S256"}
    pay_first = {**OFFER, "value": {**OFFER["value"], "due": {"when": "before_first_read"}}}
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        meta = httpx.get(base + "/.well-known/oauth-authorization-server").json()
        brand = OAuth2Client(client_id, secret, scope="offers:write grants:read grants:write", **pkce)
        shopper = OAuth2Client(client_id, secret, scope="profile:email profile:dietary", **pkce)
        with brand, shopper:
            brand.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
            offer = brand.post(base + "/v1/offers", json=pay_first).json()
            verifier = secrets.token_urlsafe(48)
            url, _ = shopper.create_authorization_url(
                meta["authorization_endpoint"], code_verifier=verifier, offer=offer["id"]
            )
            callback = customer_consents(base, url, data_dir)
            shopper.fetch_token(
                meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
            )

            blocked = shopper.get(base + "/v1/profile")
            assert (
                blocked.status_code == 403 and blocked.headers["content-type"] == "application/problem+json"
            )
            problem = blocked.json()
            assert problem["type"].endswith("/value-overdue") and "not delivered" in problem["detail"]
            grant = problem["grant_id"]
            assert brand.get(f"{base}/v1/grants/{grant}").json()["status"] == "suspended"

            voucher = {"kind": "voucher", "amount": "10.00", "currency": "EUR", "redemption": "GROCER-10-E2E"}
            paid = brand.post(f"{base}/v1/grants/{grant}/value", json=voucher)
            assert paid.status_code == 201, paid.text
            assert brand.get(f"{base}/v1/grants/{grant}").json()["status"] == "active"
            unblocked = shopper.get(base + "/v1/profile")
            assert unblocked.status_code == 200 and unblocked.json()["fields"]["email"] == "ada@example.org"


def _run_flow(
    base: str, meta: dict[str, str], brand: OAuth2Client, shopper: OAuth2Client, data_dir: Path
) -> None:
    brand.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    offer = brand.post(base + "/v1/offers", json=OFFER).json()
    verifier = secrets.token_urlsafe(48)
    url, state = shopper.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, offer=offer["id"]
    )
    callback = customer_consents(base, url, data_dir)
    assert f"state={state}" in callback and "iss=" in callback
    token = shopper.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert token["expires_in"] <= 600 and token["refresh_token"]

    profile = shopper.get(base + "/v1/profile")
    assert profile.status_code == 200, profile.text
    assert profile.json()["fields"] == {
        "email": "ada@example.org",
        "email_verified": True,
        "dietary": ["vegetarian"],
        "household_size": 2,
    }

    refreshed = shopper.refresh_token(meta["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert shopper.get(base + "/v1/profile").status_code == 200

    grants = brand.get(base + "/v1/grants").json()["items"]
    assert len(grants) == 1 and grants[0]["status"] == "active"
    assert shopper.revoke_token(meta["revocation_endpoint"], refreshed["refresh_token"]).status_code == 200
    assert shopper.get(base + "/v1/profile").status_code == 401


def _audit(base: str, tmp_path: Path, env: dict[str, str], database_url: str) -> None:
    bin_dir = Path(sys.executable).parent
    created = subprocess.run(
        [bin_dir / "consentry", "auditors", "create", "--name", "Independent Audit Ltd"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    token = json.loads(created.stdout)["token"]
    key = httpx.get(base + "/v1/audit/key").text.strip()
    state = tmp_path / "audit-state.json"
    offline: list[str | Path] = [
        bin_dir / "consentry-audit",
        "--url",
        base,
        "--token",
        token,
        "--key",
        key,
        "--json",
    ]

    def run(command: list[str | Path]) -> tuple[int, dict[str, Any]]:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {"stderr": done.stderr}

    verify = [offline[0], "verify", *offline[1:], "--state", state]
    code, report = run(verify)
    assert code == 0 and report["verified"] is True, report
    kinds = [
        "offer.published",
        "grant.created",
        "value.created",
        "profile.read",
        "profile.read",
        "token_family.revoked",
    ]
    assert report["tree_size"] == len(kinds), report
    code, replay = run([offline[0], "check-reads", *offline[1:]])
    assert code == 0 and replay["reads"] == 2 and replay["violations"] == [], replay
    code, server = run([bin_dir / "consentry", "audit", "verify", "--json"])
    assert code == 0 and server["ok"] is True, server

    engine = create_db_engine(database_url)  # someone with database access rewrites the first read
    try:
        with Session(engine) as session:
            read = session.exec(select(AuditEntry).where(AuditEntry.kind == "profile.read")).first()
            assert read is not None
            forged = read.entry.replace(b'"email"', b'"phone"')
            assert forged != read.entry
            read.entry = forged
            session.add(read)
            session.commit()
    finally:
        engine.dispose()
    code, report = run(verify)
    assert code == 1 and report["verified"] is False, report
    code, server = run([bin_dir / "consentry", "audit", "verify", "--json"])
    assert code == 1 and server["ok"] is False, server
