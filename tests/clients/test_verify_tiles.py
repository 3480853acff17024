"""`consentry-audit verify` and `check-reads` read the real server's C2SP tlog-tiles: entry bundles for
the entries, hash tiles for the root; a bundle or a hash tile that does not match the signed
checkpoint fails, and a server without tiles is verified through the JSON pages instead."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col
from support import served
from support.core import FakeClock
from typer.testing import CliRunner

from broker.audit import tree
from broker.audit.models import AuditNode
from broker.runtime import Runtime
from clients.auditor import verify as offline
from clients.auditor.api import AuditorClient
from clients.auditor.cli import app
from clients.auditor.tlog import parse_verifier_key

SIZE = 256 * 3 + 41  # three full bundles and a partial one
Edit = Callable[[httpx.Request, httpx.Response], httpx.Response]


def entry(i: int) -> bytes:
    return f'{{"actor":"brand","kind":"profile.read","seq":{i},"v":1}}'.encode()


@pytest.fixture
def token(runtime: Runtime, db: Session) -> str:
    tree.append_many(db, [entry(i) for i in range(SIZE)], at=FakeClock().now)
    _, secret = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return secret


class Server:
    """The app in-process behind an httpx transport, recording paths; `edit` may change answers.

    One request at a time: the test database is one connection (a real server takes them in parallel)."""

    def __init__(self, client: TestClient) -> None:
        self.client, self.paths, self.lock = client, list[str](), threading.Lock()
        self.edit: Edit | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        with self.lock:
            answer = self.client.request(request.method, str(request.url), headers=dict(request.headers))
        response = httpx.Response(
            answer.status_code, headers=list(answer.headers.items()), content=answer.content
        )
        return self.edit(request, response) if self.edit is not None else response


@pytest.fixture
def server(client: TestClient) -> Server:
    return Server(client)


@pytest.fixture
def auditor(server: Server, token: str) -> Iterator[AuditorClient]:
    with AuditorClient("http://127.0.0.1:8000", token, transport=served.consentry(server.handle)) as http:
        yield http


def verify(auditor: AuditorClient, runtime: Runtime, *, fetch_ahead: int = 1) -> offline.VerifyReport:
    key = parse_verifier_key(runtime.checkpoints.verifier_key())
    return offline.verify_log(auditor, key=key, fetch_ahead=fetch_ahead)


@pytest.mark.parametrize("fetch_ahead", [1, 3])
def test_verify_reads_entry_bundles_and_hash_tiles_not_the_json_pages(
    auditor: AuditorClient, server: Server, runtime: Runtime, fetch_ahead: int
) -> None:
    report = verify(auditor, runtime, fetch_ahead=fetch_ahead)
    assert report.verified, report.problems
    assert (report.source, report.entries) == ("tiles", SIZE)
    bundles = [p for p in server.paths if p.startswith("/v1/audit/tile/entries/")]
    assert bundles == ["/v1/audit/tile/entries/000", "/v1/audit/tile/entries/001",
                       "/v1/audit/tile/entries/002", "/v1/audit/tile/entries/003.p/41"]  # fmt: skip
    hashes = sorted(p for p in server.paths if p.startswith("/v1/audit/tile/") and p not in bundles)
    # 809 = 512 + 256 + 41: two subtrees of 256^1 leaves (level 1) and the 41 leaves after them
    assert hashes == ["/v1/audit/tile/0/003.p/41", "/v1/audit/tile/1/000.p/3"]
    assert "/v1/audit/entries" not in server.paths


def test_a_changed_entry_bundle_does_not_hash_to_the_checkpoint(
    auditor: AuditorClient, server: Server, runtime: Runtime
) -> None:
    def edit(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/tile/entries/001"):
            return httpx.Response(200, content=response.content.replace(b'"seq":300', b'"seq":301'))
        return response

    server.edit = edit
    report = verify(auditor, runtime)
    assert not report.verified
    assert "not to the checkpoint's root" in report.problems[0]


def test_a_cut_entry_bundle_breaks_the_contract(
    auditor: AuditorClient, server: Server, runtime: Runtime
) -> None:
    def edit(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/tile/entries/002"):
            return httpx.Response(200, content=response.content[:-3])
        return response

    server.edit = edit
    report = verify(auditor, runtime)
    assert not report.verified
    assert "tile/entries/002" in report.problems[0] and "cut short" in report.problems[0]


def test_a_stored_hash_tile_that_does_not_match_the_log_is_reported(
    auditor: AuditorClient, runtime: Runtime, db: Session
) -> None:
    # The entries are intact; the stored leaf hash that the level-0 tile serves is not.
    db.exec(
        update(AuditNode)
        .where(col(AuditNode.level) == 0, col(AuditNode.position) == 800)
        .values(hash=bytes(32))
    )  # type: ignore[call-overload]
    db.commit()
    report = verify(auditor, runtime)
    assert not report.verified
    assert report.problems == [report.problems[0]]
    assert "tile/0/003.p/41" in report.problems[0] and "do not match the log" in report.problems[0]


def test_a_server_without_tiles_is_verified_through_the_json_pages(
    auditor: AuditorClient, server: Server, runtime: Runtime
) -> None:
    def no_tiles(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if "/tile/" in request.url.path:
            return httpx.Response(404, json={"title": "Not Found"})
        return response

    server.edit = no_tiles
    report = verify(auditor, runtime)
    assert report.verified, report.problems
    assert (report.source, report.entries) == ("json", SIZE)


def test_a_bundle_missing_after_the_first_fails(
    auditor: AuditorClient, server: Server, runtime: Runtime
) -> None:
    def gone(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.endswith("/tile/entries/002"):
            return httpx.Response(404, json={"title": "Not Found"})
        return response

    server.edit = gone
    report = verify(auditor, runtime)
    assert not report.verified
    assert "does not serve an entry bundle" in report.problems[0]


@pytest.mark.parametrize("command", ["verify", "check-reads"])
def test_the_cli_reads_tiles(server: Server, token: str, runtime: Runtime, command: str) -> None:
    args = [command, "--url", "http://127.0.0.1:8000", "--token", token, "--json", "--fetch-ahead", "2",
            "--key", runtime.checkpoints.verifier_key()]  # fmt: skip
    result = CliRunner().invoke(app, args, obj=served.consentry(server.handle))
    document = json.loads(result.stdout)
    assert (document["verified"], document["source"], document["entries"]) == (True, "tiles", SIZE)
    assert "/v1/audit/entries" not in server.paths
