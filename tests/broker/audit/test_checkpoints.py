"""The log's note key (one key, made once, named after the log's origin for good), the signer's
refusals, and the background signing of checkpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func
from sqlmodel import Session, select
from support.core import FakeClock, make_settings

from broker.app import create_app
from broker.audit import tree
from broker.audit.checkpoints import KEY_FILE, Checkpoints, load_signer, log_origin
from broker.audit.models import AuditCheckpoint
from broker.db import SessionFactory, create_db_engine, session_factory
from broker.runtime import Runtime, build_runtime
from clients.auditor.tlog import generate_private_key, open_note, parse_checkpoint, parse_private_key

AT = FakeClock().now


def count_checkpoints(sessions: SessionFactory) -> int:
    with sessions() as session:
        return session.exec(select(func.count()).select_from(AuditCheckpoint)).one()


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000/audit"),
        ("https://Consent.Example/", "consent.example/audit"),
        ("https://ops:secret@consent.example:8443/broker/", "consent.example:8443/audit"),
    ],
)
def test_the_origin_is_the_host_and_port_of_the_base_url(base_url: str, origin: str) -> None:
    assert log_origin(base_url) == origin


def test_the_key_file_is_made_once_private_and_named_after_the_origin(tmp_path: Path) -> None:
    first = load_signer(private_key=None, key_dir=tmp_path / "keys", origin="consent.example/audit")
    path = tmp_path / "keys" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert path.read_text().startswith("PRIVATE+KEY+consent.example/audit+")
    again = load_signer(private_key=None, key_dir=tmp_path / "keys", origin="moved.example/audit")
    assert again.verifier_key() == first.verifier_key() and again.name == "consent.example/audit"


def test_the_origin_survives_a_change_of_base_url(tmp_path: Path, engine: Engine, database_url: str) -> None:
    before = build_runtime(make_settings(tmp_path, database_url, base_url="https://a.example"), engine=engine)
    after = build_runtime(make_settings(tmp_path, database_url, base_url="https://b.example"), engine=engine)
    assert before.checkpoints.origin == after.checkpoints.origin == "a.example/audit"
    assert before.checkpoints.verifier_key() == after.checkpoints.verifier_key()


def test_processes_racing_to_make_the_key_end_up_with_the_same_one(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    keys: list[str] = []

    def load(worker: int) -> None:
        barrier.wait()
        keys.append(
            load_signer(private_key=None, key_dir=tmp_path, origin=f"w{worker}.example/audit").verifier_key()
        )

    threads = [threading.Thread(target=load, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no half-written or staging file left


def test_a_key_in_the_environment_wins_and_no_file_is_made(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    key = generate_private_key("consent.example/audit")
    settings = make_settings(tmp_path, database_url, audit_signing_key=key)
    checkpoints = build_runtime(settings, engine=engine).checkpoints
    assert checkpoints.origin == "consent.example/audit"
    assert checkpoints.verifier_key() == parse_private_key(key).verifier_key()
    assert not (tmp_path / "keys" / KEY_FILE).exists()


def test_a_malformed_key_is_refused_without_repeating_it(tmp_path: Path) -> None:
    secret = generate_private_key("consent.example/audit")
    broken = secret[:-8] + "AAAAAAA="
    with pytest.raises(
        ValueError, match="CONSENTRY_AUDIT_SIGNING_KEY is not a signed-note private key"
    ) as raised:
        load_signer(private_key=broken, key_dir=tmp_path, origin="consent.example/audit")
    assert broken.rsplit("+", 1)[1] not in str(raised.value)


def test_a_checkpoint_is_a_c2sp_checkpoint_signed_as_the_origin(db: Session, runtime: Runtime) -> None:
    tree.append_many(db, [b"a", b"b", b"c"], at=AT)
    signed = runtime.checkpoints.current(db)
    text = open_note(signed.note, [runtime.checkpoints.verifier])
    assert text.splitlines()[:2] == ["127.0.0.1:8000/audit", "3"]
    assert parse_checkpoint(text).root_hash == signed.root_hash == tree.root(db, 3)
    assert signed.note.endswith("\n") and signed.created_at == AT
    assert runtime.checkpoints.latest(db) == signed and runtime.checkpoints.get(db, 3) == signed


def _signer(fresh_database_url: str) -> tuple[Checkpoints, SessionFactory, Engine]:
    engine = create_db_engine(fresh_database_url)
    checkpoints = Checkpoints(
        signer=parse_private_key(generate_private_key("t.example/audit")), clock=FakeClock()
    )
    return checkpoints, session_factory(engine), engine


def test_background_signing_survives_a_failure_and_stops_when_cancelled(
    fresh_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints, sessions, engine = _signer(fresh_database_url)
    attempts = 0

    def flaky_sessions() -> Session:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("database restarting")
        return sessions()

    async def scenario() -> None:
        task = asyncio.create_task(checkpoints.sign_periodically(flaky_sessions, 0.01))
        deadline = time.monotonic() + 10
        while count_checkpoints(sessions) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()

    try:
        with caplog.at_level(logging.ERROR, logger="consentry.audit"):
            asyncio.run(scenario())
        assert count_checkpoints(sessions) == 1 and attempts >= 2
        assert "signing an audit checkpoint failed" in caplog.text
    finally:
        engine.dispose()


def test_the_server_signs_in_the_background_while_it_runs(tmp_path: Path, fresh_database_url: str) -> None:
    settings = make_settings(tmp_path, fresh_database_url, audit_checkpoint_interval_seconds=3600)
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime=runtime)):
            deadline = time.monotonic() + 10
            while count_checkpoints(runtime.sessions) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert count_checkpoints(runtime.sessions) == 1  # signed at start-up, then hourly
    finally:
        runtime.dispose()


def test_no_background_signing_when_the_interval_is_zero(client: TestClient, runtime: Runtime) -> None:
    assert runtime.settings.audit_checkpoint_interval_seconds == 0
    assert count_checkpoints(runtime.sessions) == 0


def test_an_unchanged_log_is_answered_without_taking_the_append_lock(db: Session, runtime: Runtime) -> None:
    tree.append_many(db, [b"a", b"b"], at=AT)
    signed = runtime.checkpoints.current(db)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(db.get_bind(), "before_cursor_execute", record)
    try:
        assert runtime.checkpoints.current(db) == signed
    finally:
        event.remove(db.get_bind(), "before_cursor_execute", record)
    assert len(statements) == 2, statements  # the size and the latest checkpoint: no lock, no write
    assert not any("FOR UPDATE" in s or "INSERT" in s for s in statements)
