"""Signing keys for JWT access tokens (RFC 9068) and OpenID Connect ID tokens, published as a JWKS with
`kid`s.

Keys live as private JWK files (mode 0600) under ``<data_dir>/keys/signing``, each for one algorithm
(its JWK's `alg`): "Ed25519" (RFC 9864's fully-specified name for EdDSA over Ed25519), which signs
access tokens and consent receipts, and "RS256", which signs ID tokens by default (the algorithm
OpenID Connect Discovery requires and every relying party supports; a client may register Ed25519
instead). For each algorithm the newest key signs; older keys stay published until every token they
signed has expired, then rotation deletes them. Access tokens verify with Ed25519 keys only: an ID
token, or anything else signed with an RSA key, is never an access token. The RSA key is made the
first time it is needed (an ID token, or the JWKS): a broker that never serves OpenID Connect, and
each test, is spared generating it.

Two caches keep signature checks off the hot path, both bounded and both invalidated by a rotation,
in this process or another: the key list is read again whenever the directory's mtime changes (and
on every call while that mtime is too recent to trust, as git does with racy index entries), and a
verified token's claims are kept until its `exp` while the key that signed it is still published.
Only the signature is cached: lifetime, issuer and audience are checked on every use by the caller,
and revocation against the database (`broker.oauth.bearer`).

Signing alone looks at the directory at most once every `SIGNER_RECHECK_NS`, so that issuing a token
needs no system call: a key another process adds signs here within a second, and meanwhile the one
before it, published for as long as any token lives, goes on signing. A key this process adds signs
at once. Verification and the JWKS never trust a listing the directory's mtime contradicts: a key an
operator withdraws stops verifying at once (tokens it still signs here in that second are refused).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeyParameters, KeySet, OKPKey, RSAKey, import_key

from vault.keys import create_key_file
from vault.private_files import private_directory

ALGORITHM = "Ed25519"  # access tokens and receipts
ID_TOKEN_ALGORITHMS = ("RS256", ALGORITHM)  # the first is the default (OpenID Connect Discovery §3)
RSA_BITS = 2048
TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT typ of access tokens (RFC 9068), not a secret
ID_TOKEN_TYPE = "JWT"  # noqa: S105 - the typ ID tokens carry
# Verified tokens remembered, about 2.4 KB each (the token and its claims): 2.4 MiB when full. A hit
# saves about 125 us of signature check. In the soak (bench/soak.py: reads, refreshes, consents, issue
# 17) 64 entries already hit as often as an unbounded cache (77 % of lookups: a refresh replaces the
# token, and the replaced one is not looked up again), while 4,096 filled with replaced tokens over the
# first minutes and held about 10 MiB of them.
VERIFIED_CACHE_SIZE = 1024
_RACY_NS = 2_000_000_000  # a directory mtime this close to its listing may hide a later change
SIGNER_RECHECK_NS = 1_000_000_000  # how long the key that signs is taken as the newest (module docstring)


class InvalidJWT(Exception):
    """A token that did not verify: bad signature, unknown key, wrong alg or type, or malformed."""


class WrongTokenType(InvalidJWT):
    """A token one of our keys signed, but of another type (its `typ`) than the one asked for."""


SigningKey = OKPKey | RSAKey


@dataclass(frozen=True, slots=True)
class _StoredKey:
    kid: str
    serial: int  # order of creation: the highest of its algorithm signs (timestamps can tie)
    created_at: datetime
    key: SigningKey
    alg: str


class SigningKeys:
    """The key directory: sign with the newest key, verify with any published one."""

    def __init__(self, directory: Path, *, clock: Callable[[], datetime]) -> None:
        self.directory = directory
        self.clock = clock
        private_directory(directory)
        self._cache: dict[str, _StoredKey] = {}
        self._listing: tuple[int, list[_StoredKey]] | None = None  # (directory mtime, keys by serial)
        # by algorithm: (time.monotonic_ns() it was listed, the key that signs)
        self._signers: dict[str, tuple[int, _StoredKey]] = {}
        # token -> (kid, exp, claims), oldest first
        self._verified: OrderedDict[str, tuple[str, int, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._adding = threading.Lock()  # one thread makes a missing key (`_newest`)
        if not any(k.alg == ALGORITHM for k in self._keys()):
            self.add()

    def _load(self, path: Path) -> _StoredKey:
        kid = path.stem
        cached = self._cache.get(kid)
        if cached is None:
            document = json.loads(path.read_text())
            created_at = datetime.fromisoformat(document["created_at"])
            key = import_key(document["jwk"])
            if not isinstance(key, OKPKey | RSAKey):
                raise ValueError(f"{path.name} holds a {type(key).__name__}, not a signing key")
            # Keys written before ID tokens existed are Ed25519 and may not say so.
            alg = str(document["jwk"].get("alg") or ALGORITHM)
            cached = _StoredKey(kid, int(document["serial"]), created_at, key, alg)
            self._cache[kid] = cached
        return cached

    def _keys(self) -> list[_StoredKey]:
        mtime = self.directory.stat().st_mtime_ns
        listing = self._listing
        if listing is not None and listing[0] == mtime:
            return listing[1]
        keys = []
        for path in self.directory.glob("*.jwk"):
            with contextlib.suppress(FileNotFoundError):  # retired by another process since the listing
                keys.append(self._load(path))
        keys.sort(key=lambda k: k.serial)
        self._cache = {k.kid: k for k in keys}  # forget the keys another process retired
        # A change within the filesystem's timestamp granularity may leave the mtime as it was: trust
        # the listing only once its mtime is safely in the past.
        self._listing = (mtime, keys) if time.time_ns() - mtime > _RACY_NS else None
        return keys

    def add(self, alg: str = ALGORITHM) -> str:
        """Create a new signing key for `alg`, which becomes the one that signs with it; returns its kid."""
        kid = secrets.token_urlsafe(12)
        parameters: KeyParameters = {"kid": kid, "use": "sig", "alg": alg}
        key: SigningKey
        if alg == ALGORITHM:
            key = OKPKey.generate_key("Ed25519", parameters=parameters)
        elif alg == "RS256":
            key = RSAKey.generate_key(RSA_BITS, parameters=parameters)
        else:
            raise ValueError(f"no signing keys for {alg!r}: {', '.join(ID_TOKEN_ALGORITHMS)}")
        serial = max((k.serial for k in self._keys()), default=0) + 1
        document = {
            "serial": serial,
            "created_at": self.clock().isoformat(),
            "jwk": key.as_dict(private=True),
        }
        create_key_file(self.directory / f"{kid}.jwk", json.dumps(document))  # a server never sees half of it
        self._listing = None
        self._signers.pop(alg, None)
        return kid

    def rotate(self, *, max_token_lifetime: timedelta) -> tuple[dict[str, str], list[str]]:
        """Add a new key for every algorithm, and delete the old keys whose successors (of their
        algorithm) have signed for longer than a token lives: (the new kid of each algorithm, the
        retired kids)."""
        new_kids = {alg: self.add(alg) for alg in ID_TOKEN_ALGORITHMS}
        keys, now, retired = self._keys(), self.clock(), []
        for alg in ID_TOKEN_ALGORITHMS:
            for older, newer in itertools.pairwise(k for k in keys if k.alg == alg):
                if newer.created_at + max_token_lifetime < now:
                    (self.directory / f"{older.kid}.jwk").unlink(missing_ok=True)
                    self._cache.pop(older.kid, None)
                    self._listing = None
                    retired.append(older.kid)
        return new_kids, retired

    def jwks(self) -> dict[str, Any]:
        """The public JWK set to publish: every algorithm's keys (the RSA key made now if there is none
        yet, so that a relying party's first fetch already holds the key of its first ID token)."""
        self._newest("RS256")
        return {"keys": [k.key.as_dict(private=False) for k in self._keys()]}

    def public_key(self, kid: str) -> dict[str, Any] | None:
        """The public JWK with this kid while it is published; None once it was retired."""
        found = [k for k in self._keys() if k.kid == kid]
        return found[0].key.as_dict(private=False) if found else None

    def sign(self, claims: dict[str, Any], *, typ: str = TOKEN_TYPE, alg: str = ALGORITHM) -> str:
        """A compact JWS of `claims`, signed by the newest key of `alg` (Ed25519 unless an ID token asks
        for RS256), typed at+jwt unless `typ` names another type (consent receipts, ID tokens), which
        `verify` then refuses as an access token."""
        now, signer = time.monotonic_ns(), self._signers.get(alg)
        if signer is None or now - signer[0] >= SIGNER_RECHECK_NS:
            signer = self._signers[alg] = (now, self._newest(alg))
        current = signer[1]
        header = {"alg": alg, "typ": typ, "kid": current.kid}
        return jwt.encode(header, claims, current.key, algorithms=[alg])

    def _newest(self, alg: str) -> _StoredKey:
        """The newest key of `alg`, made now if there is none (only the RSA key is ever missing)."""
        found = [k for k in self._keys() if k.alg == alg]
        if found:
            return found[-1]
        with self._adding:
            found = [k for k in self._keys() if k.alg == alg]
            if not found:
                self.add(alg)
                found = [k for k in self._keys() if k.alg == alg]
        return found[-1]

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by one of our keys with alg Ed25519 and typ at+jwt (a copy:
        remembered until the token's `exp` while its key is published, see the module docstring)."""
        if len(token) > 8192:
            raise InvalidJWT("token too long")
        keys = self._keys()
        cached = self._verified.get(token)
        if cached is not None:
            kid, exp, claims = cached
            if exp > self.clock().timestamp() and any(k.kid == kid for k in keys):
                return dict(claims)
            with self._lock:
                self._verified.pop(token, None)
        try:
            verifiers = KeySet([k.key for k in keys if k.alg == ALGORITHM])
            decoded = jwt.decode(token, verifiers, algorithms=[ALGORITHM])
        except (JoseError, ValueError, TypeError) as exc:  # TypeError: joserfc on odd headers
            raise InvalidJWT(str(exc)) from None
        if decoded.header.get("typ") != TOKEN_TYPE:
            raise InvalidJWT("not an access token (typ must be at+jwt)")
        claims, signer, expiry = dict(decoded.claims), decoded.header.get("kid"), decoded.claims.get("exp")
        if isinstance(signer, str) and isinstance(expiry, int) and expiry > self.clock().timestamp():
            self._remember(token, (signer, expiry, dict(claims)))
        return claims

    def verify_id_token(self, token: str) -> dict[str, Any]:
        """The claims of an ID token one of our published keys signed (RS256 or Ed25519, typ JWT),
        whatever its `exp`: RP-initiated logout's `id_token_hint` may be an old one. Access tokens and
        receipts (other types) are refused. Raises `InvalidJWT`."""
        return self.verify_typed(token, typ=ID_TOKEN_TYPE, algorithms=ID_TOKEN_ALGORITHMS, what="an ID token")

    def verify_typed(
        self, token: str, *, typ: str, algorithms: Sequence[str], what: str, max_length: int = 8192
    ) -> dict[str, Any]:
        """The claims of a token of type `typ` that one of our published keys signed with one of
        `algorithms`, whatever its `exp` (the caller checks the claims), uncached: ID tokens and grant
        tickets (`broker.oauth.tickets`). Raises `InvalidJWT`, `WrongTokenType` for another `typ`."""
        if len(token) > max_length:
            raise InvalidJWT("token too long")
        try:
            keys = KeySet([k.key for k in self._keys()])
            decoded = jwt.decode(token, keys, algorithms=list(algorithms))
        except (JoseError, ValueError, TypeError) as exc:  # TypeError: joserfc on odd headers
            raise InvalidJWT(str(exc)) from None
        if decoded.header.get("typ") != typ:
            raise WrongTokenType(f"not {what} (typ must be {typ})")
        return dict(decoded.claims)

    def _remember(self, token: str, entry: tuple[str, int, dict[str, Any]]) -> None:
        now = self.clock().timestamp()
        with self._lock:
            # Access tokens share one lifetime, so the oldest remembered is the first to expire: drop the
            # expired ones from the front, then the oldest while full (an expired one is also dropped when
            # next looked up). O(1) amortised: this is the read path.
            verified = self._verified
            while verified:
                _, oldest_exp, _ = next(iter(verified.values()))
                if len(verified) < VERIFIED_CACHE_SIZE and oldest_exp > now:
                    break
                verified.popitem(last=False)
            verified[token] = entry
