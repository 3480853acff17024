"""What a server writes is its owner's alone: the data directory and the key directories are 0700,
the SQLite database with its WAL and SHM and every key file 0600, whatever the umask. The database
holds password hashes and wrapped keys: no other local user may read it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.core import make_settings, sign_up

from broker.app import create_app
from broker.db import create_db_engine, migrate
from broker.runtime import build_runtime


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_a_fresh_sqlite_server_creates_its_files_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "var"
    url = f"sqlite:///{data / 'consentry.db'}"
    migrate(url)
    runtime = build_runtime(make_settings(data, url))
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            sign_up(client, "ada@example.org")  # a write: the WAL and SHM exist now
            database = data / "consentry.db"
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                assert path.exists() and mode(path) == 0o600, path
    finally:
        runtime.dispose()
    directories = [data, *(p for p in data.rglob("*") if p.is_dir())]
    assert data / "keys" in directories
    assert {str(p): mode(p) for p in directories} == {str(p): 0o700 for p in directories}
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {str(p): mode(p) for p in files} == {str(p): 0o600 for p in files}


@pytest.mark.usefixtures("permissive_umask")
def test_an_existing_world_readable_database_is_made_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "old.db"
    url = f"sqlite:///{database}"
    migrate(url)
    database.chmod(0o644)
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    finally:
        engine.dispose()
    assert mode(database) == 0o600
