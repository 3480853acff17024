"""The auditor API's C2SP tlog-tiles: hash tiles and entry bundles read from the stored tree rebuild
the signed root, full tiles are cacheable for ever (privately: they need an auditor token), partial
ones briefly, and paths that are not tiles, or tiles the log does not reach, are problems."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from support.core import FakeClock, bearer

from broker.api.audit import FULL_TILE_CACHE, PARTIAL_TILE_CACHE
from broker.audit import tree
from broker.runtime import Runtime
from clients.auditor.tlog import (
    Checkpoint,
    Tile,
    decode_bundle,
    leaf_hash,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    root_hash,
    split_hashes,
    tile_root,
    tile_width,
)


def entry(i: int) -> bytes:
    return f'{{"kind":"profile.read","seq":{i}}}'.encode()


def grow(db: Session, start: int, end: int) -> list[bytes]:
    """Append entries start..end-1 and commit; returns the leaf hashes of the whole log 0..end-1."""
    tree.append_many(db, [entry(i) for i in range(start, end)], at=FakeClock().now)
    db.commit()
    return [leaf_hash(entry(i)) for i in range(end)]


@pytest.fixture
def auditor(runtime: Runtime, db: Session) -> dict[str, str]:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return bearer(token)


def checkpoint(client: TestClient, auditor: dict[str, str]) -> Checkpoint:
    key = parse_verifier_key(client.get("/v1/audit/key").text.removesuffix("\n"))
    return parse_checkpoint(open_note(client.get("/v1/audit/checkpoint", headers=auditor).text, [key]))


def assert_problem(response: Any, status: int, *detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    for words in detail:
        assert words in response.json()["detail"], response.json()


def get_tile(client: TestClient, headers: dict[str, str], tile: Tile) -> bytes:
    response = client.get(f"/v1/audit/{tile.path()}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["cache-control"] == (PARTIAL_TILE_CACHE if tile.partial else FULL_TILE_CACHE)
    return response.content


@pytest.mark.parametrize("size", [1, 255, 256, 300, 513])
def test_tiles_rebuild_the_signed_root_and_bundles_hold_the_exact_entries(
    client: TestClient, db: Session, auditor: dict[str, str], size: int
) -> None:
    leaves = grow(db, 0, size)
    signed = checkpoint(client, auditor)

    def read(level: int, index: int, width: int) -> list[bytes]:
        return split_hashes(get_tile(client, auditor, Tile(level, index, width)), width)

    assert tile_root(signed.size, read) == signed.root_hash == root_hash(leaves)
    entries: list[bytes] = []
    for index in range((size + 255) // 256):
        width = tile_width(None, index, size)
        entries += decode_bundle(get_tile(client, auditor, Tile(None, index, width)), width)
    assert entries == [entry(i) for i in range(size)]
    level0 = [h for i in range((size + 255) // 256) for h in read(0, i, tile_width(0, i, size))]
    assert level0 == [leaf_hash(e) for e in entries]


def test_level_one_tiles_are_the_roots_of_256_leaf_subtrees(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    leaves = grow(db, 0, 256 * 3 + 5)
    hashes = split_hashes(get_tile(client, auditor, Tile(1, 0, 3)), 3)
    assert hashes == [root_hash(leaves[i : i + 256]) for i in range(0, 768, 256)]


def test_a_partial_tile_stays_served_once_the_full_one_exists(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    grow(db, 0, 10)
    early = get_tile(client, auditor, Tile(0, 0, 10))
    grow(db, 10, 300)
    assert get_tile(client, auditor, Tile(0, 0, 10)) == early
    assert get_tile(client, auditor, Tile(0, 0))[: len(early)] == early


def test_tiles_the_log_does_not_reach_are_404(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    grow(db, 0, 10)
    paths = ["tile/0/000", "tile/0/000.p/11", "tile/entries/000", "tile/entries/001.p/1", "tile/1/000.p/1"]
    for path in [*paths, "tile/0/x018/x446/x744/x073/x709/x551/615"]:
        assert_problem(client.get(f"/v1/audit/{path}", headers=auditor), 404, "does not reach")


@pytest.mark.parametrize(
    ("path", "words"),
    [("tile/0/1", "groups of three digits"), ("tile/0/000.p/256", "partial width"),
     ("tile/0/x000/001", "leading x000"), ("tile/64/000", "level"), ("tile/x/000", "level"),
     ("tile/entries/000.p/0", "partial width")],
)  # fmt: skip
def test_paths_that_are_not_tiles_are_400(
    client: TestClient, db: Session, auditor: dict[str, str], path: str, words: str
) -> None:
    grow(db, 0, 3)
    assert_problem(client.get(f"/v1/audit/{path}", headers=auditor), 400, words)


def test_tiles_need_an_auditor_token(client: TestClient, db: Session) -> None:
    grow(db, 0, 3)
    assert_problem(client.get("/v1/audit/tile/entries/000.p/3"), 401, "auditor token")
