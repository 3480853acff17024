"""Tampering with the stored log is caught by the server's `audit verify` and by the offline auditor.

The log here holds real events (an offer, a consent, reads). Both verifiers first pass and remember a
checkpoint; then someone with write access to the database edits, deletes, reorders, inserts or
truncates entries, or restores an older copy. Both verifiers must then fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from support.core import bearer
from support.oauth import BrandCredentials, authorized

from broker.audit import tree
from broker.audit import verify as server
from broker.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditNode
from broker.errors import PROBLEM_BASE
from broker.runtime import Runtime
from clients.auditor import parse_verifier_key
from clients.auditor import verify as offline
from clients.auditor.api import AuditorClient, HTTPProblem
from clients.auditor.tlog import leaf_hash


@pytest.fixture
def auditor(client: TestClient, runtime: Runtime, db: Session) -> Iterator[AuditorClient]:
    """The offline auditor's client, talking to the app in-process."""
    _, token = runtime.auditors.create(db, "Independent Audit Ltd")
    db.commit()

    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.content
        )
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.items()), content=answer.content
        )

    with AuditorClient("http://127.0.0.1:8000", token, transport=httpx.MockTransport(forward)) as http:
        yield http


@pytest.fixture
def remembered(
    client: TestClient,
    brand: BrandCredentials,
    offer: dict[str, Any],
    customer: str,
    runtime: Runtime,
    db: Session,
    auditor: AuditorClient,
) -> tuple[offline.AuditorState, server.Remembered]:
    """A log of real events that both verifiers have checked once; what each remembers of it."""
    tokens = authorized(client, brand, offer)
    for _ in range(5):
        assert client.get("/v1/profile", headers=bearer(tokens["access_token"])).status_code == 200
    report = offline.verify_log(auditor, key=parse_verifier_key(runtime.checkpoints.verifier_key()))
    assert report.verified, report.problems
    checked = server_verify(runtime, db)
    assert checked.ok, checked.problems
    assert checked.tree_size == report.checkpoint.size >= 7  # type: ignore[union-attr]
    return report.new_state(), server.Remembered.of(checked)


def server_verify(
    runtime: Runtime, db: Session, remembered: server.Remembered | None = None
) -> server.Report:
    return server.verify_log(
        db, runtime.checkpoints.verifier, origin=runtime.checkpoints.origin, remembered=remembered
    )


def _entry(db: Session, index: int) -> AuditEntry:
    row = db.get(AuditEntry, index)
    assert row is not None
    return row


def edit(db: Session, *, fix_leaf: bool) -> None:
    row = _entry(db, 4)
    forged = row.entry.replace(b'"actor":"brand"', b'"actor":"broker"')
    assert forged != row.entry
    values: dict[str, Any] = {"entry": forged} | ({"leaf_hash": leaf_hash(forged)} if fix_leaf else {})
    db.exec(update(AuditEntry).where(col(AuditEntry.index) == 4).values(**values))


def remove(db: Session) -> None:
    db.exec(delete(AuditEntry).where(col(AuditEntry.index) == 3))


def swap(db: Session) -> None:
    first, second = _entry(db, 3), _entry(db, 4)
    a, b = (first.entry, first.leaf_hash), (second.entry, second.leaf_hash)
    for index, (entry, leaf) in ((3, b), (4, a)):
        db.exec(update(AuditEntry).where(col(AuditEntry.index) == index).values(entry=entry, leaf_hash=leaf))


def insert(db: Session) -> None:
    size = tree.size(db)
    for index in range(size - 1, 2, -1):  # shift entries 3.. up by one, from the top
        db.exec(update(AuditEntry).where(col(AuditEntry.index) == index).values(index=index + 1))
    forged = _entry(db, 2).entry.replace(b'"kind":"', b'"kind":"x')
    db.add(
        AuditEntry(index=3, entry=forged, leaf_hash=leaf_hash(forged), created_at=_entry(db, 2).created_at)
    )
    db.exec(update(AuditHead).values(size=size + 1))


def truncate(db: Session) -> None:
    """Cut the log back to 3 entries, and hide it: the tree and every checkpoint are rebuilt to match."""
    kept = db.exec(select(AuditEntry.entry, AuditEntry.created_at).where(col(AuditEntry.index) < 3)).all()
    for table in (AuditEntry, AuditNode, AuditHead, AuditCheckpoint):
        db.exec(delete(table))
    for entry, at in sorted(kept, key=lambda row: row[1]):
        tree.append(db, entry, at=at)


def restore_older(db: Session) -> None:
    """An older backup: the same first entries, a different history after them, all hashes and
    checkpoints consistent with each other (the operator re-signs with the real key)."""
    truncate(db)
    tree.append(db, b'{"kind":"grant.created","v":1}', at=_entry(db, 0).created_at)


def foreign_checkpoint(db: Session) -> None:
    """A checkpoint note for the current size signed by someone else's key, planted in the database."""
    from clients.auditor import Signer, format_checkpoint, generate_private_key, parse_private_key
    from clients.auditor.tlog import Checkpoint

    size = tree.size(db)
    signer: Signer = parse_private_key(generate_private_key("127.0.0.1:8000/audit"))
    text = format_checkpoint(Checkpoint("127.0.0.1:8000/audit", size, tree.root(db, size)))
    db.exec(delete(AuditCheckpoint).where(col(AuditCheckpoint.tree_size) == size))
    db.add(
        AuditCheckpoint(
            tree_size=size,
            root_hash=tree.root(db, size),
            note=signer.sign(text),
            created_at=_entry(db, 0).created_at,
        )
    )


ATTACKS: dict[str, Callable[[Session], None]] = {
    "edit-entry": lambda db: edit(db, fix_leaf=False),
    "edit-entry-and-its-leaf-hash": lambda db: edit(db, fix_leaf=True),
    "delete-entry": remove,
    "reorder-entries": swap,
    "insert-entry": insert,
    "truncate": truncate,
    "restore-older-database": restore_older,
    "checkpoint-signed-by-another-key": foreign_checkpoint,
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_tampering_is_caught_by_both_verifiers(
    attack: str,
    remembered: tuple[offline.AuditorState, server.Remembered],
    runtime: Runtime,
    db: Session,
    auditor: AuditorClient,
) -> None:
    state, last_checked = remembered
    ATTACKS[attack](db)
    db.commit()

    checked = server_verify(runtime, db, last_checked)
    assert not checked.ok, f"{attack}: the server's verification passed"

    verified, why = offline_verdict(auditor, state)
    assert not verified, f"{attack}: the offline verification passed"
    assert why == f"{PROBLEM_BASE}audit-integrity" or not why.startswith(PROBLEM_BASE), why


def offline_verdict(auditor: AuditorClient, state: offline.AuditorState) -> tuple[bool, str]:
    """Whether the offline verifier passed, and why not: its problems, or the problem type of the
    server's refusal to sign (it checks a new checkpoint extends the last one, and will not if not)."""
    try:
        report = offline.verify_log(auditor, state=state)
    except HTTPProblem as refused:
        return False, refused.type
    return report.verified, "; ".join(report.problems)
