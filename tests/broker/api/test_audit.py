"""The auditor API: only auditor tokens get in; checkpoints verify with the served key and are signed
again only when the log grew; entries page with `next`; proofs verify with the auditor's own Merkle
code; every request the log cannot answer is a 400 that says what to ask for."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, update
from sqlmodel import Session, col, select
from support.core import FakeClock, bearer, sign_up
from support.oauth import BrandCredentials, brand_token

from broker.accounts.models import Auditor
from broker.audit import tree
from broker.audit.checkpoints import Checkpoints
from broker.audit.models import AuditCheckpoint
from broker.db import create_db_engine, session_factory
from broker.runtime import Runtime
from clients.auditor.tlog import (
    Checkpoint,
    generate_private_key,
    merkle,
    open_note,
    parse_checkpoint,
    parse_private_key,
    parse_verifier_key,
)

AT = FakeClock().now
ENDPOINTS = [
    "/v1/audit/checkpoint",
    "/v1/audit/checkpoints/0",
    "/v1/audit/entries?start=0",
    "/v1/audit/proofs/inclusion?index=0&tree_size=1",
    "/v1/audit/proofs/consistency?first=0&second=1",
    "/v1/audit/tile/0/000.p/1",
    "/v1/audit/tile/entries/000.p/1",
]


def entry(i: int) -> bytes:
    return f'{{"kind":"profile.read","seq":{i}}}'.encode()


def grow(db: Session, start: int, end: int) -> list[bytes]:
    """Append entries start..end-1 and commit; returns the leaf hashes of the whole log 0..end-1."""
    tree.append_many(db, [entry(i) for i in range(start, end)], at=AT)
    db.commit()
    return [merkle.leaf_hash(entry(i)) for i in range(end)]


@pytest.fixture
def auditor(runtime: Runtime, db: Session) -> dict[str, str]:
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()
    return bearer(token)


def checkpoint(client: TestClient, auditor: dict[str, str]) -> tuple[Checkpoint, str]:
    """The current checkpoint, opened with the key the server publishes."""
    key = client.get("/v1/audit/key", headers=auditor)
    note = client.get("/v1/audit/checkpoint", headers=auditor)
    assert note.headers["content-type"].startswith("text/plain")
    return parse_checkpoint(
        open_note(note.text, [parse_verifier_key(key.text.removesuffix("\n"))])
    ), note.text


def assert_problem(response: Any, status: int, *detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    for words in detail:
        assert words in response.json()["detail"], response.json()


# Who gets in


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_audit_endpoint_needs_an_auditor_token(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 401, "auditor token")
    assert client.get(path).headers["www-authenticate"] == 'Bearer realm="consentry"'
    assert_problem(client.get(path, headers=bearer("cat_not-a-real-token")), 401, "not an auditor token")
    assert_problem(client.get(path, headers={"Authorization": "Basic YTpi"}), 401)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_customer_session_tokens_and_brand_tokens_are_not_auditor_tokens(
    client: TestClient, brand: BrandCredentials, path: str
) -> None:
    customer = sign_up(client, "ada@example.org")
    assert_problem(client.get(path, headers=bearer(customer)), 401, "not an auditor token")
    assert_problem(client.get(path, headers=bearer(brand_token(client, brand))), 401, "not an auditor token")


def test_the_session_cookie_does_not_open_the_auditor_api(client: TestClient) -> None:
    sign_up(client, "ada@example.org")
    client.post(
        "/v1/sessions", json={"email": "ada@example.org", "password": "plum-otter-satchel-91-lantern"}
    )
    assert client.cookies.get("consentry_session")
    assert_problem(client.get("/v1/audit/checkpoint"), 401)


def test_a_revoked_auditor_token_is_refused(
    client: TestClient, db: Session, auditor: dict[str, str], clock: FakeClock
) -> None:
    assert client.get("/v1/audit/checkpoint", headers=auditor).status_code == 200
    db.exec(update(Auditor).values(revoked_at=clock.now))
    db.commit()
    assert_problem(client.get("/v1/audit/checkpoint", headers=auditor), 401, "revoked")


def test_the_verifier_key_is_public(client: TestClient, runtime: Runtime) -> None:
    key = client.get("/v1/audit/key")
    assert key.status_code == 200 and key.text == runtime.checkpoints.verifier_key() + "\n"


# Checkpoints


def test_the_served_key_verifies_the_checkpoint_of_the_log(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    leaves = grow(db, 0, 13)
    key = client.get("/v1/audit/key", headers=auditor)
    assert key.status_code == 200 and key.headers["content-type"].startswith("text/plain")
    assert key.text.endswith("\n") and key.text.count("\n") == 1
    assert parse_verifier_key(key.text.removesuffix("\n")).name == "127.0.0.1:8000/audit"
    signed, _ = checkpoint(client, auditor)
    assert (signed.origin, signed.size, signed.root_hash) == (
        "127.0.0.1:8000/audit",
        13,
        merkle.root_hash(leaves),
    )


def test_the_empty_log_has_a_signed_checkpoint_of_size_zero(
    client: TestClient, auditor: dict[str, str]
) -> None:
    signed, _ = checkpoint(client, auditor)
    assert (signed.size, signed.root_hash) == (0, merkle.root_hash([]))


def test_a_checkpoint_is_signed_again_only_when_the_log_grew(
    client: TestClient, db: Session, auditor: dict[str, str], clock: FakeClock
) -> None:
    def stored() -> int:
        return db.exec(select(func.count()).select_from(AuditCheckpoint)).one()

    grow(db, 0, 5)
    first, first_note = checkpoint(client, auditor)
    clock.advance(minutes=5)
    _, again_note = checkpoint(client, auditor)
    assert again_note == first_note and stored() == 1
    grow(db, 5, 8)
    grown, grown_note = checkpoint(client, auditor)
    assert (first.size, grown.size) == (5, 8) and grown_note != first_note and stored() == 2
    # Every checkpoint is kept and served by its size: a customer's receipt can name an old one.
    assert client.get("/v1/audit/checkpoints/5", headers=auditor).text == first_note
    assert client.get("/v1/audit/checkpoints/8", headers=auditor).text == grown_note


@pytest.mark.parametrize("size", ["6", "0", "9223372036854775807"])
def test_a_size_never_signed_has_no_checkpoint(
    client: TestClient, db: Session, auditor: dict[str, str], size: str
) -> None:
    grow(db, 0, 5)
    checkpoint(client, auditor)
    assert_problem(client.get(f"/v1/audit/checkpoints/{size}", headers=auditor), 404, "no checkpoint")


# Entries


def test_entries_come_back_as_the_exact_bytes_in_index_order(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    odd = [b"", b"\x00\xff not utf-8 \xfe", "émoji ✓".encode(), b"\n\r\t"]
    tree.append_many(db, odd, at=AT)
    db.commit()
    page = client.get("/v1/audit/entries", params={"start": 0}, headers=auditor).json()
    assert page == {
        "start": 0,
        "end": 4,
        "tree_size": 4,
        "next": None,
        "entries": [{"index": i, "entry": base64.b64encode(data).decode()} for i, data in enumerate(odd)],
    }


def test_entries_page_through_a_range_with_next(
    client: TestClient, db: Session, auditor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    grow(db, 0, 10)
    monkeypatch.setattr(tree, "MAX_ENTRIES_PER_READ", 4)
    seen: list[bytes] = []
    pages: list[tuple[int, int, int | None]] = []
    start: int | None = 0
    while start is not None:
        page = client.get("/v1/audit/entries", params={"start": start}, headers=auditor).json()
        pages.append((page["start"], page["end"], page["next"]))
        seen += [base64.b64decode(item["entry"]) for item in page["entries"]]
        start = page["next"]
    assert pages == [(0, 4, 4), (4, 8, 8), (8, 10, None)]
    assert seen == [entry(i) for i in range(10)]
    bounded = client.get("/v1/audit/entries", params={"start": 2, "end": 7}, headers=auditor).json()
    assert (bounded["end"], bounded["next"], bounded["tree_size"]) == (6, 6, 10)
    assert [item["index"] for item in bounded["entries"]] == [2, 3, 4, 5]


def test_a_page_holds_at_most_ten_thousand_entries(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    grow(db, 0, 10_003)
    page = client.get("/v1/audit/entries", params={"start": 1}, headers=auditor).json()
    assert (page["start"], page["end"], page["next"], len(page["entries"])) == (1, 10_001, 10_001, 10_000)
    rest = client.get("/v1/audit/entries", params={"start": page["next"]}, headers=auditor).json()
    assert [item["index"] for item in rest["entries"]] == [10_001, 10_002] and rest["next"] is None


def test_the_empty_log_has_an_empty_first_page(client: TestClient, auditor: dict[str, str]) -> None:
    page = client.get("/v1/audit/entries", headers=auditor).json()
    assert page == {"start": 0, "end": 0, "tree_size": 0, "entries": [], "next": None}


# Proofs


def test_inclusion_proofs_verify_against_the_signed_root(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    leaves = grow(db, 0, 21)
    signed, _ = checkpoint(client, auditor)
    for index in range(21):
        proof = client.get(
            "/v1/audit/proofs/inclusion", params={"index": index, "tree_size": 21}, headers=auditor
        ).json()
        assert (proof["index"], proof["tree_size"]) == (index, 21)
        leaf = base64.b64decode(proof["leaf_hash"])
        path = [base64.b64decode(h) for h in proof["proof"]]
        assert leaf == leaves[index]
        assert merkle.verify_inclusion(leaf, index, 21, path, signed.root_hash)
        assert not merkle.verify_inclusion(leaves[(index + 1) % 21], index, 21, path, signed.root_hash)


def test_consistency_proofs_link_every_pair_of_checkpoints(
    client: TestClient, db: Session, auditor: dict[str, str]
) -> None:
    signed: list[Checkpoint] = []
    for end in (1, 2, 7, 8, 20):
        grow(db, signed[-1].size if signed else 0, end)
        signed.append(checkpoint(client, auditor)[0])
    for old in signed:
        for new in signed:
            if old.size > new.size:
                continue
            answer = client.get(
                "/v1/audit/proofs/consistency",
                params={"first": old.size, "second": new.size},
                headers=auditor,
            ).json()
            assert (answer["first"], answer["second"]) == (old.size, new.size)
            proof = [base64.b64decode(h) for h in answer["proof"]]
            assert merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)


# Requests the log cannot answer


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/v1/audit/entries?start=10", "start 10 is past the last entry (9)"),
        ("/v1/audit/entries?start=12&end=14", "end 14 is beyond the audit log, which has 10 entries"),
        ("/v1/audit/entries?start=5&end=3", "start 5 is after end 3"),
        ("/v1/audit/entries?start=0&end=11", "end 11 is beyond the audit log"),
        ("/v1/audit/entries?start=-1", "start: input should be greater than or equal to 0"),
        ("/v1/audit/entries?start=one", "start must be a whole number, not 'one'"),
        ("/v1/audit/entries?start=1.5", "start must be a whole number"),
        ("/v1/audit/proofs/inclusion?index=10&tree_size=10", "leaf index 10 is not in a tree of size 10"),
        ("/v1/audit/proofs/inclusion?index=3&tree_size=11", "tree size 11 is outside the audit log"),
        ("/v1/audit/proofs/inclusion?index=0&tree_size=0", "a tree of size 0 has no leaf 0"),
        (
            "/v1/audit/proofs/inclusion?index=-1&tree_size=5",
            "index: input should be greater than or equal to 0",
        ),
        ("/v1/audit/proofs/inclusion?index=x&tree_size=5", "index must be a whole number, not 'x'"),
        ("/v1/audit/proofs/inclusion?index=1", "tree_size is required"),
        (
            "/v1/audit/proofs/inclusion?index=1&tree_size=99999999999999999999999",
            "tree_size: input should be",
        ),
        ("/v1/audit/proofs/consistency?first=6&second=5", "no consistency proof from size 6 to size 5"),
        ("/v1/audit/proofs/consistency?first=2&second=11", "second size 11 is outside the audit log"),
        ("/v1/audit/proofs/consistency?first=-2&second=5", "first: input should be greater than or equal"),
        ("/v1/audit/proofs/consistency?first=&second=5", "first must be a whole number, not ''"),
        ("/v1/audit/proofs/consistency?first=1", "second is required"),
        ("/v1/audit/checkpoints/ten", "tree_size must be a whole number, not 'ten'"),
        ("/v1/audit/checkpoints/-1", "tree_size: input should be greater than or equal to 0"),
    ],
)
def test_requests_the_log_cannot_answer_are_400_with_what_to_ask(
    client: TestClient, db: Session, auditor: dict[str, str], path: str, detail: str
) -> None:
    grow(db, 0, 10)
    response = client.get(path, headers=auditor)
    assert_problem(response, 400, detail)
    assert response.json()["type"].endswith(("/audit-range", "/malformed-request"))


def test_a_bad_request_without_a_token_is_still_401(client: TestClient) -> None:
    assert_problem(client.get("/v1/audit/entries?start=nope"), 401)


# Concurrency


def test_concurrent_signers_write_one_checkpoint_per_size(fresh_database_url: str) -> None:
    engine = create_db_engine(fresh_database_url)
    sessions = session_factory(engine)
    checkpoints = Checkpoints(
        signer=parse_private_key(generate_private_key("test.example/audit")), clock=FakeClock()
    )
    errors: list[BaseException] = []

    def signer() -> None:
        try:
            for _ in range(15):
                checkpoints.sign_now(sessions)
        except BaseException as error:  # reported below
            errors.append(error)

    def appender() -> None:
        try:
            for i in range(15):
                with sessions() as session:
                    tree.append_many(session, [entry(i), entry(i + 100)], at=AT)
                    session.commit()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=signer) for _ in range(6)] + [threading.Thread(target=appender)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        final = checkpoints.sign_now(sessions)
        with sessions() as session:
            rows = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size))).all()
            assert final.tree_size == 30 == rows[-1].tree_size
            assert len({row.tree_size for row in rows}) == len(rows)
            for row in rows:  # each signs a size that was committed, with that size's root
                signed = parse_checkpoint(open_note(row.note, [checkpoints.verifier]))
                assert signed.size == row.tree_size and row.tree_size % 2 == 0
                assert signed.root_hash == row.root_hash == tree.root(session, row.tree_size)
    finally:
        engine.dispose()
