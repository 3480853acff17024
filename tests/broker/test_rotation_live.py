"""KEK rotation while a real server answers reads: not one read may fail; every rotation is logged."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select
from support import STRONG_PASSWORD, cli_env, live_server

from broker.audit.entries import decode
from broker.audit.models import AuditEntry
from broker.db import create_db_engine

CUSTOMERS = 12
READERS = 3


@pytest.mark.slow
def test_key_rotation_under_load_fails_no_read(tmp_path: Path, fresh_database_url: str) -> None:
    data_dir = tmp_path / "var"
    with live_server(data_dir, fresh_database_url, tmp_path / "server.log") as base:
        tokens = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(CUSTOMERS):
                email = f"reader{i}@example.org"
                assert (
                    http.post("/v1/customers", json={"email": email, "password": STRONG_PASSWORD}).status_code
                    == 201
                )
                token = http.post("/v1/sessions", json={"email": email, "password": STRONG_PASSWORD}).json()[
                    "token"
                ]
                headers = {"Authorization": f"Bearer {token}"}
                assert (
                    http.patch("/v1/me/profile", json={"city": f"City{i}"}, headers=headers).status_code
                    == 200
                )
                tokens.append((i, token))

        stop = threading.Event()
        outcomes: list[tuple[int, bool]] = []
        lock = threading.Lock()

        def read_until_stopped(offset: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                for i, token in itertools.islice(itertools.cycle(tokens), offset, None):
                    if stop.is_set():
                        return
                    response = http.get("/v1/me/profile", headers={"Authorization": f"Bearer {token}"})
                    ok = response.status_code == 200 and response.json()["fields"]["city"] == f"City{i}"
                    with lock:
                        outcomes.append((response.status_code, ok))

        readers = [threading.Thread(target=read_until_stopped, args=(n,)) for n in range(READERS)]
        for thread in readers:
            thread.start()
        consentry = str(Path(sys.executable).parent / "consentry")
        try:
            for _ in range(2):
                subprocess.run(
                    [consentry, "keys", "rotate", "--batch-size", "3", "--grace", "0.5"],
                    env=cli_env(data_dir, fresh_database_url), check=True, capture_output=True, timeout=120,
                )  # fmt: skip
        finally:
            stop.set()
            for thread in readers:
                thread.join(timeout=30)

    assert sorted(p.name for p in (data_dir / "keys").glob("kek-*.key")) == ["kek-3.key"]
    failures = [status for status, ok in outcomes if not ok]
    assert len(outcomes) > 20, "the readers barely ran; the test proved nothing"
    assert failures == [], f"{len(failures)} of {len(outcomes)} reads failed during rotation"
    assert rotations(fresh_database_url) == [("kek", "2"), ("kek", "3")]


def rotations(database_url: str) -> list[tuple[str, str]]:
    """The key rotations in the audit log, in order."""
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            query = (
                select(AuditEntry.entry)
                .where(AuditEntry.kind == "key.rotated")
                .order_by(col(AuditEntry.index))
            )
            entries = [decode(entry) for entry in session.exec(query)]
    finally:
        engine.dispose()
    assert {e["actor"] for e in entries} <= {"operator"}
    return [(e["key"], e["version"]) for e in entries]


def test_signing_key_rotation_is_logged(tmp_path: Path, fresh_database_url: str) -> None:
    consentry = str(Path(sys.executable).parent / "consentry")
    env = cli_env(tmp_path / "var", fresh_database_url)
    done = subprocess.run(
        [consentry, "keys", "rotate-signing"], env=env, check=True, capture_output=True, timeout=60
    )
    kid = json.loads(done.stdout)["kid"]
    assert rotations(fresh_database_url) == [("token-signing", kid)]
