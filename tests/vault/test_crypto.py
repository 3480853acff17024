"""Envelope encryption: round trips, and every kind of tampering fails closed."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault import crypto
from vault.errors import DecryptionFailed

keys = st.binary(min_size=32, max_size=32)
uuids = st.uuids()
field_names = st.sampled_from(["email", "phone", "birthdate", "dietary", "interests", "household_size"])
versions = st.integers(min_value=1, max_value=2**31)
plaintexts = st.binary(max_size=2048)


@given(keys, uuids, field_names, versions, plaintexts)
def test_sealed_field_opens_to_the_same_bytes(
    dek: bytes, cid: uuid.UUID, field: str, version: int, data: bytes
) -> None:
    sealed = crypto.seal_field(dek, customer_id=cid, field=field, dek_version=version, plaintext=data)
    assert len(data) < 8 or data not in sealed  # short inputs can occur in random bytes by chance
    assert (
        crypto.open_field(dek, customer_id=cid, field=field, dek_version=version, ciphertext=sealed) == data
    )


@given(keys, uuids, plaintexts, st.data())
def test_any_flipped_byte_fails_with_decryption_failed(
    dek: bytes, cid: uuid.UUID, data: bytes, draw: st.DataObject
) -> None:
    sealed = bytearray(crypto.seal_field(dek, customer_id=cid, field="email", dek_version=1, plaintext=data))
    position = draw.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
    sealed[position] ^= draw.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(DecryptionFailed):
        crypto.open_field(dek, customer_id=cid, field="email", dek_version=1, ciphertext=bytes(sealed))


@given(keys, uuids, uuids, plaintexts)
def test_ciphertext_swapped_between_customers_fails(
    dek: bytes, a: uuid.UUID, b: uuid.UUID, data: bytes
) -> None:
    if a == b:
        return
    sealed = crypto.seal_field(dek, customer_id=a, field="email", dek_version=1, plaintext=data)
    with pytest.raises(DecryptionFailed):
        crypto.open_field(dek, customer_id=b, field="email", dek_version=1, ciphertext=sealed)


@given(keys, uuids, field_names, field_names, plaintexts)
def test_ciphertext_swapped_between_fields_fails(
    dek: bytes, cid: uuid.UUID, f1: str, f2: str, data: bytes
) -> None:
    if f1 == f2:
        return
    sealed = crypto.seal_field(dek, customer_id=cid, field=f1, dek_version=1, plaintext=data)
    with pytest.raises(DecryptionFailed):
        crypto.open_field(dek, customer_id=cid, field=f2, dek_version=1, ciphertext=sealed)


@given(keys, uuids, versions, versions, plaintexts)
def test_wrong_key_version_fails(dek: bytes, cid: uuid.UUID, v1: int, v2: int, data: bytes) -> None:
    if v1 == v2:
        return
    sealed = crypto.seal_field(dek, customer_id=cid, field="phone", dek_version=v1, plaintext=data)
    with pytest.raises(DecryptionFailed):
        crypto.open_field(dek, customer_id=cid, field="phone", dek_version=v2, ciphertext=sealed)


@given(keys, keys, uuids, plaintexts)
def test_wrong_key_fails(k1: bytes, k2: bytes, cid: uuid.UUID, data: bytes) -> None:
    if k1 == k2:
        return
    sealed = crypto.seal_field(k1, customer_id=cid, field="city", dek_version=1, plaintext=data)
    with pytest.raises(DecryptionFailed):
        crypto.open_field(k2, customer_id=cid, field="city", dek_version=1, ciphertext=sealed)


@given(keys, keys, uuids, uuids, versions)
def test_wrapped_dek_is_bound_to_customer_and_kek_version(
    kek: bytes, dek: bytes, a: uuid.UUID, b: uuid.UUID, v: int
) -> None:
    wrapped = crypto.wrap_dek(kek, customer_id=a, kek_version=v, dek=dek)
    assert crypto.unwrap_dek(kek, customer_id=a, kek_version=v, wrapped=wrapped) == dek
    if a != b:
        with pytest.raises(DecryptionFailed):
            crypto.unwrap_dek(kek, customer_id=b, kek_version=v, wrapped=wrapped)
    with pytest.raises(DecryptionFailed):
        crypto.unwrap_dek(kek, customer_id=a, kek_version=v + 1, wrapped=wrapped)


@pytest.mark.parametrize("blob", [b"", b"\x01", b"\x02" + b"\x00" * 40, b"\x01" + b"\x00" * 27])
def test_truncated_or_unknown_format_fails(blob: bytes) -> None:
    with pytest.raises(DecryptionFailed):
        crypto.open_field(b"k" * 32, customer_id=uuid.uuid4(), field="email", dek_version=1, ciphertext=blob)


def test_same_plaintext_seals_differently_each_time() -> None:
    dek, cid = crypto.generate_key(), uuid.uuid4()
    a = crypto.seal_field(dek, customer_id=cid, field="email", dek_version=1, plaintext=b"same")
    b = crypto.seal_field(dek, customer_id=cid, field="email", dek_version=1, plaintext=b"same")
    assert a != b
