"""Plaintext canaries: write distinctive values into every field through a real server, then look
for them in the raw database (SQLite file and WAL, or a pg_dump) and in the server's log."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from support.core import PG_URL, STRONG_PASSWORD, live_server
from support.mail import sign_up_over_http

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
