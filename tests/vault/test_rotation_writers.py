"""KEK rotation against writers in flight: a data key wrapped under the old KEK by a transaction that
commits during the rotation must not be stranded under a KEK the rotation then deletes."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from support import PG_URL, make_settings

from broker.runtime import build_runtime
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
        runtime.engine.dispose()
