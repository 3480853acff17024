"""Single-use secrets stay single-use when two requests spend one at the same moment.

The attack: send the same emailed sign-in code (or recovery code, or `mfa_token`) twice in parallel,
so that both requests read it as unused before either has marked it. On PostgreSQL (READ COMMITTED)
that works unless the read locks the row; SQLite runs one writing transaction at a time
(BEGIN IMMEDIATE), so there the second request always sees the first one's mark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from sqlmodel import Session
from support.core import PG_URL, STRONG_PASSWORD, make_settings

from broker.accounts.challenges import Purpose
from broker.accounts.models import CodePurpose
from broker.errors import BrokerError, SecondFactorRefused
from broker.runtime import Runtime, build_runtime

pytestmark = pytest.mark.skipif(
    PG_URL is None, reason="SQLite serialises writing transactions: two spends can never overlap there"
)


@pytest.fixture
def runtime(tmp_path: Path, fresh_database_url: str) -> Iterator[Runtime]:
    """A runtime on a database of its own, whose sessions really commit."""
    built = build_runtime(make_settings(tmp_path / "var", fresh_database_url))
    yield built
    built.dispose()


@pytest.fixture
def customer_id(runtime: Runtime) -> UUID:
    with runtime.sessions() as session:
        customer = runtime.accounts.sign_up(session, "ada@example.org", STRONG_PASSWORD, verified=True)
        session.commit()
        return customer.id


def _spent_twice_at_once(runtime: Runtime, spend: Callable[[Session], None]) -> list[str]:
    """Spend in two transactions that overlap: the first has spent but not committed when the second
    starts, and commits while the second waits. Each outcome is "spent" or "refused"."""
    outcomes: list[str] = []
    first = runtime.sessions()
    spend(first)

    def second() -> None:
        with runtime.sessions() as session:
            try:
                spend(session)
                session.commit()
                outcomes.append("spent")
            except BrokerError:
                session.rollback()
                outcomes.append("refused")

    racer = threading.Thread(target=second)
    racer.start()
    time.sleep(0.5)  # the second has read the secret by now (and waits on the first's lock, if any)
    first.commit()
    first.close()
    racer.join(timeout=30)
    return ["spent", *outcomes]


def test_an_emailed_code_spent_twice_at_once_works_once(runtime: Runtime, customer_id: UUID) -> None:
    codes = runtime.recovery.codes
    with runtime.sessions() as session:
        _, code = codes.issue(session, customer_id, CodePurpose.SIGN_IN, b"\x00" * 32)
        session.commit()

    def spend(session: Session) -> None:
        codes.redeem(session, code, purposes=[CodePurpose.SIGN_IN])

    assert _spent_twice_at_once(runtime, spend) == ["spent", "refused"]


def test_a_recovery_code_spent_twice_at_once_works_once(runtime: Runtime, customer_id: UUID) -> None:
    recovery = runtime.signin.recovery
    with runtime.sessions() as session:
        code = recovery.regenerate(session, customer_id)[0]
        session.commit()

    def spend(session: Session) -> None:
        if not recovery.use(session, customer_id, code):
            raise SecondFactorRefused("this recovery code is wrong or was already used")

    assert _spent_twice_at_once(runtime, spend) == ["spent", "refused"]


def test_an_mfa_token_finished_twice_at_once_works_once(runtime: Runtime, customer_id: UUID) -> None:
    challenges = runtime.signin.challenges
    with runtime.sessions() as session:
        issued = challenges.issue(
            session, Purpose.SECOND_FACTOR, customer_id=customer_id, with_token=True, with_challenge=False
        )
        session.commit()
    assert issued.token is not None
    token = issued.token

    def spend(session: Session) -> None:
        challenges.discard(session, challenges.by_token(session, Purpose.SECOND_FACTOR, token))

    assert _spent_twice_at_once(runtime, spend) == ["spent", "refused"]
