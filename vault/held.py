"""Self-custody: a profile sealed in the customer's browser under a data key only the customer holds.

In the broker's custody (`vault.profile`) the customer's data key is wrapped under a key-encryption key
the server holds. In self-custody the profile's fields are sealed by the customer's browser under
another data key, the *held* key, which the server never sees:

- The held key is 256 random bits made by the browser (WebCrypto). Each field is sealed exactly as
  `vault.crypto.FieldCipher` seals it: AES-256-GCM, format byte 0x01 ‖ 96-bit nonce ‖ ciphertext ‖ tag,
  AAD = "consentry/field/v1" ‖ customer id (16 bytes) ‖ len(name) (2 bytes, big-endian) ‖ name ‖
  held key version (4 bytes, big-endian). A ciphertext moved to another field or customer fails to open.
- The held key is wrapped once per *unlock*: with AES-256-GCM under HKDF-SHA256(ikm, salt, info), with
  AAD = "consentry/held-dek-wrap/v1" ‖ customer id ‖ held key version, where
  - a passkey's unlock takes ikm = the passkey's WebAuthn PRF output for the input
    "consentry/held-vault/v1" (`PRF_INPUT`) and info "consentry/held-unlock/v1/passkey";
  - the recovery key's takes ikm = the 32 bytes of the printed recovery key and info
    "consentry/held-unlock/v1/recovery";
  - the salt is 32 random bytes of each unlock's own.
  Any one unlock opens the vault. Lose every passkey and the recovery key and nobody can open it.

The broker stores the ciphertexts and the wrapped keys and checks only their shape: format byte and
length. The account's email address stays in the broker's custody (`SERVER_HELD`): the broker writes
to it (sign-in codes, security notices) and it is how the customer signs in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlmodel import Session, col, delete, select

from vault import crypto
from vault.errors import CustodyConflict, FieldError, ProfileInvalid
from vault.fields import STORED_FIELDS
from vault.models import HeldField, HeldUnlock, VaultField, VaultKey
from vault.profile import SERVER_HELD, Vault

__all__ = [
    "PRF_INPUT",
    "SERVER_HELD",
    "HeldFields",
    "HeldState",
    "HeldUnlockView",
    "Unlock",
    "forget_passkey",
    "held_names",
]

PRF_INPUT = b"consentry/held-vault/v1"
# A sealed value: format byte, nonce, at least one byte, tag; at most a few KiB (the longest value the
# catalogue accepts, a list of interests, is well under 2 KiB of JSON).
_MIN_CIPHERTEXT = 1 + crypto.NONCE_BYTES + 1 + 16
MAX_CIPHERTEXT = 8192
_WRAPPED = 1 + crypto.NONCE_BYTES + crypto.KEY_BYTES + 16  # a wrapped 256-bit key
SALT_BYTES = 32
UNLOCK_KINDS = ("passkey", "recovery")
MAX_UNLOCKS = 32


def held_names() -> list[str]:
    """The fields the customer's own key seals in self-custody: every stored field but `SERVER_HELD`."""
    return [name for name in STORED_FIELDS if name not in SERVER_HELD]


@dataclass(frozen=True, slots=True)
class Unlock:
    """One wrapping of the held key, as the browser sends it."""

    kind: str  # "passkey" or "recovery"
    salt: bytes
    wrapped_dek: bytes
    passkey_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class HeldUnlockView:
    id: UUID
    kind: str
    passkey_id: UUID | None
    salt: bytes
    wrapped_dek: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HeldState:
    """Everything the browser needs to open a held vault: the key version, its unlocks, the ciphertexts."""

    dek_version: int
    unlocks: list[HeldUnlockView]
    fields: dict[str, bytes]
    updated_at: dict[str, datetime]


def check_ciphertexts(fields: Mapping[str, bytes | None], *, pointer: str = "fields") -> None:
    """Each name is a field the held key seals, each blob has the shape of a sealed value (or is None:
    remove the field). Raises `ProfileInvalid` listing every problem."""
    errors: list[FieldError] = []
    held = set(held_names())
    for name, blob in fields.items():
        if name in SERVER_HELD:
            errors.append(FieldError(name, f"{name} stays in the broker's custody; change it in the account"))
        elif name not in held:
            errors.append(FieldError(name, f"unknown field; known fields are: {', '.join(held_names())}"))
        elif blob is not None and not (
            _MIN_CIPHERTEXT <= len(blob) <= MAX_CIPHERTEXT and blob[:1] == b"\x01"
        ):
            errors.append(
                FieldError(
                    name,
                    f"must be a value sealed with AES-256-GCM: format byte 1, a 12-byte nonce, the "
                    f"ciphertext and its 16-byte tag, {_MIN_CIPHERTEXT} to {MAX_CIPHERTEXT} bytes",
                )
            )
    if errors:
        raise ProfileInvalid(errors)


def check_unlocks(unlocks: Iterable[Unlock]) -> None:
    """Each unlock has a known kind, a 32-byte salt and a wrapped 256-bit key; a passkey's names it."""
    errors: list[FieldError] = []
    for i, unlock in enumerate(unlocks):
        where = f"unlocks/{i}"
        if unlock.kind not in UNLOCK_KINDS:
            errors.append(FieldError(f"{where}/kind", "kind must be passkey or recovery"))
        if len(unlock.salt) != SALT_BYTES:
            errors.append(FieldError(f"{where}/salt", f"salt must be {SALT_BYTES} random bytes"))
        if len(unlock.wrapped_dek) != _WRAPPED or unlock.wrapped_dek[:1] != b"\x01":
            errors.append(
                FieldError(
                    f"{where}/wrapped_key",
                    f"wrapped_key must be a 256-bit key wrapped with AES-256-GCM ({_WRAPPED} bytes: "
                    "format byte 1, a 12-byte nonce, the key and its tag)",
                )
            )
        if (unlock.kind == "passkey") != (unlock.passkey_id is not None):
            errors.append(FieldError(f"{where}/passkey_id", "a passkey's unlock names its passkey; only it"))
    if errors:
        raise ProfileInvalid(errors)


@dataclass(frozen=True, slots=True)
class HeldFields:
    """Self-custody over a `Vault`: move a profile to the customer's key and back, store what the
    browser sealed, and hand it back. Never opens a held value: it cannot."""

    vault: Vault
    clock: Callable[[], datetime]

    def _key(self, session: Session, customer_id: UUID) -> VaultKey:
        return self.vault._key(session, customer_id, for_update=True)  # the vault's own, row-locked

    def state(self, session: Session, customer_id: UUID) -> HeldState:
        """The held key's version, its unlocks and every held ciphertext; `CustodyConflict` when the broker
        holds the profile."""
        key = self._key(session, customer_id)
        if key.held_dek_version is None:
            raise CustodyConflict("the profile is in the broker's custody", held=False)
        unlocks = session.exec(
            select(HeldUnlock)
            .where(HeldUnlock.customer_id == customer_id)
            .order_by(col(HeldUnlock.created_at), col(HeldUnlock.id))
        ).all()
        rows = session.exec(select(HeldField).where(HeldField.customer_id == customer_id)).all()
        order = {name: i for i, name in enumerate(STORED_FIELDS)}
        rows = sorted(rows, key=lambda row: order.get(row.name, len(order)))
        return HeldState(
            dek_version=key.held_dek_version,
            unlocks=[
                HeldUnlockView(u.id, u.kind, u.passkey_id, u.salt, u.wrapped_dek, u.created_at)
                for u in unlocks
            ],
            fields={row.name: row.ciphertext for row in rows},
            updated_at={row.name: row.updated_at for row in rows},
        )

    def hold(
        self, session: Session, customer_id: UUID, *, fields: Mapping[str, bytes], unlocks: list[Unlock]
    ) -> None:
        """Move the profile to the customer's key: `fields` are every stored field but `SERVER_HELD`,
        sealed by the browser (exactly those: none lost, none made up), `unlocks` at least one passkey's
        and exactly one recovery key's. The broker's ciphertexts of those fields are deleted."""
        key = self._key(session, customer_id)
        if key.held_dek_version is not None:
            raise CustodyConflict("the profile is already in self-custody", held=True)
        check_ciphertexts(fields)
        self._check_unlock_set(unlocks)
        stored = {name for name in self.vault.stored_names(session, customer_id) if name not in SERVER_HELD}
        given = set(fields)
        errors = [FieldError(n, "is in the profile: seal it too") for n in sorted(stored - given)]
        errors += [FieldError(n, "is not in the profile: leave it out") for n in sorted(given - stored)]
        if errors:
            raise ProfileInvalid(errors)
        session.exec(
            delete(VaultField).where(
                col(VaultField.customer_id) == customer_id, col(VaultField.name).in_(stored)
            )
        )
        key.held_dek_version = 1
        session.add(key)
        now = self.clock()
        for name, blob in fields.items():
            session.add(
                HeldField(customer_id=customer_id, name=name, dek_version=1, ciphertext=blob, updated_at=now)
            )
        self._add_unlocks(session, customer_id, unlocks)
        session.flush()

    def release(self, session: Session, customer_id: UUID, values: Mapping[str, Any]) -> dict[str, Any]:
        """Back to the broker's custody: `values` are the held fields as the browser opened them (exactly
        the held ones), validated and sealed under the broker's key; the held rows are deleted."""
        key = self._key(session, customer_id)
        if key.held_dek_version is None:
            raise CustodyConflict("the profile is already in the broker's custody", held=False)
        held = set(session.exec(select(HeldField.name).where(HeldField.customer_id == customer_id)).all())
        given = set(values)
        errors = [FieldError(n, "is in the profile: give its value") for n in sorted(held - given)]
        errors += [FieldError(n, "is not in the profile: leave it out") for n in sorted(given - held)]
        errors += [FieldError(n, f"{n} stays in the broker's custody") for n in sorted(given & SERVER_HELD)]
        if errors:
            raise ProfileInvalid(errors)
        self._forget(session, customer_id)
        key.held_dek_version = None
        session.add(key)
        session.flush()
        return self.vault.write(session, customer_id, values, replace=False)

    def update(self, session: Session, customer_id: UUID, fields: Mapping[str, bytes | None]) -> list[str]:
        """Store what the browser sealed anew (None: remove the field). Returns the names changed."""
        key = self._key(session, customer_id)
        if key.held_dek_version is None:
            raise CustodyConflict("the profile is in the broker's custody", held=False)
        check_ciphertexts(fields)
        now = self.clock()
        for name, blob in fields.items():
            row = session.get(HeldField, (customer_id, name))
            if blob is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(
                    HeldField(
                        customer_id=customer_id,
                        name=name,
                        dek_version=key.held_dek_version,
                        ciphertext=blob,
                        updated_at=now,
                    )
                )
            else:
                row.ciphertext, row.dek_version, row.updated_at = blob, key.held_dek_version, now
                session.add(row)
        session.flush()
        return sorted(fields, key=list(STORED_FIELDS).index)

    def add_unlock(self, session: Session, customer_id: UUID, unlock: Unlock) -> UUID:
        """Another passkey can unwrap the held key (a passkey already there is wrapped anew), or a new
        recovery key replaces the old one. Returns the unlock's id."""
        key = self._key(session, customer_id)
        if key.held_dek_version is None:
            raise CustodyConflict("the profile is in the broker's custody", held=False)
        check_unlocks([unlock])
        same = (
            col(HeldUnlock.kind) == "recovery"
            if unlock.kind == "recovery"
            else (col(HeldUnlock.passkey_id) == unlock.passkey_id)
        )
        session.exec(delete(HeldUnlock).where(col(HeldUnlock.customer_id) == customer_id, same))
        count = len(session.exec(select(HeldUnlock.id).where(HeldUnlock.customer_id == customer_id)).all())
        if count >= MAX_UNLOCKS:
            raise ProfileInvalid(
                [FieldError("unlocks", f"at most {MAX_UNLOCKS} passkeys can unlock a vault")]
            )
        (added,) = self._add_unlocks(session, customer_id, [unlock])
        session.flush()
        return added

    def unlocking_passkeys(self, session: Session, customer_id: UUID) -> set[UUID]:
        """The passkeys that can unlock the customer's held vault."""
        found = session.exec(
            select(HeldUnlock.passkey_id).where(
                HeldUnlock.customer_id == customer_id, col(HeldUnlock.passkey_id).is_not(None)
            )
        ).all()
        return {passkey_id for passkey_id in found if passkey_id is not None}

    def _check_unlock_set(self, unlocks: list[Unlock]) -> None:
        check_unlocks(unlocks)
        kinds = [unlock.kind for unlock in unlocks]
        passkeys = [unlock.passkey_id for unlock in unlocks if unlock.passkey_id is not None]
        errors = []
        if kinds.count("recovery") != 1:
            errors.append(
                FieldError("unlocks", "exactly one recovery key: the way back if every passkey is lost")
            )
        if not passkeys:
            errors.append(FieldError("unlocks", "at least one passkey must unlock the vault"))
        if len(set(passkeys)) != len(passkeys):
            errors.append(FieldError("unlocks", "one unlock per passkey"))
        if len(unlocks) > MAX_UNLOCKS:
            errors.append(FieldError("unlocks", f"at most {MAX_UNLOCKS} unlocks"))
        if errors:
            raise ProfileInvalid(errors)

    def _add_unlocks(self, session: Session, customer_id: UUID, unlocks: list[Unlock]) -> list[UUID]:
        now, ids = self.clock(), []
        for unlock in unlocks:
            row = HeldUnlock(
                id=uuid4(),
                customer_id=customer_id,
                kind=unlock.kind,
                passkey_id=unlock.passkey_id,
                salt=unlock.salt,
                wrapped_dek=unlock.wrapped_dek,
                created_at=now,
            )
            session.add(row)
            ids.append(row.id)
        return ids

    def _forget(self, session: Session, customer_id: UUID) -> None:
        session.exec(delete(HeldField).where(col(HeldField.customer_id) == customer_id))
        session.exec(delete(HeldUnlock).where(col(HeldUnlock.customer_id) == customer_id))


def forget_passkey(session: Session, customer_id: UUID, passkey_id: UUID) -> bool:
    """The passkey was removed from the account: its unlock goes with it. True if it had one."""
    result = session.exec(
        delete(HeldUnlock).where(
            col(HeldUnlock.customer_id) == customer_id, col(HeldUnlock.passkey_id) == passkey_id
        )
    )
    return bool(result.rowcount)
