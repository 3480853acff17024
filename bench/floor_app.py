"""An instrument, not a product path: the least work issue 17's audited read and token must do, with
the libraries the broker uses and none of its own layers, for `bench/floors.py`.

- `GET /profile`: the bearer JWT's claims (verified once with joserfc, then cached, as the broker
  caches verified claims), one raw SQLite SELECT of a grant and its ciphertext, an AES-GCM decryption,
  and an audit entry (SHA-256 of canonical JSON) inserted by a group commit on the event loop,
  answered after its COMMIT (WAL, synchronous=FULL). No middleware, no ORM, no Merkle tree, no
  vault key unwrap.
- `POST /oauth/token`: Authlib's own `AuthorizationServer` and client-credentials grant, an
  in-memory client with a SHA-256 secret digest compared in constant time, a joserfc Ed25519 access
  token. No database, no middleware.

Not a benchmark: `bench/run.py` skips it. The database is a temporary file, made at import.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from joserfc import jwt
from joserfc.jwk import OKPKey

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP on loopback, as the bench serves
ALG = "Ed25519"
KEY = OKPKey.import_key(Ed25519PrivateKey.from_private_bytes(b"k" * 32))  # fixed: the bench signs too
CLIENT_ID, SECRET = "floor-brand", "floor-secret-" + "x" * 20
_DIGEST = hashlib.sha256(SECRET.encode()).digest()
_AES = AESGCM(b"a" * 32)


def access_token() -> str:
    """A token for `/profile`, valid for an hour."""
    claims = {"sub": "g1", "grant_id": "g1", "exp": int(time.time()) + 3600, "scope": "profile"}
    return jwt.encode({"alg": ALG, "kid": "k1"}, claims, KEY, algorithms=[ALG])


def _database() -> sqlite3.Connection:
    path = os.path.join(tempfile.mkdtemp(prefix="floor-"), "floor.db")
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE grants"
        " (id TEXT PRIMARY KEY, fields TEXT, expires REAL, revoked INT, ct BLOB, nonce BLOB)"
    )
    conn.execute("CREATE TABLE log (i INTEGER PRIMARY KEY, leaf BLOB, body BLOB)")
    nonce = os.urandom(12)
    profile = json.dumps({"email": "ada@example.org", "given_name": "Ada", "city": "London"}).encode()
    conn.execute(
        "INSERT INTO grants VALUES ('g1', 'email given_name city', ?, 0, ?, ?)",
        (time.time() + 86400, _AES.encrypt(nonce, profile, b"g1"), nonce),
    )
    return conn


_DB = _database()
_claims: dict[str, dict[str, Any]] = {}
_pending: list[tuple[bytes, bytes, asyncio.Future[None]]] = []
_wake = asyncio.Event()


async def _committer() -> None:
    """Group commit on the loop: every entry waiting, one transaction, one COMMIT."""
    while True:
        await _wake.wait()
        _wake.clear()
        while _pending:
            batch = _pending[:]
            del _pending[:]
            _DB.execute("BEGIN IMMEDIATE")
            _DB.executemany(
                "INSERT INTO log (leaf, body) VALUES (?, ?)", [(leaf, body) for leaf, body, _ in batch]
            )
            _DB.execute("COMMIT")
            for _, _, done in batch:
                done.set_result(None)


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_committer())
    yield
    task.cancel()


class _Client(ClientMixin):  # type: ignore[misc]
    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(hashlib.sha256(client_secret.encode()).digest(), _DIGEST)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


def _sign(client: Any, grant_type: str, user: Any, scope: str | None) -> str:
    now = int(time.time())
    claims = {"iss": "http://floor", "sub": CLIENT_ID, "aud": "http://floor", "iat": now, "exp": now + 600,
              "jti": secrets.token_urlsafe(16), "client_id": CLIENT_ID, "scope": scope or ""}  # fmt: skip
    return jwt.encode({"alg": ALG, "kid": "k1"}, claims, KEY, algorithms=[ALG])


class _Server(AuthorizationServer):  # type: ignore[misc]
    def query_client(self, client_id: str) -> _Client | None:
        return _Client() if client_id == CLIENT_ID else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Client-credentials tokens store nothing."""

    def create_oauth2_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        response = Response(json.dumps(body), status, dict(headers), media_type="application/json")
        response.headers["cache-control"] = "no-store"
        return response

    def send_signal(self, *args: Any, **kwargs: Any) -> None:
        """No signals."""


_SERVER = _Server()
_SERVER.register_token_generator("default", BearerTokenGenerator(_sign, None, lambda client, grant: 600))
_SERVER.register_grant(ClientCredentialsGrant)

app = FastAPI(lifespan=_lifespan)


@app.get("/profile")
async def profile(request: Request) -> Response:
    """The floor of an audited read."""
    token = request.headers.get("authorization", "")[7:]
    claims = _claims.get(token)
    if claims is None:
        claims = _claims[token] = jwt.decode(token, KEY, algorithms=[ALG]).claims
    row = _DB.execute(
        "SELECT fields, expires, revoked, ct, nonce FROM grants WHERE id = ?", (claims["grant_id"],)
    ).fetchone()
    if row is None or row[2] or row[1] < time.time():
        return JSONResponse({"type": "grant-not-live"}, 403)
    plain = _AES.decrypt(row[4], row[3], claims["grant_id"].encode())
    body = json.dumps({"grant": claims["grant_id"], "fields": row[0], "at": time.time()},
                      separators=(",", ":"), sort_keys=True).encode()  # fmt: skip
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _pending.append((hashlib.sha256(b"\0" + body).digest(), body, done))
    _wake.set()
    await done
    return Response(plain, media_type="application/json")


@app.post("/oauth/token")
async def token(request: Request) -> Response:
    """The floor of a client-credentials token."""
    form = await request.form()
    oauth = OAuth2Request("POST", "http://floor/oauth/token", None, request.headers)
    oauth.payload = BasicOAuth2Payload({k: v for k, v in form.items() if isinstance(v, str)})
    response: Response = _SERVER.create_token_response(oauth)
    return response
