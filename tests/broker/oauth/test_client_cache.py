"""The token endpoint's brand cache (`broker.oauth.client_cache`): served only while no brand may have
changed, in this process or in another one, on both databases."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text, update
from sqlalchemy.engine import make_url
from sqlmodel import col

import broker.api.oauth as oauth_api
import broker.oauth.server as oauth_server
from broker.accounts.models import Brand
from broker.digests import secret_digest
from broker.oauth.client_cache import ClientCache
from broker.oauth.clients import ClientRecord, find_brand, new_client_secret, register_brand
from broker.runtime import Runtime
from broker.signals import BRANDS, Signals, signals_for
from tests.support.core import PG_URL
from tests.support.serving import listening, served_alone, wait_for

REDIRECT = "https://brand.example/cb"
FORM = {"grant_type": "client_credentials", "scope": "offers:read"}


def _record(name: str = "Brand") -> ClientRecord:
    return ClientRecord(uuid.uuid4(), "brd_x", name, False, b"\0" * 32, (REDIRECT,), ())


class _Reads:
    """A `read` for `ClientCache.find` that counts its calls and answers `record`."""

    def __init__(self, record: ClientRecord | None, during: Callable[[], None] = lambda: None) -> None:
        self.record, self.during, self.calls = record, during, 0

    def __call__(self) -> ClientRecord | None:
        self.calls += 1
        self.during()
        return self.record


@pytest.fixture
def sqlite_signals(tmp_path: Path) -> Signals:
    return Signals(make_url(f"sqlite:///{tmp_path / 'cache.sqlite'}"), BRANDS)


def test_a_brand_is_read_once_while_nothing_changes(sqlite_signals: Signals) -> None:
    cache, reads = ClientCache(sqlite_signals), _Reads(_record())
    assert cache.find("brd_x", reads) is cache.find("brd_x", reads) is reads.record
    assert reads.calls == 1


def test_any_change_to_a_brand_makes_every_entry_stale(sqlite_signals: Signals) -> None:
    cache, reads = ClientCache(sqlite_signals), _Reads(_record())
    cache.find("brd_x", reads)
    sqlite_signals.bump()
    cache.find("brd_x", reads)
    assert reads.calls == 2


def test_a_change_committed_while_the_row_is_read_is_not_served_later(sqlite_signals: Signals) -> None:
    """The stamp is taken before the read: a row read as a change commits may be the old one."""
    cache, reads = ClientCache(sqlite_signals), _Reads(_record(), during=sqlite_signals.bump)
    cache.find("brd_x", reads)
    cache.find("brd_x", reads)
    assert reads.calls == 2


def test_another_process_s_change_is_seen_through_the_file_beside_the_database(tmp_path: Path) -> None:
    url = make_url(f"sqlite:///{tmp_path / 'shared.sqlite'}")
    mine, theirs = Signals(url, BRANDS), Signals(url, BRANDS)  # two processes' views of one database
    cache, reads = ClientCache(mine), _Reads(_record())
    cache.find("brd_x", reads)
    theirs.bump()
    cache.find("brd_x", reads)
    assert reads.calls == 2
    assert (tmp_path / "shared.sqlite-brands").stat().st_mode & 0o777 == 0o600


def test_entries_live_at_most_the_ttl(sqlite_signals: Signals) -> None:
    now = [0.0]
    cache, reads = ClientCache(sqlite_signals, ttl=60, clock=lambda: now[0]), _Reads(_record())
    cache.find("brd_x", reads)
    now[0] = 59.9
    cache.find("brd_x", reads)
    assert reads.calls == 1
    now[0] = 60.0
    cache.find("brd_x", reads)
    assert reads.calls == 2


def test_an_unknown_client_id_is_never_cached(sqlite_signals: Signals) -> None:
    cache, reads = ClientCache(sqlite_signals), _Reads(None)
    assert cache.find("brd_x", reads) is None and cache.find("brd_x", reads) is None
    assert reads.calls == 2


def test_the_cache_is_bounded(sqlite_signals: Signals) -> None:
    cache = ClientCache(sqlite_signals, size=2)
    for client_id in ("a", "b", "c"):
        cache.find(client_id, _Reads(_record()))
    reads = _Reads(_record())
    cache.find("a", reads)
    assert reads.calls == 1  # forgotten when "c" came in


def test_on_postgresql_nothing_is_cached_unless_this_process_listens() -> None:
    signals = Signals(make_url("postgresql+psycopg://nobody@127.0.0.1:1/none"), BRANDS)
    cache, reads = ClientCache(signals), _Reads(_record())
    cache.find("brd_x", reads)
    cache.find("brd_x", reads)
    assert signals.stamp() is None and reads.calls == 2


def test_a_token_reads_its_brand_once_while_nothing_changes(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    listening(runtime)
    with runtime.sessions() as db:
        registered = register_brand(db, name="Cached", redirect_uris=[REDIRECT], public=False,
                                    clock=runtime.clock)  # fmt: skip
        db.commit()
    auth = (registered.brand.client_id, registered.client_secret or "")
    looked_up = []
    find_client = oauth_server.find_client
    monkeypatch.setattr(oauth_server, "find_client", lambda *a: looked_up.append(a) or find_client(*a))
    for _ in range(3):
        assert client.post("/oauth/token", data=FORM, auth=auth).status_code == 200
    assert len(looked_up) == 1
    wrong = client.post("/oauth/token", data=FORM, auth=(auth[0], "cs_wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_a_secret_replaced_in_this_process_stops_working_at_once(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    listening(runtime)
    client_id, old = _registered(runtime)
    looked_up = []
    find_client = oauth_server.find_client
    monkeypatch.setattr(oauth_server, "find_client", lambda *a: looked_up.append(a) or find_client(*a))
    assert not _refused(client, client_id, old) and not _refused(client, client_id, old)
    assert len(looked_up) == 1  # the second one was served from the cache
    with runtime.sessions() as db:
        brand = find_brand(db, client_id)
        assert brand is not None
        new = new_client_secret(db, brand)
        db.commit()
    assert _refused(client, client_id, old)
    assert not _refused(client, client_id, new)


def test_a_token_whose_brand_is_cached_is_answered_on_the_loop(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request thread for it (on PostgreSQL they are 2): only a lookup goes there, and a token
    whose brand is not cached stops at its lookup and runs again in one, answered the same."""
    listening(runtime)
    client_id, secret = _registered(runtime)
    threaded = []
    run_sync = oauth_api.run_sync

    async def counted(*args: Any) -> Any:
        threaded.append(args)
        return await run_sync(*args)

    monkeypatch.setattr(oauth_api, "run_sync", counted)
    first = client.post("/oauth/token", data=FORM, auth=(client_id, secret))
    assert first.status_code == 200 and len(threaded) == 1
    for _ in range(3):
        assert client.post("/oauth/token", data=FORM, auth=(client_id, secret)).status_code == 200
    assert len(threaded) == 1
    wrong = client.post("/oauth/token", data=FORM, auth=(client_id, "cs_wrong"))
    assert wrong.status_code == 401 and len(threaded) == 1  # refused from the cache too
    unknown = client.post("/oauth/token", data=FORM, auth=("brd_unknown", secret))
    assert unknown.status_code == 401 and len(threaded) == 2  # looked up: never cached


def test_an_orm_update_of_the_brand_table_counts_as_a_change(client: TestClient, runtime: Runtime) -> None:
    listening(runtime)
    client_id, old = _registered(runtime)
    assert not _refused(client, client_id, old)  # cached
    with runtime.sessions() as db:
        db.execute(
            update(Brand).where(col(Brand.client_id) == client_id).values(secret_hash=secret_digest("cs_new"))
        )
        db.commit()
    assert _refused(client, client_id, old)
    assert not _refused(client, client_id, "cs_new")


@pytest.fixture
def served(tmp_path: Path, fresh_database_url: str) -> Iterator[tuple[TestClient, Runtime, dict[str, str]]]:
    """The app on a database of its own that other processes change too, and their environment."""
    with served_alone(tmp_path / "var", fresh_database_url) as found:
        yield found


_ROTATE = """
import sys
from broker.oauth.clients import find_brand, new_client_secret
from broker.runtime import build_runtime
from broker.settings import Settings

runtime = build_runtime(Settings())
with runtime.sessions() as db:
    brand = find_brand(db, sys.argv[1])
    print(new_client_secret(db, brand))
    db.commit()
runtime.dispose()
"""


def _rotate_elsewhere(env: dict[str, str], client_id: str) -> str:
    """Replace the brand's secret from another process (as `consentry` would); its new secret."""
    done = subprocess.run([sys.executable, "-c", _ROTATE, client_id], env=env, capture_output=True,
                          text=True, check=True, timeout=120)  # fmt: skip
    return done.stdout.strip()


def _registered(runtime: Runtime) -> tuple[str, str]:
    with runtime.sessions() as db:
        registered = register_brand(db, name="Elsewhere", redirect_uris=[REDIRECT], public=False,
                                    clock=runtime.clock)  # fmt: skip
        db.commit()
    return registered.brand.client_id, registered.client_secret or ""


def _refused(client: TestClient, client_id: str, secret: str) -> bool:
    answer = client.post("/oauth/token", data=FORM, auth=(client_id, secret))
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 401


def test_a_secret_replaced_by_another_process_stops_working(
    served: tuple[TestClient, Runtime, dict[str, str]],
) -> None:
    """SQLite: at once (the file beside the database); PostgreSQL: once the notification arrives."""
    client, runtime, env = served
    client_id, old = _registered(runtime)
    assert not _refused(client, client_id, old)  # cached now
    new = _rotate_elsewhere(env, client_id)
    if PG_URL is None:
        assert _refused(client, client_id, old)
    else:
        wait_for(lambda: _refused(client, client_id, old), "the old secret refused")
    assert not _refused(client, client_id, new)


@pytest.mark.skipif(PG_URL is None, reason="LISTEN/NOTIFY: PostgreSQL")
def test_a_change_missed_while_not_listening_is_not_served(
    served: tuple[TestClient, Runtime, dict[str, str]], fresh_database_url: str
) -> None:
    """The listener's connection is cut, and a secret is replaced without a notification (an UPDATE
    that no session of ours made). Meanwhile every lookup reads the row; once the listener is back,
    what was cached before the cut is not served."""
    client, runtime, _ = served
    client_id, old = _registered(runtime)
    assert not _refused(client, client_id, old)  # cached
    signals = runtime.oauth.clients.signals
    signals.retry_seconds = 3.0  # room for what follows before the listener is back
    admin = create_engine(fresh_database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            cut = connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            )).all()  # fmt: skip
            assert cut == [(True,)]
            wait_for(lambda: signals.stamp() is None, "the cache off while not listening")
            connection.execute(
                text("UPDATE brand SET secret_hash = :hash WHERE client_id = :client_id"),
                {"hash": secret_digest("cs_replaced"), "client_id": client_id},
            )
        assert _refused(client, client_id, old)  # not listening: read from the database
        assert signals.stamp() is None
        signals.retry_seconds = 0.05
        listening(runtime)
        assert _refused(client, client_id, old)
        assert not _refused(client, client_id, "cs_replaced")
    finally:
        admin.dispose()


def test_a_session_that_changes_a_brand_tells_this_process(runtime: Runtime) -> None:
    signals = signals_for(runtime.engine.url, BRANDS)
    with runtime.sessions() as db:
        registered = register_brand(db, name="Told", redirect_uris=[REDIRECT], public=False,
                                    clock=runtime.clock)  # fmt: skip
        db.commit()
        before = signals._local
        brand = find_brand(db, registered.brand.client_id)
        assert brand is not None
        new_client_secret(db, brand)
        assert signals._local == before + (0 if PG_URL else 1)  # SQLite: the flush already told
        db.commit()
        assert signals._local == before + (1 if PG_URL else 2)
        brand.name = "Renamed"
        db.flush()
        db.rollback()
        db.commit()
        assert signals._local == before + (1 if PG_URL else 3)  # a rolled-back change: no commit bump
