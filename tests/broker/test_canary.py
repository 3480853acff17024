"""Plaintext canaries: write distinctive values into every field through a real server, then look
for them in the raw database (SQLite file and WAL, or a pg_dump) and in the server's log."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from uuid import UUID

import httpx
from joserfc.jwk import ECKey
from sqlalchemy.engine import make_url
from support.core import PG_URL, STRONG_PASSWORD, live_server
from support.held import HeldBrowser
from support.http_customer import customer_consents
from support.mail import sign_up_over_http
from support.oauth import OFFER, REDIRECT, create_brand_with_cli
from support.webauthn import SoftAuthenticator

from clients.brand import ConsentryClient

CANARIES = {
    "email": "qzcanary.mail@example.org",
    "phone": "+447400987654",
    "given_name": "Qzcanarygiven",
    "family_name": "Qzcanaryfamily",
    "birthdate": "1983-07-29",
    "postcode": "QZ9 8XC",
    "city": "Qzcanarycity",
    "country": "NZ",
    "household_size": 7,
    "life_stage": "empty_nester",
    "dietary": ["kosher", "nut_allergy"],
    "interests": ["board_games", "podcasts"],
    "preferred_channels": ["post", "sms"],
}
# What must never appear in clear anywhere: every text value, the password, and the tag values.
NEEDLES = [
    "qzcanary.mail",
    "+447400987654",
    "447400987654",
    "Qzcanarygiven",
    "Qzcanaryfamily",
    "1983-07-29",
    "QZ9 8XC",
    "Qzcanarycity",
    "empty_nester",
    "kosher",
    "nut_allergy",
    "board_games",
    STRONG_PASSWORD,
]


def _database_bytes(url: str) -> bytes:
    if PG_URL is None:
        path = Path(make_url(url).database or "")
        return b"".join(
            p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
        )
    pg_dump = Path(os.environ.get("CONSENTRY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")) / "pg_dump"
    parsed = make_url(url)
    command = [str(pg_dump), "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port)]
    command += ["-U", parsed.username or "postgres", "--data-only", "--inserts", parsed.database or ""]
    dump = subprocess.run(command, check=True, capture_output=True, timeout=60)
    return dump.stdout


def test_no_plaintext_in_database_or_logs(tmp_path: Path, fresh_database_url: str) -> None:
    log_path = tmp_path / "server.log"
    with (
        live_server(tmp_path / "var", fresh_database_url, log_path) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        # The address is confirmed: the mail that did it went through the outbox, sealed.
        sign_up_over_http(http, tmp_path / "var", CANARIES["email"])
        login = http.post("/v1/sessions", json={"email": CANARIES["email"], "password": STRONG_PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        assert http.put("/v1/me/profile", json=CANARIES, headers=headers).status_code == 200
        # Errors too must not echo what was sent.
        assert (
            http.patch("/v1/me/profile", json={"city": "Qzcanarycity\x00"}, headers=headers).status_code
            == 422
        )
        assert http.get("/v1/me/profile", headers=headers).json()["fields"]["city"] == "Qzcanarycity"
        assert (
            http.post("/v1/sessions", json={"email": CANARIES["email"], "password": "x" * 20}).status_code
            == 401
        )

    raw = _database_bytes(fresh_database_url)
    log = log_path.read_bytes()
    # We looked at real content: field names are stored in clear (values never are).
    assert b"given_name" in raw and b"GET /v1/me/profile 200" in log
    for needle in NEEDLES:
        assert needle.encode() not in raw, f"{needle!r} is readable in the database"
        assert needle.encode() not in log, f"{needle!r} is readable in the server log"


# A customer in self-custody: values that only ever exist in their browser (support.held) and in what
# it seals to the brand. The server's database, WAL, log, mail and every answer it gives must lack them.
HELD_CANARIES = {"given_name": "Qzheldgiven", "city": "Qzheldcity", "postcode": "QZ7 1HC",
                 "interests": ["board_games", "podcasts"], "household_size": 6}  # fmt: skip
HELD_NEEDLES = ["Qzheldgiven", "Qzheldcity", "QZ7 1HC", "QZ7", "board_games", "podcasts"]


class _Recorder(httpx.HTTPTransport):
    """A transport that keeps every answer's body, to look for plaintext in what the server says."""

    def __init__(self, bodies: list[bytes]) -> None:
        super().__init__()
        self.bodies = bodies

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        body = response.read()
        self.bodies.append(body)
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


def test_a_self_custody_customers_values_never_reach_the_server(
    tmp_path: Path, fresh_database_url: str
) -> None:
    data_dir, log_path = tmp_path / "var", tmp_path / "server.log"
    key = ECKey.generate_key("P-256", parameters={"kid": "grocer-enc", "use": "enc"}, private=True)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    client_id, secret = create_brand_with_cli(data_dir, fresh_database_url, jwks=jwks)
    answers: list[bytes] = []
    with (
        live_server(data_dir, fresh_database_url, log_path) as base,
        ConsentryClient(base, client_id=client_id, client_secret=secret, redirect_uri=REDIRECT,
                        decryption_keys=[key.as_dict(private=True)], transport=_Recorder(answers)) as sdk,
        httpx.Client(base_url=base, timeout=30, transport=_Recorder(answers)) as http,
    ):  # fmt: skip
        offer = sdk.publish_offer(
            {**OFFER, "optional_fields": [*OFFER["optional_fields"], "city", "interests"]}
        )
        asked = sdk.authorization_url(offer_id=offer.id)
        callback = customer_consents(base, asked.url, data_dir)  # a grant in the broker's custody first
        session = sdk.handle_callback(callback, expected_state=asked.state, code_verifier=asked.code_verifier)
        token = http.post("/v1/sessions", json={"email": "ada@example.org", "password": STRONG_PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        authenticator = SoftAuthenticator(origin=base)
        options = http.post("/v1/me/passkeys/options", headers=headers).json()
        created = {"name": "Laptop", "credential": authenticator.create(options)}
        passkey = http.post("/v1/me/passkeys", headers=headers, json=created).json()
        options = http.post("/v1/sessions/current/reauthenticate/options", headers=headers).json()
        assert http.post("/v1/sessions/current/reauthenticate", headers=headers,
                         json={"credential": authenticator.get(options)}).status_code == 200  # fmt: skip

        # The move: the browser reads what the broker held, seals it and every live grant.
        state = http.get("/v1/me/custody", headers=headers).json()
        browser = HeldBrowser(UUID(state["customer_id"]), state["issuer"])
        before = {k: v for k, v in http.get("/v1/me/profile", headers=headers).json()["fields"].items()
                  if v is not None and k != "email"}  # fmt: skip
        values = {**before, "email": "ada@example.org"}
        sealed = {g["grant_id"]: browser.seal_grant(g, values) for g in state["grants"]}
        held = {
            "fields": browser.seal_fields(before),
            "unlocks": browser.unlocks(passkey["id"]),
            "grants": sealed,
        }
        assert http.post("/v1/me/custody/hold", json=held, headers=headers).status_code == 200
        answers.clear()  # from here on, the canaries exist only in the browser and the brand

        # The canaries, sealed in the browser; the grant holds city and interests: sealed anew.
        (grant,) = http.get("/v1/me/custody", headers=headers).json()["grants"]
        now = {**values, **HELD_CANARIES}
        change = {
            "fields": browser.seal_fields(HELD_CANARIES),
            "grants": {grant["grant_id"]: browser.seal_grant(grant, now)},
        }
        assert http.put("/v1/me/custody/fields", json=change, headers=headers).status_code == 200
        read = sdk.read_profile(session)  # the brand opens what was sealed to it
        assert read.fields["city"] == "Qzheldcity" and read.fields["interests"] == ["board_games", "podcasts"]
        # Everything the customer's pages and API answer, once the vault is held.
        mine = f"/v1/me/grants/{grant['grant_id']}"
        for path in ("/v1/me/custody", "/v1/me/profile", "/v1/me/grants", mine, "/v1/me/access-log"):
            http.get(path, headers=headers)
        reauth = http.post("/v1/sessions/current/reauthenticate/options", headers=headers).json()
        http.post(
            "/v1/sessions/current/reauthenticate",
            headers=headers,
            json={"credential": authenticator.get(reauth)},
        )
        exported = http.get("/v1/me/export", headers=headers)
        assert exported.status_code == 200 and exported.json()["profile"]["custody"] == "customer"
        assert set(exported.json()["profile"]["held"]["fields"]) >= {"given_name", "city", "interests"}
        assert sdk.access_log(grant_id=session.grant_id).items

    assert read.sealed is not None and any(read.sealed.encode() in answer for answer in answers)
    raw = _database_bytes(fresh_database_url)
    log = log_path.read_bytes()
    mail = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert b"given_name" in raw and b"PUT /v1/me/custody/fields 200" in log
    for needle in HELD_NEEDLES:
        assert needle.encode() not in raw, f"{needle!r} is readable in the database"
        assert needle.encode() not in log, f"{needle!r} is readable in the server log"
        assert needle.encode() not in mail, f"{needle!r} is in the server's files"
        for answer in answers:
            assert needle.encode() not in answer, (
                f"{needle!r} is in an answer of the server: {answer[:200]!r}"
            )
