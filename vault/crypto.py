"""Envelope encryption: the only module that touches AES-GCM.

A recipe layer in the manner of pyca/cryptography's Fernet: no choices for the caller.

- Each customer has a data-encryption key (DEK), 256 random bits.
- A profile value is sealed with AES-256-GCM under the DEK with a random 96-bit nonce, and
  AAD = customer id ‖ field name ‖ DEK version, so a ciphertext moved to another customer, another
  field, or presented under another key version fails to open.
- The DEK is wrapped with AES-256-GCM under a key-encryption key (KEK) with
  AAD = purpose ‖ customer id ‖ KEK version, so a wrapped DEK cannot be swapped between customers.

Every failure to open is the one opaque `DecryptionFailed`.
"""

from __future__ import annotations

import os
import struct
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionFailed

KEY_BYTES = 32
NONCE_BYTES = 12
_FORMAT = b"\x01"  # ciphertext format version, first byte of every sealed blob
_WRAP_PURPOSE = b"consentry/dek-wrap/v1"
_FIELD_PURPOSE = b"consentry/field/v1"
_SECRET_PURPOSE = b"consentry/secret/v1"  # other personal data a customer holds: redemption codes, disputes


def generate_key() -> bytes:
    """A fresh random 256-bit key (a DEK or a KEK)."""
    return AESGCM.generate_key(bit_length=256)


def _wrap_aad(customer_id: UUID, kek_version: int) -> bytes:
    return _WRAP_PURPOSE + customer_id.bytes + struct.pack(">I", kek_version)


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise DecryptionFailed()
    return AESGCM(key)


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _FORMAT + nonce + aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != _FORMAT:
        raise DecryptionFailed()
    try:
        return aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionFailed() from None


class FieldCipher:
    """Seals and opens one customer's fields under one DEK version.

    One AES-GCM context serves every field of a profile read or write; the AAD is
    purpose ‖ customer id ‖ len(field) ‖ field ‖ DEK version, length-prefixed so no two
    (field, version) pairs can share an AAD. With `secrets=True` the purpose differs, and the
    "field" is a secret's label: a secret can never be opened as a profile field, nor the reverse.
    """

    __slots__ = ("_aead", "_prefix", "_suffix")

    def __init__(self, dek: bytes, *, customer_id: UUID, dek_version: int, secrets: bool = False) -> None:
        self._aead = _aead(dek)
        self._prefix = (_SECRET_PURPOSE if secrets else _FIELD_PURPOSE) + customer_id.bytes
        self._suffix = struct.pack(">I", dek_version)

    def _aad(self, field: str) -> bytes:
        name = field.encode()
        return self._prefix + struct.pack(">H", len(name)) + name + self._suffix

    def seal(self, field: str, plaintext: bytes) -> bytes:
        """Encrypt one value of `field` with a fresh random nonce."""
        return _seal(self._aead, plaintext, self._aad(field))

    def open(self, field: str, ciphertext: bytes) -> bytes:
        """Decrypt one value of `field`; DecryptionFailed if anything about it is not as sealed."""
        return _open(self._aead, ciphertext, self._aad(field))


def seal_field(dek: bytes, *, customer_id: UUID, field: str, dek_version: int, plaintext: bytes) -> bytes:
    """Encrypt one profile value, bound to its customer, field and DEK version."""
    return FieldCipher(dek, customer_id=customer_id, dek_version=dek_version).seal(field, plaintext)


def open_field(dek: bytes, *, customer_id: UUID, field: str, dek_version: int, ciphertext: bytes) -> bytes:
    """Decrypt one profile value; raises DecryptionFailed if anything about it is not as sealed."""
    return FieldCipher(dek, customer_id=customer_id, dek_version=dek_version).open(field, ciphertext)


def wrap_dek(kek: bytes, *, customer_id: UUID, kek_version: int, dek: bytes) -> bytes:
    """Wrap a customer's DEK under a KEK version."""
    return _seal(_aead(kek), dek, _wrap_aad(customer_id, kek_version))


def unwrap_dek(kek: bytes, *, customer_id: UUID, kek_version: int, wrapped: bytes) -> bytes:
    """Unwrap a customer's DEK; raises DecryptionFailed on any mismatch."""
    dek = _open(_aead(kek), wrapped, _wrap_aad(customer_id, kek_version))
    if len(dek) != KEY_BYTES:
        raise DecryptionFailed()
    return dek
