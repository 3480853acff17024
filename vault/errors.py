"""Errors raised by the vault.

VaultError                      root: every vault failure
├── UnknownField                a field name that is not in the catalogue
├── ProfileInvalid              one or more values failed validation (carries every FieldError)
├── DecryptionFailed            a ciphertext could not be opened; deliberately says nothing about why
├── VaultNotFound               no data key exists for the customer (never created, or shredded)
├── KeyUnavailable              a key-encryption key version is missing from the key provider
├── ProfileHeld                 the profile is in self-custody: only the customer's browser opens it
└── CustodyConflict             a custody operation the profile's custody does not allow (`held` says which)
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


class ProfileHeld(VaultError):
    """The fields asked for are sealed under a key only the customer holds (`vault.held`): the broker
    cannot open them. `names`: the held fields asked for."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__(f"in self-custody, only the customer's browser can open: {', '.join(names)}")


class CustodyConflict(VaultError):
    """A self-custody operation on a profile in the broker's custody, or a move to self-custody of one
    already there: `held` says whether the customer holds the profile's key."""

    def __init__(self, message: str, *, held: bool) -> None:
        self.held = held
        super().__init__(message)
