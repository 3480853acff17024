"""Unmodified third-party relying parties sign customers in with Consentry over real HTTP: the
certified `openid-client` (npm, run with Node: `tests/clients/node/rp.mjs`, installed by `make test`)
and Authlib's own OpenID Connect client in Python. Each discovers the broker, runs the code flow with
PKCE, state and nonce, validates the ID token against the JWKS, reads UserInfo and refreshes; what
they accept is what any standard relying party would."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.starlette_client import OAuth
from support.core import live_server
from support.http_customer import customer_consents
from support.oauth import OFFER, REDIRECT, create_brand_with_cli

T = TypeVar("T")
NODE_DIR = Path(__file__).parent / "node"
OIDC_OFFER = {**OFFER, "required_fields": ["email"], "optional_fields": ["given_name", "dietary"]}


def _node(*args: str) -> str:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openid-client").is_dir():
        pytest.fail("openid-client is missing: `make test` runs `npm ci` in tests/clients/node (Node 20)")
    done = subprocess.run([node, str(NODE_DIR / "rp.mjs"), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run Authlib's async client in a thread of its own: a browser test before this one in the same
    worker may have left Playwright's event loop running in this thread."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def _offer(base: str, client_id: str, secret: str) -> str:
    with httpx.Client(base_url=base, timeout=30) as http:
        form = {"grant_type": "client_credentials", "scope": "offers:write"}
        token = http.post("/oauth/token", data=form, auth=(client_id, secret)).json()["access_token"]
        published = http.post("/v1/offers", json=OIDC_OFFER, headers={"Authorization": f"Bearer {token}"})
        assert published.status_code == 201, published.text
        offer_id: str = published.json()["id"]
        return offer_id


@pytest.mark.slow
def test_openid_client_signs_a_customer_in(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        offer_id = _offer(base, client_id, secret)
        state_file = str(tmp_path / "rp-state.json")
        url = _node("start", base, client_id, secret, REDIRECT, offer_id, state_file)
        asked = parse_qs(urlsplit(url).query)
        assert asked["scope"] == ["openid email profile"] and asked["code_challenge_method"] == ["S256"]
        callback = customer_consents(base, url, data_dir)
        out = json.loads(_node("finish", base, client_id, secret, callback, state_file))
        assert out["logout"].startswith(f"{base}/oauth/logout?") and "id_token_hint=" in out["logout"]
        logged_out = httpx.get(out["logout"])  # this browser has no session: nothing to ask
        assert logged_out.status_code == 200 and "You are logged out" in logged_out.text
    claims, userinfo = out["claims"], out["userinfo"]
    assert claims["iss"] == base and claims["aud"] == client_id and claims["nonce"] == asked["nonce"][0]
    assert claims["amr"] == ["pwd"] and "email" not in claims
    assert out["scope"].split()[0] == "openid"
    assert userinfo["sub"] == claims["sub"] and userinfo["email"] == "ada@example.org"
    assert userinfo["email_verified"] is True
    assert out["refreshed_scope"].split()[0] == "openid"
    assert out["introspection"]["active"] is True and out["introspection"]["client_id"] == client_id
    assert out["after_revocation"]["active"] is False, "revoking the refresh token ends its family"


@pytest.mark.slow
def test_authlib_s_openid_connect_client_signs_a_customer_in(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir = tmp_path / "var"
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url)
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        offer_id = _offer(base, client_id, secret)
        oauth = OAuth()
        rp = oauth.register(
            "consentry",
            client_id=client_id,
            client_secret=secret,
            server_metadata_url=f"{base}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
        )

        async def authorize() -> dict[str, Any]:
            started: dict[str, Any] = await rp.create_authorization_url(
                REDIRECT, nonce="authlib-nonce-1", offer=offer_id
            )
            return started

        started = _run(authorize())
        callback = customer_consents(base, started["url"], data_dir)
        answer = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        assert answer["state"] == started["state"] and answer["iss"] == base

        async def sign_in() -> tuple[dict[str, Any], Any, Any]:
            token = await rp.fetch_access_token(
                redirect_uri=REDIRECT, code=answer["code"], code_verifier=started["code_verifier"]
            )
            claims = await rp.parse_id_token(token, nonce="authlib-nonce-1")
            userinfo = await rp.userinfo(token=token)
            return token, claims, userinfo

        token, claims, userinfo = _run(sign_in())
    assert claims["iss"] == base and claims["aud"] == client_id and claims["nonce"] == "authlib-nonce-1"
    assert token["scope"].split()[0] == "openid"
    assert userinfo["sub"] == claims["sub"] and userinfo["email"] == "ada@example.org"
