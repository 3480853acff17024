"""Shared fixtures: one migrated database per test session (SQLite, or PostgreSQL when
CONSENTRY_TEST_DATABASE_URL names a server), each test inside a transaction rolled back at its end.

Tests that need real commits (scanning the database file, concurrent requests, several processes)
ask for `fresh_database_url` instead: a new, migrated, empty database of the same backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import Engine
from sqlmodel import Session
from support.core import FakeClock, RecordedSleep, make_settings, new_database_url
from support.problems import Ledger, record_answered_problems

from broker.app import create_app
from broker.db import create_db_engine, migrate, read_only
from broker.runtime import Runtime, build_runtime
from broker.settings import Settings

PROBLEMS = Ledger()

# No per-example deadline for hypothesis: the suite runs on two cores shared by two test workers, a
# PostgreSQL server and the servers some tests start, so an example of a pure function can stall
# past 200 ms once (seen: 344 ms, then 0.08 ms) and fail the run. The examples' own assertions, and
# `bench/` for speed, are what the tests are for. Tests that set their own settings keep them.
settings.register_profile("consentry", deadline=None)
settings.load_profile("consentry")


def pytest_configure(config: pytest.Config) -> None:
    """Every problem an operation answers is checked against its OpenAPI entry (`support.problems`)."""
    record_answered_problems(PROBLEMS)


@pytest.fixture(autouse=True)
def answered_problems_are_documented() -> Iterator[None]:
    """Fails the test during which an operation answered a problem type its OpenAPI entry does not list."""
    yield
    PROBLEMS.check()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = new_database_url(tmp_path_factory.mktemp("db"))
    migrate(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleep() -> RecordedSleep:
    return RecordedSleep()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "var", database_url)


@pytest.fixture
def runtime(settings: Settings, engine: Engine, clock: FakeClock, sleep: RecordedSleep) -> Iterator[Runtime]:
    """A runtime whose every session joins one outer transaction that is rolled back afterwards."""
    connection = engine.connect()
    outer = connection.begin()

    def sessions() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    built = build_runtime(settings, engine=engine, clock=clock, sleep=sleep)
    # Read-only sessions join the same transaction, marked so that a write through one still fails; a
    # read-only connection is that transaction's connection.
    yield dataclasses.replace(
        built,
        sessions=sessions,
        read_sessions=lambda: read_only(sessions()),
        read_connections=lambda: nullcontext(connection),
    )
    outer.rollback()
    connection.close()


@pytest.fixture
def db(runtime: Runtime) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> str:
    """A new, migrated, empty database that tests may commit to."""
    url = new_database_url(tmp_path)
    migrate(url)
    return url
