"""The server's log runs the known-answer vectors the auditor runs (tests/vectors/*.json): the tree
over the database gives transparency-dev's roots and proofs, and the server signs Go's note and the
log's checkpoints byte for byte."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select
from support.core import FakeClock
from support.vectors import load

from broker.audit import tree
from broker.audit.checkpoints import Checkpoints, load_signer
from broker.audit.models import AuditEntry
from broker.audit.verify import verify_log

MERKLE, NOTE, CHECKPOINT = load("merkle"), load("note"), load("checkpoint")
ENTRIES = [bytes.fromhex(entry) for entry in MERKLE["entries"]]
ROOTS = [bytes.fromhex(root) for root in MERKLE["roots"]]
SIGNED_LOG = CHECKPOINT["signed_log"]
AT = FakeClock().now


def hashes(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def test_the_stored_tree_has_the_known_root_at_every_size(db: Session) -> None:
    for size, entry in enumerate(ENTRIES, start=1):
        tree.append(db, entry, at=AT)
        assert [tree.root(db, n) for n in range(size + 1)] == ROOTS[: size + 1]
    stored = db.exec(select(AuditEntry.entry, AuditEntry.leaf_hash).order_by(col(AuditEntry.index))).all()
    assert [row.entry for row in stored] == ENTRIES
    assert stored[0].leaf_hash == ROOTS[1]  # a one-leaf tree's root is its leaf's hash


@pytest.mark.parametrize("vector", MERKLE["inclusion"], ids=lambda v: f"{v['index']} in {v['tree_size']}")
def test_the_stored_tree_gives_the_known_inclusion_proof(db: Session, vector: dict[str, Any]) -> None:
    tree.append_many(db, ENTRIES, at=AT)
    assert tree.inclusion_proof(db, vector["index"], vector["tree_size"]) == hashes(vector["proof"])


@pytest.mark.parametrize("vector", MERKLE["consistency"], ids=lambda v: f"{v['first']} to {v['second']}")
def test_the_stored_tree_gives_the_known_consistency_proof(db: Session, vector: dict[str, Any]) -> None:
    tree.append_many(db, ENTRIES, at=AT)
    assert tree.consistency_proof(db, vector["first"], vector["second"]) == hashes(vector["proof"])


def test_the_servers_key_loading_signs_the_go_note(tmp_path: Path) -> None:
    key = NOTE["keys"]["PeterNeumann"]
    signer = load_signer(private_key=key["private"], key_dir=tmp_path, origin="ignored.example/audit")
    assert signer.verifier_key() == key["verifier"]
    assert signer.sign(NOTE["text"]) == NOTE["signed"]["PeterNeumann"]


def test_the_server_signs_the_known_checkpoints_and_verifies_them(db: Session, tmp_path: Path) -> None:
    signer = load_signer(private_key=SIGNED_LOG["private_key"], key_dir=tmp_path, origin=SIGNED_LOG["origin"])
    checkpoints = Checkpoints(signer, FakeClock())
    assert checkpoints.origin == SIGNED_LOG["origin"]
    assert checkpoints.verifier_key() == SIGNED_LOG["verifier_key"]
    for vector in SIGNED_LOG["checkpoints"]:
        tree.append_many(db, ENTRIES[tree.size(db) : vector["tree_size"]], at=AT)
        signed = checkpoints.current(db)
        assert signed.tree_size == vector["tree_size"]
        assert signed.root_hash == base64.b64decode(vector["root_hash"])
        assert signed.note == vector["note"]
    report = verify_log(db, checkpoints.verifier, origin=checkpoints.origin)
    assert report.ok, report.problems
    assert (report.tree_size, report.checkpoints, report.root) == (len(ENTRIES), 4, ROOTS[-1])
