"""KEK rotation against writers in flight: a data key wrapped under the old KEK by a transaction that
commits during the rotation must not be stranded under a KEK the rotation then deletes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support.core import PG_URL, make_settings

from broker.runtime import build_runtime
from vault.keys import KeyProvider
from vault.rotation import RotationReport, kek_usage, rotate_keks


@pytest.mark.skipif(
    PG_URL is None,
    reason="SQLite serialises writers (BEGIN IMMEDIATE): the rotation cannot overlap a sign-up there",
)
def test_a_sign_up_committing_during_rotation_is_rewrapped_not_stranded(
    tmp_path: Path, fresh_database_url: str
) -> None:
    runtime = build_runtime(make_settings(tmp_path / "var", fresh_database_url))
    customer = uuid.uuid4()
    try:
        sign_up = runtime.sessions()
        runtime.vault.create(sign_up, customer)  # wrapped under KEK 1, flushed, not yet committed
        checking, reports = threading.Event(), list[RotationReport]()

        def rotate() -> None:
            reports.append(rotate_keks(runtime.sessions, runtime.vault, retire_grace=checking.set))

        rotation = threading.Thread(target=rotate)
        rotation.start()
        assert checking.wait(timeout=10)
        time.sleep(0.3)  # the rotation is now deciding which KEKs are still in use
        sign_up.commit()
        sign_up.close()
        rotation.join(timeout=10)
        assert not rotation.is_alive()

        assert reports[0].retired == [1]
        with runtime.sessions() as session:
            assert kek_usage(session) == {2: 1}
            assert runtime.vault.read_stored(session, customer) == {}  # its data key opens
    finally:
        runtime.dispose()


class _Stalling:
    """A KEK provider whose first `kek` call runs `stall`: after reading the key (a sign-up that holds
    a key wrapped under a version the stall retires), or before (a reader that read a wrapped key
    just before the stall re-wrapped it and retired its KEK)."""

    def __init__(self, inner: KeyProvider, stall: Callable[[], None], *, before: bool = False) -> None:
        self.inner, self.stall, self.before, self.stalled = inner, stall, before, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def kek(self, version: int) -> bytes:
        if self.stalled:
            return self.inner.kek(version)
        self.stalled = True
        if self.before:
            self.stall()
            return self.inner.kek(version)
        key = self.inner.kek(version)
        self.stall()
        return key


def test_a_sign_up_stalled_across_a_whole_rotation_rewraps_under_the_new_kek(
    tmp_path: Path, fresh_database_url: str
) -> None:
    runtime = build_runtime(make_settings(tmp_path / "var", fresh_database_url))
    customer = uuid.uuid4()
    reports: list[RotationReport] = []

    def rotation() -> None:  # start to end, KEK 1 retired, while the sign-up holds a key wrapped under it
        reports.append(rotate_keks(runtime.sessions, runtime.vault))

    stalling = replace(runtime.vault, keys=_Stalling(runtime.vault.keys, rotation))
    try:
        with runtime.sessions() as sign_up:
            stalling.create(sign_up, customer)
            sign_up.commit()
        assert reports[0].retired == [1]
        with runtime.sessions() as session:
            assert kek_usage(session) == {2: 1}, "the new key is not stranded under the retired KEK"
            assert runtime.vault.read_stored(session, customer) == {}  # its data key opens
    finally:
        runtime.dispose()


def test_old_keks_are_retired_while_writers_are_held_off(tmp_path: Path, fresh_database_url: str) -> None:
    runtime = build_runtime(make_settings(tmp_path / "var", fresh_database_url))
    signed_up: list[uuid.UUID] = []
    blocked: list[bool] = []

    def sign_up() -> None:
        customer = uuid.uuid4()
        with runtime.sessions() as session:
            runtime.vault.create(session, customer)
            session.commit()
        signed_up.append(customer)

    class Retiring:
        def __getattr__(self, name: str) -> Any:
            return getattr(runtime.vault.keys, name)

        def retire(self, version: int) -> bool:
            writer = threading.Thread(target=sign_up)
            writer.start()
            writer.join(timeout=0.5)
            blocked.append(writer.is_alive())  # a sign-up may not write while old KEKs are being retired
            retired = runtime.vault.keys.retire(version)
            self.writer = writer
            return retired

    retiring = Retiring()
    try:
        report = rotate_keks(runtime.sessions, replace(runtime.vault, keys=retiring))  # type: ignore[arg-type]
        retiring.writer.join(timeout=30)
        assert report.retired == [1] and blocked == [True] and len(signed_up) == 1
        with runtime.sessions() as session:
            assert kek_usage(session) == {2: 1}
            assert runtime.vault.read_stored(session, signed_up[0]) == {}
    finally:
        runtime.dispose()


@pytest.mark.skipif(
    PG_URL is None,
    reason="SQLite: the reading transaction holds the write lock, so no rotation can retire a KEK under it",
)
def test_a_read_whose_kek_is_retired_under_it_reads_the_new_wrapping(
    tmp_path: Path, fresh_database_url: str
) -> None:
    runtime = build_runtime(make_settings(tmp_path / "var", fresh_database_url))
    customer = uuid.uuid4()
    try:
        with runtime.sessions() as session:
            runtime.vault.create(session, customer)
            runtime.vault.write(session, customer, {"email": "ada@example.org"}, replace=True)
            session.commit()

        def rotation() -> None:
            rotate_keks(runtime.sessions, runtime.vault)

        reader = replace(runtime.vault, keys=_Stalling(runtime.vault.keys, rotation, before=True))
        with runtime.sessions() as session:
            assert reader.read_stored(session, customer) == {"email": "ada@example.org"}
            assert kek_usage(session) == {2: 1}
    finally:
        runtime.dispose()
