"""Group commit of profile reads: concurrent reads share one commit, each is answered only once its
entry is committed, a failed batch fails every read in it, and a revocation racing reads is logged
after every read it did not stop. Real commits on a fresh database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select, update
from support.core import PG_URL, FakeClock, RecordedSleep, bearer, make_settings
from support.oauth import BrandCredentials, authorized, brand_token

from broker.audit import tree
from broker.audit.entries import Actor, Kind, decode
from broker.audit.group_commit import GroupCommitter, Rerouted, _in_thread, _Item, isolated
from broker.audit.models import AuditEntry
from broker.audit.verify import verify_log
from broker.consent.models import Grant, GrantStatus
from broker.errors import NotAuthenticated, ValueOverdue
from broker.runtime import Runtime, build_runtime
from broker.settings import Settings
from broker.usecases import reads
from broker.usecases.reads import _PLAIN_READ, _grant_hint

READERS = 12


@pytest.fixture(params=[0, 2], ids=["batches-on-the-loop", "batches-in-the-appender-thread"])
def settings(tmp_path: Path, fresh_database_url: str, request: pytest.FixtureRequest) -> Settings:
    """Both ways a batch runs: on the event loop (no request threads: SQLite's default) and in the
    appender thread (PostgreSQL's); every promise holds for both."""
    if request.param == 0 and PG_URL is not None:
        pytest.skip("batches run on the loop on SQLite only")
    return make_settings(
        tmp_path / "var", fresh_database_url, group_commit_timeout_seconds=5, request_threads=request.param
    )


@pytest.fixture
def runtime(settings: Settings, clock: FakeClock, sleep: RecordedSleep) -> Iterator[Runtime]:
    """A runtime on its own database whose sessions really commit (the fixtures' brand, offer and
    customer included)."""
    built = build_runtime(settings, clock=clock, sleep=sleep)
    assert built.committer.on_loop == (settings.request_threads == 0)  # SQLite's, here
    yield built
    built.dispose()


@pytest.fixture
def access(client: TestClient, brand: BrandCredentials, offer: dict[str, Any], customer: str) -> str:
    """A brand's access token for the customer's grant, read once (the first read's bookkeeping done)."""
    token: str = authorized(client, brand, offer)["access_token"]
    assert client.get("/v1/profile", headers=bearer(token)).status_code == 200
    return token


def appends(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the audit log appends from now on: each is one transaction's insert of its entries (on
    every thread: the appender's too)."""
    count, insert_rows = [0], tree.insert_rows

    def counted(connection: Any, table: Any, rows: Any) -> None:
        count[0] += table.name == "audit_entry"
        insert_rows(connection, table, rows)

    monkeypatch.setattr(tree, "insert_rows", counted)
    return lambda: count[0]


def hold_log(runtime: Runtime) -> Session:
    """A transaction holding the audit head lock (on SQLite, the database's write lock): appends wait."""
    side = runtime.sessions()
    tree.lock_head(side)
    return side


def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def reads_while_held(
    client: TestClient, runtime: Runtime, token: str | list[str], count: int
) -> list[httpx.Response]:
    """`count` concurrent reads (with `token`, or the tokens in turn): the first alone in a batch that
    waits for the held log, then the others, queued behind it; the log is released once they all are.

    The first goes alone so that the others always queue behind a batch that is already blocked: sent
    together, a committer slow to wake (a loaded machine) could take them all in one batch."""
    side, committer = hold_log(runtime), runtime.committer
    taken, tokens = committer.taken, [token] if isinstance(token, str) else token
    with ThreadPoolExecutor(count) as pool:
        headers = [bearer(tokens[i % len(tokens)]) for i in range(count)]
        futures = [pool.submit(client.get, "/v1/profile", headers=headers[0])]
        wait_until(lambda: committer.taken - taken == 1 and committer.waiting == 0)
        futures += [pool.submit(client.get, "/v1/profile", headers=h) for h in headers[1:]]
        wait_until(lambda: committer.waiting == count - 1)
        # A refused read has no entry to wait for: a batch of refused reads alone (a garbage token's)
        # touches no table, needs no lock and may be answered at once. A served read may not.
        served = [f for f in futures if f.done() and f.result().status_code == 200]
        assert not served, "no read may be served before its entry is committed"
        side.rollback()
        side.close()
        return [f.result(timeout=30) for f in futures]


def read_entries(runtime: Runtime) -> list[AuditEntry]:
    with runtime.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.kind == "profile.read").order_by(col(AuditEntry.index))
        return list(session.exec(query))


def assert_log_verifies(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        report = verify_log(session, runtime.checkpoints.verifier, origin=runtime.checkpoints.origin)
    assert report.ok, report.problems


def test_concurrent_reads_share_one_commit_and_each_has_its_entry(
    client: TestClient, runtime: Runtime, access: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, counted = len(read_entries(runtime)), appends(monkeypatch)
    responses = reads_while_held(client, runtime, access, READERS)
    assert [r.status_code for r in responses] == [200] * READERS
    # the first batch (blocked), then all that queued behind it together: 2 appends, not 12
    assert counted() == 2 and runtime.committer.commits >= 2
    entries = read_entries(runtime)[before:]
    assert sorted(decode(e.entry)["request_id"] for e in entries) == sorted(
        r.headers["x-request-id"] for r in responses
    )
    assert_log_verifies(runtime)


def test_a_refused_read_in_a_batch_rolls_back_alone(
    client: TestClient, runtime: Runtime, access: str, brand: BrandCredentials
) -> None:
    before = len(read_entries(runtime))
    refused = {"garbage": "x.y.z", "brand token": brand_token(client, brand, "offers:read")}
    responses = reads_while_held(client, runtime, [access, *refused.values()], 9)
    assert [r.status_code for r in responses] == [200, 401, 403] * 3
    assert {r.json()["type"].rsplit("/", 1)[1] for r in responses[1::3]} == {"unauthenticated"}
    assert {r.json()["type"].rsplit("/", 1)[1] for r in responses[2::3]} == {"insufficient-scope"}
    entries = read_entries(runtime)[before:]
    assert sorted(decode(e.entry)["request_id"] for e in entries) == sorted(
        r.headers["x-request-id"] for r in responses[::3]
    ), "exactly the served reads are logged"
    assert_log_verifies(runtime)


def test_a_failed_batch_fails_every_read_in_it_and_the_broker_recovers(
    client: TestClient, runtime: Runtime, access: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before, insert_rows = len(read_entries(runtime)), tree.insert_rows

    def failing_append(connection: Any, table: Any, rows: Any) -> None:
        if table.name == "audit_entry":  # on every thread: the appender's too
            raise OperationalError("INSERT INTO audit_entry", {}, Exception("disk I/O error"))
        insert_rows(connection, table, rows)

    with monkeypatch.context() as patched:
        patched.setattr(tree, "insert_rows", failing_append)
        responses = reads_while_held(client, runtime, access, 6)
    assert [r.status_code for r in responses] == [503] * 6
    problem = responses[0].json()
    assert responses[0].headers["content-type"] == "application/problem+json"
    assert problem["type"] == "https://consentry.dev/problems/read-not-recorded"
    assert "retry" in problem["detail"]
    assert len(read_entries(runtime)) == before, "a read that failed left no entry"
    assert client.get("/v1/profile", headers=bearer(access)).status_code == 200
    assert len(read_entries(runtime)) == before + 1
    assert_log_verifies(runtime)


def test_a_read_not_committed_in_time_is_refused_with_503(
    client: TestClient, runtime: Runtime, access: str
) -> None:
    runtime.committer.timeout = 0.3
    side = hold_log(runtime)
    try:
        late = client.get("/v1/profile", headers=bearer(access))
    finally:
        side.rollback()
        side.close()
    assert late.status_code == 503
    assert late.json()["type"] == "https://consentry.dev/problems/read-not-recorded"
    assert client.get("/v1/profile", headers=bearer(access)).status_code == 200


def test_a_revocation_racing_reads_is_logged_after_every_read_it_did_not_stop(
    client: TestClient, runtime: Runtime, access: str, customer: str
) -> None:
    grant_id = client.get("/v1/profile", headers=bearer(access)).json()["grant_id"]
    statuses: list[int] = []
    lock, stop = threading.Lock(), threading.Event()

    def reader() -> list[int]:
        seen = []
        while not stop.is_set() and len(seen) < 60:
            seen.append(client.get("/v1/profile", headers=bearer(access)).status_code)
            if seen[-1] != 200:
                break
        with lock:
            statuses.extend(seen)
        return seen

    with ThreadPoolExecutor(6) as pool:
        runs = [pool.submit(reader) for _ in range(6)]
        wait_until(lambda: runtime.committer.commits >= 4)
        revoked = client.delete(f"/v1/me/grants/{grant_id}", headers=bearer(customer))
        stop.set()
        seen = [run.result(timeout=30) for run in runs]
    assert revoked.status_code in (200, 204), revoked.text
    for run in seen:  # once refused, refused: no read served after the revocation committed
        assert all(status == 200 for status in run[:-1]) and run[-1] in (200, 403)
    with runtime.sessions() as session:
        query = select(AuditEntry).where(col(AuditEntry.grant_id) == UUID(grant_id))
        kinds = [e.kind for e in session.exec(query.order_by(col(AuditEntry.index)))]
    served = statuses.count(200)
    assert served > 0 and kinds.count("grant.revoked") == 1
    revocation = kinds.index("grant.revoked")
    assert "profile.read" not in kinds[revocation:], "a read logged after the revocation"
    # the read in `access` and the one naming the grant, then every read served here
    assert kinds[:revocation].count("profile.read") == served + 2
    assert_log_verifies(runtime)


def test_shutdown_stops_the_committer_and_reads_still_work_without_it(
    settings: Settings, runtime: Runtime, client: TestClient, access: str
) -> None:
    assert runtime.committer.running
    client.__exit__(None, None, None)  # the app's lifespan ends
    assert not runtime.committer.running
    assert not [t for t in threading.enumerate() if t.name == "consentry-group-commit"]
    # without the thread (an app without its lifespan, a command), a read is a batch of one
    served = runtime.reads.serve(runtime.sessions, access, request_id="after-shutdown")
    assert served["fields"]["email"] == "ada@example.org"
    assert decode(read_entries(runtime)[-1].entry)["request_id"] == "after-shutdown"


@pytest.mark.parametrize("isolates", [False, True])
def test_each_job_of_a_batch_keeps_its_own_outcome_in_a_savepoint_or_isolating_itself(
    runtime: Runtime, isolates: bool
) -> None:
    # One batch of four jobs: the committer runs each in a savepoint, or (a job that `isolates`) runs
    # it bare and the job wraps what may fail after writing in `isolated`. Either way a refused job
    # leaves nothing, one refused with `keeps_changes` keeps what it wrote, the others are untouched.
    committer, audit = GroupCommitter(), runtime.audit
    grant = uuid4()

    def entry(session: Session, reason: str) -> None:
        audit.record(session, Kind.TOKEN_FAMILY_REVOKED, actor=Actor.BROKER, grant=grant, reason=reason)

    def served(session: Session) -> str:
        entry(session, "served")
        return "ok"

    def refused(session: Session) -> str:
        entry(session, "refused")
        raise NotAuthenticated("refused after queuing its entry")

    def writes_then_raises(reason: str, error: Exception) -> Callable[[Session], str]:
        def job(session: Session) -> str:
            with contextlib.ExitStack() as stack:
                if isolates:
                    stack.enter_context(isolated(session))
                entry(session, reason)
                raise error

        return job

    kept = writes_then_raises("kept", ValueOverdue("refused, keeping what it wrote"))
    broken = writes_then_raises("broken", RuntimeError("a bug, after queuing an entry"))

    items = [_Item(job, None, "", isolates) for job in (served, refused, kept, broken)]
    for item in items:
        item.future.set_running_or_notify_cancel()
    committer._process(runtime.sessions, items)
    assert items[0].future.result() == "ok"
    for item, error in zip(items[1:], (NotAuthenticated, ValueOverdue, RuntimeError), strict=True):
        assert isinstance(item.future.exception(), error)
    with runtime.sessions() as session:
        query = select(AuditEntry).where(col(AuditEntry.grant_id) == grant).order_by(col(AuditEntry.index))
        assert [decode(e.entry)["reason"] for e in session.exec(query)] == ["served", "kept"]
    assert_log_verifies(runtime)


def test_a_rerouted_read_runs_in_a_batch_of_its_own_after_its_batch_commits(runtime: Runtime) -> None:
    committer = GroupCommitter()

    def plain(session: Session) -> str:
        return "plain"

    def must_write(session: Session) -> str:
        raise Rerouted(lambda later: f"checked after {committer.commits} commit(s)")

    def refused_later(session: Session) -> str:
        def refuse(later: Session) -> str:
            raise NotAuthenticated("refused on the checked road")

        raise Rerouted(refuse)

    items = [_Item(job, None, "", True) for job in (plain, must_write, refused_later)]
    for item in items:
        item.future.set_running_or_notify_cancel()
    committer._process(runtime.sessions, items)
    assert items[0].future.result() == "plain"
    assert items[1].future.result() == "checked after 1 commit(s)"  # its first batch had committed
    assert isinstance(items[2].future.exception(), NotAuthenticated)
    assert committer.commits == 2


class _Counted:
    """A query whose runs are counted (the per-read query, or the batch's)."""

    def __init__(self, query: Any, runs: list[str], name: str) -> None:
        self.query, self.runs, self.name = query, runs, name

    def all(self, connection: Any, params: Any) -> Any:
        self.runs.append(self.name)
        return self.query.all(connection, params)


def test_the_plain_reads_of_a_batch_look_their_grants_up_in_one_query(
    client: TestClient,
    runtime: Runtime,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = [authorized(client, brand, offer) for _ in range(3)]  # three grants, a token family each
    for token in tokens:  # each read once: the first read's bookkeeping done
        assert client.get("/v1/profile", headers=bearer(token["access_token"])).status_code == 200
    revoked = client.post("/oauth/revoke", data={"token": tokens[2]["refresh_token"]}, auth=brand.auth())
    assert revoked.status_code == 200
    alone = client.get("/v1/profile", headers=bearer(tokens[0]["access_token"])).json()

    runs: list[str] = []
    monkeypatch.setattr(reads, "_PLAIN_READ", _Counted(_PLAIN_READ, runs, "one read"))
    batch_query = reads._plain_reads

    def counted_batch(grants: int, families: int) -> Any:
        return _Counted(batch_query(grants, families), runs, f"{grants} grant(s), {families} families")

    monkeypatch.setattr(reads, "_plain_reads", counted_batch)
    verify = reads.verify_claims

    def verify_or_fail(services: Any, token: str) -> Any:
        if token == "unexpected":  # a token whose check fails in a way no one foresaw
            raise RuntimeError("an unforeseen failure")
        return verify(services, token)

    monkeypatch.setattr(reads, "verify_claims", verify_or_fail)
    presented = [tokens[0], tokens[1], tokens[0], tokens[2]]
    jobs = [*(t["access_token"] for t in presented), "x.y.z", brand_token(client, brand, "offers:read"),
            "unexpected"]  # fmt: skip
    items = [_Item(runtime.reads._job(job), None, _grant_hint(job), True) for job in jobs]
    for item in items:
        item.future.set_running_or_notify_cancel()
    runtime.committer._process(runtime.sessions, list(items))  # (it sorts the list it is given)

    # one query for the batch's four customer tokens (three grants and families, padded to four),
    # none per read
    assert runs == ["4 grant(s), 4 families"]
    served = [item.future.result()["fields"] for item in items[:3]]
    assert served == [alone["fields"]] * 3  # what a read alone answers
    assert isinstance(items[3].future.exception(), NotAuthenticated)  # its family is revoked
    assert isinstance(items[4].future.exception(), NotAuthenticated)  # not a token of ours
    assert "brand token" in str(items[5].future.exception())  # read alone, and refused, as before
    assert isinstance(items[6].future.exception(), RuntimeError)  # its own failure, not its batch's
    assert_log_verifies(runtime)


def test_a_failed_prefetch_fails_each_read_as_its_own_first_statement_would(runtime: Runtime) -> None:
    committer, outage = GroupCommitter(), OperationalError("SELECT", {}, Exception("server closed"))

    class Looking:
        """A job whose batch's lookup fails; it must then never run."""

        @staticmethod
        def prefetch(session: Session, jobs: list[Any]) -> None:
            raise outage

        def __call__(self, session: Session) -> str:
            raise AssertionError("a read ran without its lookup")

    items = [_Item(job, None, "", True) for job in (Looking(), Looking(), lambda session: "plain")]
    for item in items:
        item.future.set_running_or_notify_cancel()
    committer._process(runtime.sessions, list(items))
    assert [item.future.exception() for item in items] == [outage] * 3  # a 503 `unavailable` each
    assert committer.commits == 0


def test_the_plain_reads_query_on_the_driver_answers_what_core_answers(runtime: Runtime, access: str) -> None:
    claims = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
    params = {"grant_id": UUID(claims["grant_id"]), "family_id": UUID(claims["fam"]),
              "client_id": claims["client_id"]}  # fmt: skip
    with runtime.sessions() as session:
        row = _PLAIN_READ.first(session.connection(), params)
        core = session.connection().execute(_PLAIN_READ.statement, params).first()
        assert row is not None and core is not None and tuple(row) == tuple(core)
        assert row.status is GrantStatus.ACTIVE and isinstance(row.fields, list)
        assert row.family_revoked_at is None
        assert _PLAIN_READ.first(session.connection(), {**params, "client_id": "another"}) is None
        # the batch's query: the same row, beside the brand's client id, and the same on the driver
        batch = reads._plain_reads(1, 2)
        batch_params = {"grant_0": params["grant_id"], "family_0": params["family_id"], "family_1": uuid4()}
        rows = batch.all(session.connection(), batch_params)
        core_rows = session.connection().execute(batch.statement, batch_params).all()
        assert [tuple(r) for r in rows] == [tuple(r) for r in core_rows]
        assert tuple(rows[0])[1:] == tuple(row) and rows[0].client_id == params["client_id"]


def _plain_read_of(query: str, params: dict[str, Any]) -> Callable[[Session], Any]:
    """A plain read's lookup: a read's own query, or its batch's."""
    if query == "one read":
        return lambda session: _PLAIN_READ.first(session.connection(), params)
    batch = {"grant_0": params["grant_id"], "family_0": params["family_id"]}
    return lambda session: reads._plain_reads(1, 1).first(session.connection(), batch)


@pytest.mark.skipif(PG_URL is None, reason="row locks: PostgreSQL")
@pytest.mark.parametrize("query", ["one read", "a batch"])
def test_plain_reads_of_one_grant_share_its_lock_and_a_revocation_waits_for_them(
    runtime: Runtime, access: str, query: str
) -> None:
    claims = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
    grant_id = UUID(claims["grant_id"])
    params = {"grant_id": grant_id, "family_id": UUID(claims["fam"]), "client_id": claims["client_id"]}
    look_up = _plain_read_of(query, params)
    with runtime.sessions() as first, runtime.sessions() as second, runtime.sessions() as revoker:
        assert look_up(first) is not None
        second.connection().exec_driver_sql("SET LOCAL lock_timeout = '2s'")
        assert look_up(second) is not None  # did not wait
        revoker.connection().exec_driver_sql("SET LOCAL lock_timeout = '300ms'")
        with pytest.raises(OperationalError, match="lock"):
            revoker.exec(update(Grant).where(col(Grant.id) == grant_id).values(status=GrantStatus.REVOKED))


def test_batches_run_on_the_loop_only_on_sqlite_without_request_threads(
    tmp_path: Path, fresh_database_url: str
) -> None:
    # On PostgreSQL a read on the loop could wait for a row lock whose holder's commit needs the loop
    # (the revocation race above hangs there): even with no request threads, the appender thread runs them.
    for threads, expected in ((0, PG_URL is None), (1, False), (None, PG_URL is None)):
        built = build_runtime(make_settings(tmp_path / "var", fresh_database_url, request_threads=threads))
        try:
            assert built.committer.on_loop is expected, threads
        finally:
            built.dispose()


@pytest.mark.anyio
async def test_a_batch_cancelled_mid_commit_waits_for_the_commit_before_letting_go(
    anyio_backend: str,
) -> None:
    # The loop shutting down cancels the batch's task; its session must not be closed under a commit
    # still running in the worker thread.
    finished: list[float] = []

    def slow_commit() -> None:
        time.sleep(0.2)
        finished.append(time.monotonic())

    task = asyncio.ensure_future(_in_thread(slow_commit))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished, "cancelled before the call in the thread returned"
