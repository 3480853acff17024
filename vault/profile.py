"""Read, write, export and shred a customer's profile.

Values are validated against the catalogue (`vault.fields`), serialised as compact JSON, and sealed
one field per row under the customer's DEK (`vault.crypto`). Derived fields are computed on read and
never stored. Writes validate everything before touching a row, so a profile is never half-written.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, select

from vault import crypto
from vault.driver import DriverQuery
from vault.errors import (
    DecryptionFailed,
    FieldError,
    KeyUnavailable,
    ProfileHeld,
    ProfileInvalid,
    VaultNotFound,
)
from vault.fields import DERIVED_FIELDS, STORED_FIELDS, JSONValue, derive, field_spec, validate_values
from vault.keys import KeyProvider, active_version
from vault.models import HeldField, HeldUnlock, VaultField, VaultKey, VaultSecret

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # one encoder, not one per call


def _encode(value: JSONValue) -> bytes:
    return _ENCODER.encode(value).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(data: bytes) -> JSONValue:
    try:
        value: JSONValue = json.loads(data.decode())  # str parses faster than bytes (no sniffing)
    except ValueError:
        raise DecryptionFailed() from None
    return value


# The columns `read_stored` opens: a caller's own query may select them too (`fetched`), the key's
# last but one and the field's last (their rows repeat the key's columns beside each field).
KEY_COLUMNS = (
    col(VaultKey.kek_version),
    col(VaultKey.wrapped_dek),
    col(VaultKey.dek_version),
    col(VaultKey.held_dek_version),
)
FIELD_COLUMNS = (col(VaultField.name), col(VaultField.ciphertext))
KEY_AND_FIELDS = KEY_COLUMNS + FIELD_COLUMNS
# The customer's key row, outer-joined to all their fields; built once: every profile read runs it, and
# building a statement costs more than running it. A read wanting some fields still fetches every
# field's ciphertext (a customer has a few dozen at most) and opens only those it wants: an `IN` list
# of names would be rendered into the SQL again for each read, which cost a third of the read.
_KEY_AND_FIELDS = DriverQuery(
    sa_select(*KEY_AND_FIELDS)
    .select_from(VaultKey)
    .outerjoin(VaultField, col(VaultField.customer_id) == col(VaultKey.customer_id))
    .where(col(VaultKey.customer_id) == bindparam("customer_id")),
    repeated=len(KEY_COLUMNS),
)  # run on the driver's cursor (`vault.driver`): SQLAlchemy's Core cost as much as the query
# The names of a customer's stored fields: asked on every page of the portal's directory (`filled`).
_FIELD_NAMES = DriverQuery(
    sa_select(col(VaultField.name)).where(col(VaultField.customer_id) == bindparam("customer_id"))
)
_HELD_NAMES = DriverQuery(
    sa_select(col(HeldField.name)).where(col(HeldField.customer_id) == bindparam("customer_id"))
)
# The fields that stay in the broker's custody when the customer holds the profile's key (`vault.held`):
# the account's address, which the broker writes to and sign-in finds the account by.
SERVER_HELD = frozenset({"email"})


@dataclass(frozen=True, slots=True)
class Vault:
    """Profile operations over a database session, a key provider and a clock."""

    keys: KeyProvider
    clock: Callable[[], datetime]
    max_seals: int = 2**30

    def create(self, session: Session, customer_id: UUID) -> None:
        """Create the customer's data key. Call once, when the account is created."""
        version, dek = active_version(self.keys), crypto.generate_key()
        key = VaultKey(customer_id=customer_id, kek_version=version, wrapped_dek=b"", created_at=self.clock())
        self.rewrap(session, key, version, dek=dek)
        session.flush()
        # A KEK rotation may have run from start to end while this wrapped the key under `version` (a
        # sign-up stalled that long): then `version` is retired and its file gone. Now that the row is
        # written, a rotation that has not retired `version` yet will see the row (it waits for writers,
        # and retires while holding them off); one that already did left the file missing, so look.
        try:
            self.keys.kek(version)
        except KeyUnavailable:
            self.rewrap(session, key, active_version(self.keys), dek=dek)
            session.flush()

    def _key(self, session: Session, customer_id: UUID, *, for_update: bool = False) -> VaultKey:
        query = select(VaultKey).where(VaultKey.customer_id == customer_id)
        if for_update:
            query = query.with_for_update()
        key = session.exec(query).first()
        if key is None:
            raise VaultNotFound(f"no vault for customer {customer_id}")
        return key

    def _dek(self, key: VaultKey) -> bytes:
        return self._unwrap(key.customer_id, key.kek_version, key.wrapped_dek)

    def _unwrap(self, customer_id: UUID, kek_version: int, wrapped: bytes) -> bytes:
        return crypto.unwrap_dek(
            self.keys.kek(kek_version), customer_id=customer_id, kek_version=kek_version, wrapped=wrapped
        )

    def read_stored(
        self,
        session: Session,
        customer_id: UUID,
        names: Iterable[str] | None = None,
        *,
        fetched: Sequence[Any] | None = None,
        omit_held: bool = False,
    ) -> dict[str, JSONValue]:
        """Decrypt the stored fields named (all when None); absent fields are left out. A profile in
        self-custody (`vault.held`) raises `ProfileHeld` for any field its customer's key seals, or,
        with `omit_held`, leaves them out (for pages that show the browser's own copy instead).

        One query (the key row, outer-joined to the fields): this is every profile read's path. A
        caller that already read those rows in a query of its own (with the columns of `KEY_AND_FIELDS`,
        the key's outer-joined: NULL when there is no vault) passes them as `fetched`."""
        query, params = _KEY_AND_FIELDS, {"customer_id": customer_id}
        wanted = None if names is None else set(names)
        if fetched is None:
            session.flush()  # what autoflush would do: the query below must see this session's writes
            rows = query.all(session.connection(), params)  # no ORM objects, nor Core's machinery
        else:
            rows = [row for row in fetched if row.kek_version is not None]
        if not rows:
            raise VaultNotFound(f"no vault for customer {customer_id}")
        if rows[0].held_dek_version is not None and not omit_held:
            held = [n for n in STORED_FIELDS if n not in SERVER_HELD and (wanted is None or n in wanted)]
            if held:
                raise ProfileHeld(held)
        try:
            dek = self._unwrap(customer_id, rows[0].kek_version, rows[0].wrapped_dek)
        except KeyUnavailable:
            # A rotation retired the KEK between the query and now; it re-wrapped every key before it
            # did, so the row read again holds the new wrapping (PostgreSQL reads afresh per statement).
            rows = query.all(session.connection(), params)
            if not rows:  # the account was deleted meanwhile
                raise VaultNotFound(f"no vault for customer {customer_id}") from None
            dek = self._unwrap(customer_id, rows[0].kek_version, rows[0].wrapped_dek)
        dek_version = rows[0].dek_version
        cipher = crypto.FieldCipher(dek, customer_id=customer_id, dek_version=dek_version)
        values: dict[str, JSONValue] = {}
        for row in rows:  # a row sealed under another DEK version fails its AAD check
            if row.name is not None and (wanted is None or row.name in wanted):
                values[row.name] = _decode(cipher.open(row.name, row.ciphertext))
        return {name: values[name] for name in STORED_FIELDS if name in values}

    def read(
        self,
        session: Session,
        customer_id: UUID,
        names: Iterable[str] | None = None,
        *,
        fetched: Sequence[Any] | None = None,
        omit_held: bool = False,
    ) -> dict[str, JSONValue]:
        """The profile as a reader sees it: stored fields and derived ones, limited to `names` if given
        (`fetched`: the key and field rows, if the caller read them, as for `read_stored`; `omit_held`:
        as for `read_stored`)."""
        wanted = None if names is None else {field_spec(name).name for name in names}
        needed: set[str] | None = None
        if wanted is not None:
            needed = {n for n in wanted if n in STORED_FIELDS}
            for name in wanted & DERIVED_FIELDS.keys():
                needed.update(DERIVED_FIELDS[name].derived_from)
        stored = self.read_stored(session, customer_id, needed, fetched=fetched, omit_held=omit_held)
        combined = {**stored, **derive(stored, today=self.clock().date())}
        return {n: v for n, v in combined.items() if wanted is None or n in wanted}

    def write(
        self, session: Session, customer_id: UUID, values: Mapping[str, Any], *, replace: bool
    ) -> dict[str, JSONValue]:
        """Validate then store values. `replace` drops fields not given (PUT); otherwise None deletes (PATCH).

        Returns the profile as stored afterwards (without derived fields).
        """
        removals = {name for name, value in values.items() if value is None}
        if replace and removals:
            raise ProfileInvalid(
                [
                    FieldError(n, "must not be null; leave the field out to remove it")
                    for n in sorted(removals)
                ]
            )
        unknown = [FieldError(n, "unknown field") for n in sorted(removals) if n not in STORED_FIELDS]
        if unknown:
            raise ProfileInvalid(unknown)
        updates = validate_values({n: v for n, v in values.items() if v is not None})
        key = self._key(session, customer_id, for_update=True)
        if key.held_dek_version is not None:
            held = [n for n in STORED_FIELDS if n not in SERVER_HELD and (n in updates or n in removals)]
            if held:
                raise ProfileHeld(held)
        if replace:
            removals = {row for row in self.stored_names(session, customer_id) if row not in updates}
        self._seal_all(session, key, updates)
        if removals:
            session.exec(
                delete(VaultField).where(
                    col(VaultField.customer_id) == customer_id, col(VaultField.name).in_(removals)
                )
            )
        session.flush()
        return self.read_stored(session, customer_id)

    def stored_names(self, session: Session, customer_id: UUID) -> list[str]:
        """The names of the fields the customer has stored, read without decrypting anything."""
        session.flush()  # a driver query sees only what was flushed
        return [row.name for row in _FIELD_NAMES.all(session.connection(), {"customer_id": customer_id})]

    def filled(self, session: Session, customer_id: UUID) -> frozenset[str]:
        """The fields the customer has filled in, told without decrypting anything (in self-custody too:
        a field's name is not its value): the stored ones and
        each derived one whose inputs are all stored (a postcode that fits no pattern of its country
        counts for a region, though a read then gives none)."""
        stored = set(self.stored_names(session, customer_id))
        stored.update(row.name for row in _HELD_NAMES.all(session.connection(), {"customer_id": customer_id}))
        derived = {name for name, spec in DERIVED_FIELDS.items() if stored.issuperset(spec.derived_from)}
        return frozenset(stored | derived)

    def _seal_all(self, session: Session, key: VaultKey, updates: Mapping[str, JSONValue]) -> None:
        if key.seal_count + len(updates) > self.max_seals:
            self.rotate_dek(session, key)
        cipher = crypto.FieldCipher(self._dek(key), customer_id=key.customer_id, dek_version=key.dek_version)
        now = self.clock()
        for name, value in updates.items():
            ciphertext = cipher.seal(name, _encode(value))
            row = session.get(VaultField, (key.customer_id, name))
            if row is None:
                row = VaultField(
                    customer_id=key.customer_id,
                    name=name,
                    dek_version=key.dek_version,
                    ciphertext=ciphertext,
                    updated_at=now,
                )
            else:
                row.dek_version, row.ciphertext, row.updated_at = key.dek_version, ciphertext, now
            session.add(row)
        key.seal_count += len(updates)
        session.add(key)

    def rotate_dek(self, session: Session, key: VaultKey) -> None:
        """A fresh DEK for the customer; every field and secret re-sealed under it (nonce budget)."""
        old_dek, who = self._dek(key), key.customer_id
        new_dek, new_version = crypto.generate_key(), key.dek_version + 1
        old = crypto.FieldCipher(old_dek, customer_id=who, dek_version=key.dek_version)
        new = crypto.FieldCipher(new_dek, customer_id=who, dek_version=new_version)
        rows = session.exec(select(VaultField).where(VaultField.customer_id == who)).all()
        for row in rows:
            row.ciphertext = new.seal(row.name, old.open(row.name, row.ciphertext))
            row.dek_version = new_version
            session.add(row)
        old = crypto.FieldCipher(old_dek, customer_id=who, dek_version=key.dek_version, secrets=True)
        new = crypto.FieldCipher(new_dek, customer_id=who, dek_version=new_version, secrets=True)
        hidden = session.exec(select(VaultSecret).where(VaultSecret.customer_id == who)).all()
        for secret in hidden:
            secret.ciphertext = new.seal(secret.label, old.open(secret.label, secret.ciphertext))
            secret.dek_version = new_version
            session.add(secret)
        kek_version = active_version(self.keys)
        key.wrapped_dek = crypto.wrap_dek(
            self.keys.kek(kek_version), customer_id=key.customer_id, kek_version=kek_version, dek=new_dek
        )
        key.kek_version, key.dek_version, key.seal_count, key.rotated_at = (
            kek_version,
            new_version,
            len(rows) + len(hidden),
            self.clock(),
        )
        session.add(key)

    def export(self, session: Session, customer_id: UUID) -> dict[str, Any]:
        """Everything the vault holds about the customer, with when each field changed: decrypted in the
        broker's custody; in self-custody the fields the customer's key seals are given as they are
        stored (`held`: ciphertexts and wrapped keys, base64url, which the customer's recovery key
        opens; `vault.held` documents the format)."""
        key = self._key(session, customer_id)
        rows = session.exec(select(VaultField).where(VaultField.customer_id == customer_id)).all()
        stored = self.read_stored(session, customer_id, omit_held=True)
        held = None
        if key.held_dek_version is not None:
            sealed = session.exec(select(HeldField).where(HeldField.customer_id == customer_id)).all()
            unlocks = session.exec(
                select(HeldUnlock)
                .where(HeldUnlock.customer_id == customer_id)
                .order_by(col(HeldUnlock.created_at))
            ).all()
            held = {
                "data_key_version": key.held_dek_version,
                "fields": {row.name: _b64(row.ciphertext) for row in sealed},
                "field_updated_at": {row.name: row.updated_at.isoformat() for row in sealed},
                "unlocks": [
                    {
                        "kind": unlock.kind,
                        "passkey_id": None if unlock.passkey_id is None else str(unlock.passkey_id),
                        "salt": _b64(unlock.salt),
                        "wrapped_key": _b64(unlock.wrapped_dek),
                        "created_at": unlock.created_at.isoformat(),
                    }
                    for unlock in unlocks
                ],
            }
        return {
            "custody": "broker" if held is None else "customer",
            "fields": stored,
            "derived": derive(stored, today=self.clock().date()),
            "field_updated_at": {row.name: row.updated_at.isoformat() for row in rows},
            "held": held,
            "encryption": {
                "algorithm": "AES-256-GCM, one data key per customer",
                "data_key_version": key.dek_version,
                "key_encryption_key_version": key.kek_version,
                "data_key_created_at": key.created_at.isoformat(),
            },
        }

    def shred(self, session: Session, customer_id: UUID) -> None:
        """Crypto-shred: destroy the data key and delete the ciphertexts. Nothing can open them after."""
        session.exec(delete(VaultField).where(col(VaultField.customer_id) == customer_id))
        session.exec(delete(VaultSecret).where(col(VaultSecret.customer_id) == customer_id))
        session.exec(delete(HeldField).where(col(HeldField.customer_id) == customer_id))
        session.exec(delete(HeldUnlock).where(col(HeldUnlock.customer_id) == customer_id))
        session.exec(delete(VaultKey).where(col(VaultKey.customer_id) == customer_id))
        session.flush()

    def is_held(self, session: Session, customer_id: UUID) -> bool:
        """Whether the customer holds the key of their profile (self-custody, `vault.held`)."""
        query = select(VaultKey.held_dek_version).where(VaultKey.customer_id == customer_id)
        return session.exec(query).first() is not None

    def exists(self, session: Session, customer_id: UUID) -> bool:
        """Whether the customer has a vault: false once it was shredded (the account was deleted)."""
        query = select(VaultKey.customer_id).where(VaultKey.customer_id == customer_id)
        return session.exec(query).first() is not None

    def put_secret(self, session: Session, customer_id: UUID, label: str, value: str) -> None:
        """Seal `value` under the customer's DEK as the secret `label` (replacing any before it)."""
        key = self._key(session, customer_id, for_update=True)
        if key.seal_count + 1 > self.max_seals:
            self.rotate_dek(session, key)
        cipher = crypto.FieldCipher(
            self._dek(key), customer_id=customer_id, dek_version=key.dek_version, secrets=True
        )
        ciphertext = cipher.seal(label, value.encode())
        row = session.get(VaultSecret, (customer_id, label))
        if row is None:
            row = VaultSecret(
                customer_id=customer_id,
                label=label,
                dek_version=key.dek_version,
                ciphertext=ciphertext,
                created_at=self.clock(),
            )
        else:
            row.dek_version, row.ciphertext = key.dek_version, ciphertext
        session.add(row)
        key.seal_count += 1
        session.add(key)

    def forget_secret(self, session: Session, customer_id: UUID, label: str) -> None:
        """Delete the secret `label` (nothing happens when there is none)."""
        session.exec(
            delete(VaultSecret).where(
                col(VaultSecret.customer_id) == customer_id, col(VaultSecret.label) == label
            )
        )

    def secrets(self, session: Session, customer_id: UUID, labels: Iterable[str]) -> dict[str, str]:
        """The customer's secrets with these labels, decrypted; absent labels are left out."""
        wanted = list(labels)
        if not wanted:
            return {}
        key = self._key(session, customer_id)
        cipher = crypto.FieldCipher(
            self._dek(key), customer_id=customer_id, dek_version=key.dek_version, secrets=True
        )
        query = select(VaultSecret).where(
            VaultSecret.customer_id == customer_id, col(VaultSecret.label).in_(wanted)
        )
        return {row.label: cipher.open(row.label, row.ciphertext).decode() for row in session.exec(query)}

    def rewrap(self, session: Session, key: VaultKey, kek_version: int, *, dek: bytes | None = None) -> None:
        """Re-wrap one DEK under another KEK version; field ciphertexts are untouched. (`dek`: the
        plaintext DEK when the caller has it, and its current KEK may be gone.)"""
        dek = self._dek(key) if dek is None else dek
        key.wrapped_dek = crypto.wrap_dek(
            self.keys.kek(kek_version), customer_id=key.customer_id, kek_version=kek_version, dek=dek
        )
        key.kek_version = kek_version
        session.add(key)
