"""The vault's tables: one wrapped data key per customer, one ciphertext per profile field or secret."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, ForeignKey, LargeBinary
from sqlmodel import Field, SQLModel

from vault.sqltypes import UTCDateTime


class VaultKey(SQLModel, table=True):
    """A customer's data-encryption key, wrapped under a KEK version. Deleting it shreds the profile."""

    __tablename__ = "vault_key"

    customer_id: UUID = Field(primary_key=True)
    kek_version: int = Field(index=True)
    wrapped_dek: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    dek_version: int = 1
    seal_count: int = 0
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    rotated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Self-custody (`vault.held`): the version of the data key the customer's browser holds, which
    # seals their profile in `vault_held_field`; null while the broker holds the profile's key.
    held_dek_version: int | None = Field(default=None, nullable=True)


class VaultField(SQLModel, table=True):
    """One encrypted profile value. The field name is metadata; the value exists only as ciphertext."""

    __tablename__ = "vault_field"

    customer_id: UUID = Field(
        sa_column=Column(
            "customer_id",
            ForeignKey("vault_key.customer_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    name: str = Field(primary_key=True, max_length=40)
    dek_version: int
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class VaultSecret(SQLModel, table=True):
    """Personal data outside the profile (a voucher code, a dispute's words), sealed under the same DEK.

    The label names what it belongs to (`delivery:<id>`); the value exists only as ciphertext.
    """

    __tablename__ = "vault_secret"

    customer_id: UUID = Field(
        sa_column=Column(
            "customer_id",
            ForeignKey("vault_key.customer_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    label: str = Field(primary_key=True, max_length=80)
    dek_version: int
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class HeldField(SQLModel, table=True):
    """One profile value sealed in the customer's browser under a data key only they hold (`vault.held`).

    The broker keeps the ciphertext and cannot open it: the key never reaches the server."""

    __tablename__ = "vault_held_field"

    customer_id: UUID = Field(
        sa_column=Column(
            "customer_id",
            ForeignKey("vault_key.customer_id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    name: str = Field(primary_key=True, max_length=40)
    dek_version: int
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class HeldUnlock(SQLModel, table=True):
    """The customer's held data key, wrapped in their browser under a key derived from one passkey's
    PRF output or from their recovery key (`vault.held`). Any one unlock opens the vault."""

    __tablename__ = "vault_held_unlock"

    id: UUID = Field(primary_key=True)
    customer_id: UUID = Field(
        sa_column=Column(
            "customer_id",
            ForeignKey("vault_key.customer_id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    kind: str = Field(max_length=16)  # "passkey" or "recovery"
    # The passkey whose PRF output unwraps it (the account's passkey id, which the vault only keeps);
    # null for the recovery key.
    passkey_id: UUID | None = Field(default=None, nullable=True)
    salt: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_dek: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
