"""Profiles over the database: envelope layout, data-key rotation, shredding, KEK rotation."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from broker.runtime import Runtime
from vault.errors import KeyUnavailable, ProfileInvalid, VaultNotFound
from vault.fields import CHANNELS, DIETARY, INTEREST_TAGS, LIFE_STAGES, MAX_INTERESTS, validate_values
from vault.keys import EnvKeyProvider
from vault.models import VaultField, VaultKey
from vault.profile import Vault
from vault.rotation import kek_usage, rotate_keks


def _customer(vault: Vault, db: Session, city: str = "Leeds") -> uuid.UUID:
    customer_id = uuid.uuid4()
    vault.create(db, customer_id)
    vault.write(db, customer_id, {"email": f"{customer_id.hex[:8]}@example.org", "city": city}, replace=False)
    db.commit()
    return customer_id


def test_each_value_is_its_own_ciphertext_bound_to_the_current_data_key(
    runtime: Runtime, db: Session
) -> None:
    customer_id = _customer(runtime.vault, db)
    rows = db.exec(select(VaultField).where(VaultField.customer_id == customer_id)).all()
    assert {r.name for r in rows} == {"email", "city"}
    assert all(r.dek_version == 1 and b"Leeds" not in r.ciphertext for r in rows)
    assert runtime.vault.read(db, customer_id, ["city", "region"]) == {"city": "Leeds"}


def test_a_write_that_fails_validation_leaves_no_trace(runtime: Runtime, db: Session) -> None:
    customer_id = _customer(runtime.vault, db)
    with pytest.raises(ProfileInvalid):
        runtime.vault.write(db, customer_id, {"city": "York", "household_size": -1}, replace=False)
    assert runtime.vault.read_stored(db, customer_id)["city"] == "Leeds"


def test_data_key_is_rotated_before_it_seals_too_many_values(runtime: Runtime, db: Session) -> None:
    vault = dataclasses.replace(runtime.vault, max_seals=5)
    customer_id = _customer(vault, db)  # 2 seals
    before = {
        r.name: r.ciphertext for r in db.exec(select(VaultField).where(VaultField.customer_id == customer_id))
    }
    vault.write(db, customer_id, {"given_name": "Ada", "family_name": "Byron"}, replace=False)  # 4 seals
    assert db.get(VaultKey, customer_id).dek_version == 1  # type: ignore[union-attr]
    vault.write(db, customer_id, {"phone": "+447400123456", "country": "GB"}, replace=False)  # would be 6
    key = db.get(VaultKey, customer_id)
    assert key is not None and key.dek_version == 2 and key.seal_count == 6
    rows = db.exec(select(VaultField).where(VaultField.customer_id == customer_id)).all()
    assert all(r.dek_version == 2 for r in rows)
    assert all(before[r.name] != r.ciphertext for r in rows if r.name in before)
    assert vault.read_stored(db, customer_id)["family_name"] == "Byron"


def test_shredded_vault_cannot_be_read(runtime: Runtime, db: Session) -> None:
    customer_id = _customer(runtime.vault, db)
    runtime.vault.shred(db, customer_id)
    with pytest.raises(VaultNotFound):
        runtime.vault.read(db, customer_id)


def test_rotation_rewraps_every_data_key_and_retires_the_old_kek(runtime: Runtime, db: Session) -> None:
    customers = [_customer(runtime.vault, db, city=f"Town{i}") for i in range(5)]
    fields_before = {(r.customer_id, r.name): r.ciphertext for r in db.exec(select(VaultField))}
    report = rotate_keks(runtime.sessions, runtime.vault, batch_size=2)
    assert (report.target_version, report.rewrapped, report.retired, report.resumed) == (2, 5, [1], False)
    db.expire_all()
    assert kek_usage(db) == {2: 5}
    assert runtime.keys.versions() == [2]
    assert {(r.customer_id, r.name): r.ciphertext for r in db.exec(select(VaultField))} == fields_before
    assert [runtime.vault.read_stored(db, c)["city"] for c in customers] == [f"Town{i}" for i in range(5)]


def test_an_interrupted_rotation_resumes_without_a_new_version(runtime: Runtime, db: Session) -> None:
    customers = [_customer(runtime.vault, db) for _ in range(5)]

    def crash(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotate_keks(runtime.sessions, runtime.vault, batch_size=2, on_progress=crash)
    db.expire_all()
    assert kek_usage(db) == {1: 3, 2: 2}
    assert runtime.keys.versions() == [1, 2]  # nothing retired while keys still need it
    report = rotate_keks(runtime.sessions, runtime.vault, batch_size=2)
    assert (report.resumed, report.target_version, report.rewrapped, report.retired) == (True, 2, 3, [1])
    db.expire_all()
    assert all(runtime.vault.read_stored(db, c)["city"] == "Leeds" for c in customers)


def test_env_keys_are_not_deleted_but_reported(runtime: Runtime, db: Session) -> None:
    file_keys = runtime.keys
    customer_id = _customer(runtime.vault, db)
    v1 = base64.b64encode(file_keys.kek(1)).decode()
    v2 = base64.b64encode(b"\x02" * 32).decode()
    blind = base64.b64encode(file_keys.blind_index_key()).decode()
    env_vault = dataclasses.replace(runtime.vault, keys=EnvKeyProvider(f"1:{v1},2:{v2}", blind))
    report = rotate_keks(runtime.sessions, env_vault)
    assert (report.resumed, report.target_version, report.retired, report.kept) == (True, 2, [], [1])
    db.expire_all()
    assert env_vault.read_stored(db, customer_id)["city"] == "Leeds"
    with pytest.raises(KeyUnavailable):
        EnvKeyProvider(f"2:{v2}", blind).kek(1)


_NAMES = st.text(
    alphabet=st.characters(categories=("L", "M", "N", "P", "Zs"), exclude_characters="\u2028\u2029"),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() != "")
PROFILE_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "phone": st.sampled_from(["+447400123456", "+33612345678", "+14155552671", "+491701234567"]),
        "given_name": _NAMES,
        "family_name": _NAMES,
        "birthdate": st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 1, 1)).map(date.isoformat),
        "postcode": st.from_regex(r"[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", fullmatch=True),
        "city": _NAMES,
        "country": st.sampled_from(["GB", "FR", "DE", "US", "NZ", "JP"]),
        "household_size": st.integers(min_value=1, max_value=20),
        "life_stage": st.sampled_from(LIFE_STAGES),
        "dietary": st.lists(st.sampled_from(DIETARY), unique=True),
        "interests": st.lists(st.sampled_from(INTEREST_TAGS), unique=True, max_size=MAX_INTERESTS),
        "preferred_channels": st.lists(st.sampled_from(CHANNELS), unique=True),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=PROFILE_VALUES)
def test_every_field_type_round_trips_through_the_vault(
    runtime: Runtime, db: Session, values: dict[str, object]
) -> None:
    customer_id = uuid.uuid4()
    runtime.vault.create(db, customer_id)
    stored = runtime.vault.write(db, customer_id, {"email": "round@example.org", **values}, replace=True)
    assert stored == validate_values({"email": "round@example.org", **values})
    assert runtime.vault.read_stored(db, customer_id) == stored
    db.rollback()


def test_rows_fetched_by_the_callers_own_query_open_as_the_vaults_own_do(
    runtime: Runtime, db: Session
) -> None:
    from vault.profile import _KEY_AND_FIELDS

    customer_id = _customer(runtime.vault, db)
    rows = _KEY_AND_FIELDS.all(db.connection(), {"customer_id": customer_id})
    assert len(rows) == 2
    for names in (None, ["city"], ["email", "region"]):
        assert runtime.vault.read(db, customer_id, names, fetched=rows) == runtime.vault.read(
            db, customer_id, names
        )
    no_vault = [row._replace(kek_version=None, wrapped_dek=None, dek_version=None) for row in rows[:1]]
    with pytest.raises(VaultNotFound):  # the key row's outer join found nothing
        runtime.vault.read(db, customer_id, ["city"], fetched=no_vault)
