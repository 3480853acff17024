"""Errors raised by the vault.

VaultError                      root: every vault failure
├── UnknownField                a field name that is not in the catalogue
├── ProfileInvalid              one or more values failed validation (carries every FieldError)
├── DecryptionFailed            a ciphertext could not be opened; deliberately says nothing about why
├── VaultNotFound               no data key exists for the customer (never created, or shredded)
└── KeyUnavailable              a key-encryption key version is missing from the key provider
"""

from __future__ import annotations

from dataclasses import dataclass


class VaultError(Exception):
    """Root of every error the vault raises."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure: which field, and what a person should do about it."""

    field: str
    message: str


class UnknownField(VaultError):
    """A field name that is not in the catalogue."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown field {name!r}; known fields are: {', '.join(known)}")


class ProfileInvalid(VaultError):
    """One or more profile values failed validation; `errors` lists every one of them."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


class DecryptionFailed(VaultError):
    """A ciphertext could not be opened. Opaque on purpose: callers never learn why."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class VaultNotFound(VaultError):
    """The customer has no data key: the vault was never created or has been shredded."""


class KeyUnavailable(VaultError):
    """A key-encryption key version the data needs is not available from the key provider."""
