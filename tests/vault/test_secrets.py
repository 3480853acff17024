"""Secrets: personal data outside the profile (redemption codes, a dispute's words), sealed like fields."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlmodel import Session, select, update

from broker.runtime import Runtime
from vault import crypto
from vault.errors import DecryptionFailed, VaultNotFound
from vault.models import VaultKey, VaultSecret


def _customer(runtime: Runtime, db: Session) -> uuid.UUID:
    customer_id = uuid.uuid4()
    runtime.vault.create(db, customer_id)
    db.commit()
    return customer_id


def test_a_secret_round_trips_and_is_stored_only_as_ciphertext(runtime: Runtime, db: Session) -> None:
    who = _customer(runtime, db)
    runtime.vault.put_secret(db, who, "delivery:1", "VOUCHER-QZ-7781")
    db.commit()
    row = db.exec(select(VaultSecret).where(VaultSecret.customer_id == who)).one()
    assert b"VOUCHER" not in row.ciphertext
    assert runtime.vault.secrets(db, who, ["delivery:1", "delivery:2"]) == {"delivery:1": "VOUCHER-QZ-7781"}


def test_a_secret_moved_to_another_label_or_customer_does_not_open(runtime: Runtime, db: Session) -> None:
    who, other = _customer(runtime, db), _customer(runtime, db)
    runtime.vault.put_secret(db, who, "delivery:1", "CODE-A")
    runtime.vault.put_secret(db, who, "delivery:2", "CODE-B")
    runtime.vault.put_secret(db, other, "delivery:1", "CODE-C")
    db.commit()
    moved = db.get(VaultSecret, (who, "delivery:1"))
    assert moved is not None
    db.exec(update(VaultSecret).where(VaultSecret.label == "delivery:2").values(ciphertext=moved.ciphertext))  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed):
        runtime.vault.secrets(db, who, ["delivery:2"])
    db.exec(update(VaultSecret).where(VaultSecret.customer_id == other).values(ciphertext=moved.ciphertext))  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed):
        runtime.vault.secrets(db, other, ["delivery:1"])


def test_a_secret_cannot_be_opened_as_a_profile_field_nor_the_reverse() -> None:
    dek, who = crypto.generate_key(), uuid.uuid4()
    field = crypto.FieldCipher(dek, customer_id=who, dek_version=1)
    secret = crypto.FieldCipher(dek, customer_id=who, dek_version=1, secrets=True)
    with pytest.raises(DecryptionFailed):
        field.open("email", secret.seal("email", b"x"))
    with pytest.raises(DecryptionFailed):
        secret.open("email", field.seal("email", b"x"))


def test_data_key_rotation_reseals_secrets_and_shredding_destroys_them(runtime: Runtime, db: Session) -> None:
    vault = dataclasses.replace(runtime.vault, max_seals=3)
    who = _customer(runtime, db)
    vault.write(db, who, {"city": "Leeds"}, replace=False)
    for n in range(4):  # past the budget of 3 seals, the DEK is replaced before sealing
        vault.put_secret(db, who, f"delivery:{n}", f"CODE-{n}")
    db.commit()
    key = db.get(VaultKey, who)
    assert key is not None and key.dek_version > 1
    assert vault.secrets(db, who, [f"delivery:{n}" for n in range(4)]) == {
        f"delivery:{n}": f"CODE-{n}" for n in range(4)
    }
    assert vault.read(db, who, ["city"]) == {"city": "Leeds"}
    vault.shred(db, who)
    db.commit()
    assert db.exec(select(VaultSecret).where(VaultSecret.customer_id == who)).all() == []
    with pytest.raises(VaultNotFound):
        vault.secrets(db, who, ["delivery:0"])
