"""The customer's browser in self-custody, in Python: what the portal's script does with WebCrypto.

It makes the held data key, seals fields with it in the vault's format (`vault.crypto.FieldCipher`:
the same AAD binding as the server's), wraps the key under a passkey's PRF output and a recovery key
(HKDF-SHA256, AES-256-GCM: `vault.held`), and seals a grant's fields to the brand (JWE, ECDH-ES and
A256GCM: `clients.brand.sealed`). Tests use it to drive the custody API as the browser does, and to
open what the server stores, as only the customer can."""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwe
from joserfc.jwk import ECKey, OKPKey

from vault import crypto

WRAP_PURPOSE = b"consentry/held-dek-wrap/v1"
INFO = {"passkey": b"consentry/held-unlock/v1/passkey", "recovery": b"consentry/held-unlock/v1/recovery"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def padded(value: Any, size: int) -> bytes:
    """A value's compact JSON padded with spaces to a multiple of `size` bytes, as the browser pads it."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return data.ljust(max(size, -(-len(data) // size) * size), b" ")


def _kek(kind: str, ikm: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO[kind]).derive(ikm))


def wrap(kind: str, ikm: bytes, dek: bytes, customer_id: UUID, version: int = 1) -> dict[str, Any]:
    """An unlock of `kind` for the key `dek`: its salt and the wrapped key, as the browser sends them."""
    salt, nonce = os.urandom(32), os.urandom(12)
    aad = WRAP_PURPOSE + customer_id.bytes + struct.pack(">I", version)
    wrapped = b"\x01" + nonce + _kek(kind, ikm, salt).encrypt(nonce, dek, aad)
    return {"kind": kind, "salt": b64(salt), "wrapped_key": b64(wrapped)}


def unwrap(unlock: dict[str, Any], ikm: bytes, customer_id: UUID, version: int = 1) -> bytes:
    """The held key, from an unlock as `/v1/me/custody` gives it back."""
    wrapped = unb64(unlock["wrapped_key"])
    aad = WRAP_PURPOSE + customer_id.bytes + struct.pack(">I", version)
    return _kek(unlock["kind"], ikm, unb64(unlock["salt"])).decrypt(wrapped[1:13], wrapped[13:], aad)


@dataclass
class HeldBrowser:
    """One customer's browser: the held key, a passkey's PRF output and the recovery key."""

    customer_id: UUID
    issuer: str
    dek: bytes = field(default_factory=crypto.generate_key)
    prf: bytes = field(default_factory=lambda: os.urandom(32))
    recovery: bytes = field(default_factory=lambda: os.urandom(32))

    def cipher(self, version: int = 1) -> crypto.FieldCipher:
        return crypto.FieldCipher(self.dek, customer_id=self.customer_id, dek_version=version)

    def seal_fields(self, values: dict[str, Any]) -> dict[str, str]:
        """Each value as the vault seals it (compact JSON), under the held key."""
        cipher = self.cipher()
        return {name: b64(cipher.seal(name, padded(value, 64))) for name, value in values.items()}

    def open_fields(self, sealed: dict[str, str]) -> dict[str, Any]:
        cipher = self.cipher()
        return {name: json.loads(cipher.open(name, unb64(blob))) for name, blob in sealed.items()}

    def unlocks(self, passkey_id: UUID | str) -> list[dict[str, Any]]:
        passkey = wrap("passkey", self.prf, self.dek, self.customer_id)
        return [
            {**passkey, "passkey_id": str(passkey_id)},
            wrap("recovery", self.recovery, self.dek, self.customer_id),
        ]

    def seal_grant(
        self, grant: dict[str, Any], values: dict[str, Any], *, version: int | None = None, **changes: Any
    ) -> dict[str, Any]:
        """A grant of `/v1/me/custody`'s list sealed to its brand's first key: one JWE per purpose,
        holding the values of the purpose's fields the customer has (`values`, derived ones included)."""
        version = grant["sealed_version"] + 1 if version is None else version
        key = grant["keys"][0]
        public = (ECKey if key["kty"] == "EC" else OKPKey).import_key(key)
        copies = {}
        for purpose, names in grant["purposes"].items():
            claims = {
                "iss": self.issuer,
                "aud": grant["client_id"],
                "sub": grant["sub"],
                "grant_id": grant["grant_id"],
                "grant_version": version,
                "purpose": purpose,
                "fields": {name: values[name] for name in names if name in values},
                "iat": int(time.time()),
                **changes,
            }
            header = {"alg": "ECDH-ES", "enc": "A256GCM", "kid": key["kid"], "cty": "consentry-grant+json"}
            copies[purpose] = jwe.encrypt_compact(header, padded(claims, 512), public)
        return {"version": version, "copies": copies}
