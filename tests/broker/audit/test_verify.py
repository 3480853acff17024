"""`consentry audit verify` (broker.audit.verify): an untouched log verifies, and every way of
tampering with the stored log is caught and located, whatever the tamperer also fixed up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, update
from sqlmodel import Session, col
from support.core import FakeClock, cli_env

from broker.audit import tree
from broker.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditNode
from broker.audit.verify import Remembered, Report, verify_log
from broker.db import create_db_engine, session_factory
from broker.errors import AuditIntegrityError
from broker.runtime import Runtime
from clients.auditor.tlog import (
    Checkpoint,
    format_checkpoint,
    generate_private_key,
    merkle,
    parse_private_key,
)

AT = FakeClock().now
per_example = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def entry(i: int) -> bytes:
    return f'{{"kind":"grant.created","seq":{i}}}'.encode()


def signed_log(db: Session, runtime: Runtime, sizes: list[int]) -> None:
    """Grow the log to each size in turn and sign a checkpoint there."""
    size = tree.size(db)
    for target in sizes:
        tree.append_many(db, [entry(i) for i in range(size, target)], at=AT)
        runtime.checkpoints.current(db)
        size = target


def verify(db: Session, runtime: Runtime, **options: Any) -> Report:
    return verify_log(db, runtime.checkpoints.verifier, origin=runtime.checkpoints.origin, **options)


def kinds(report: Report) -> set[tuple[str, int | None]]:
    return {(problem.kind, problem.index) for problem in report.problems}


def set_entry(db: Session, at: int, **values: Any) -> None:
    db.exec(update(AuditEntry).where(col(AuditEntry.index) == at).values(**values))


def rebuild(db: Session, entries: list[bytes]) -> None:
    """What a careful tamperer does: rewrite the entries and every hash over them, keeping the checkpoints."""
    for table in (AuditEntry, AuditNode, AuditHead):
        db.exec(delete(table))
    tree.append_many(db, entries, at=AT)


# An untouched log


@pytest.mark.parametrize("sizes", [[0], [1], [1, 2, 3, 4], [5, 8, 16, 17], [0, 100, 255, 256, 257]])
def test_an_untouched_log_verifies(db: Session, runtime: Runtime, sizes: list[int]) -> None:
    signed_log(db, runtime, sizes)
    report = verify(db, runtime, batch_size=7)
    assert report.ok, report.problems
    n = sizes[-1]
    assert (report.tree_size, report.entries, report.checkpoints) == (n, n, len(set(sizes)))
    assert report.root == merkle.root_hash([merkle.leaf_hash(entry(i)) for i in range(n)])
    # Every complete subtree of [0, n) was compared: n leaves, n//2 pairs, n//4 quads …
    assert report.nodes == sum(n >> level for level in range(n.bit_length()))


def test_the_log_is_read_in_bounded_batches(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [10, 95])
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.get_bind(), "before_cursor_execute", record)
    try:
        assert verify(db, runtime, batch_size=10).ok
    finally:
        event.remove(db.get_bind(), "before_cursor_execute", record)
    reads = [s for s in statements if "FROM audit_entry" in s or "FROM audit_node" in s]
    assert reads and all("LIMIT" in s for s in reads if "DISTINCT" not in s)
    assert sum("FROM audit_entry" in s for s in reads) == 11  # ten batches of ten, then an empty one


@per_example
@given(n=st.integers(min_value=1, max_value=70), data=st.data())
def test_changing_any_entry_is_caught_at_its_index(db: Session, runtime: Runtime, n: int, data: Any) -> None:
    nested = db.begin_nested()
    try:
        signed_log(db, runtime, [n])
        index = data.draw(st.integers(min_value=0, max_value=n - 1))
        forged = b"forged " + entry(index)
        fix_leaf = data.draw(st.booleans())
        set_entry(db, index, entry=forged, **({"leaf_hash": merkle.leaf_hash(forged)} if fix_leaf else {}))
        report = verify(db, runtime, batch_size=8)
        assert not report.ok
        assert ("node", index) in kinds(report)
        assert (("leaf-hash", index) in kinds(report)) is not fix_leaf
        assert ("checkpoint-root", n) in kinds(report)
    finally:
        nested.rollback()


# The attacks


def test_editing_an_entry_without_fixing_its_leaf_hash(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [4, 10])
    set_entry(db, 6, entry=b'{"kind":"profile.read","seq":6}')
    # The checkpoint at 4, before the edit, still holds.
    assert kinds(verify(db, runtime)) == {("leaf-hash", 6), ("node", 6), ("checkpoint-root", 10)}


def test_editing_an_entry_and_its_leaf_hash(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [10])
    forged = b'{"kind":"profile.read","seq":6}'
    set_entry(db, 6, entry=forged, leaf_hash=merkle.leaf_hash(forged))
    # Only the leaf's stored hash is reported: the subtrees above it differ because it does.
    assert kinds(verify(db, runtime)) == {("node", 6), ("checkpoint-root", 10)}


def test_rewriting_an_entry_and_every_hash_over_it_is_caught_by_the_signed_checkpoints(
    db: Session, runtime: Runtime
) -> None:
    signed_log(db, runtime, [3, 9, 12])
    rebuild(db, [b"rewritten" if i == 5 else entry(i) for i in range(12)])
    report = verify(db, runtime)
    assert kinds(report) == {("checkpoint-root", 9), ("checkpoint-root", 12)}
    tree.append(db, entry(12), at=AT)
    with pytest.raises(AuditIntegrityError, match="does not extend the checkpoint signed at 12"):
        runtime.checkpoints.current(db)


def test_deleting_an_entry(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [2, 10])
    db.exec(delete(AuditEntry).where(col(AuditEntry.index) == 3))
    report = verify(db, runtime)
    assert {("missing-entry", 3), ("count", None), ("checkpoint-root", 10)} <= kinds(report)
    assert report.root is None
    assert "entry 3 is missing" in [p.detail for p in report.problems]
    assert ("checkpoint-root", 2) not in kinds(report)


def test_swapping_two_entries(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [10])
    set_entry(db, 2, index=-1)
    set_entry(db, 7, index=2)
    set_entry(db, -1, index=7)
    assert kinds(verify(db, runtime)) == {("node", 2), ("node", 7), ("checkpoint-root", 10)}


def test_inserting_an_entry_and_shifting_the_rest(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [10])
    for index in reversed(range(4, 10)):
        set_entry(db, index, index=index + 1)
    planted = b'{"kind":"grant.created","seq":"planted"}'
    db.add(AuditEntry(index=4, entry=planted, leaf_hash=merkle.leaf_hash(planted), created_at=AT))
    db.exec(update(AuditHead).values(size=11))
    report = verify(db, runtime)
    # Every entry from the planted one on sits where another one's hash is stored.
    shifted = {("node", index) for index in range(4, 10)}
    assert kinds(report) == shifted | {("missing-node", 10), ("checkpoint-root", 10)}


def test_truncating_the_log(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [4, 9, 12])
    db.exec(delete(AuditEntry).where(col(AuditEntry.index) >= 6))
    for level in range(4):  # and every subtree hash that covers a deleted entry
        db.exec(
            delete(AuditNode).where(
                col(AuditNode.level) == level, (col(AuditNode.position) + 1) * (1 << level) > 6
            )
        )
    db.exec(update(AuditHead).values(size=6))
    report = verify(db, runtime)
    assert kinds(report) == {("checkpoint-beyond", 9), ("checkpoint-beyond", 12)}
    assert "was truncated" in report.problems[0].detail
    with pytest.raises(AuditIntegrityError, match="has 6 entries but a checkpoint was signed at 12"):
        runtime.checkpoints.current(db)


def test_truncating_by_moving_the_head_back_only(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [8])
    db.exec(update(AuditHead).values(size=5))
    report = verify(db, runtime)
    expected = {("extra-entry", 5), ("extra-entry", 7), ("extra-node", 6), ("checkpoint-beyond", 8)}
    assert expected <= kinds(report)


def test_a_checkpoint_signed_by_another_key(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [5])
    tree.append_many(db, [entry(i) for i in range(5, 9)], at=AT)
    root = tree.root(db, 9)
    impostor = parse_private_key(generate_private_key(runtime.checkpoints.origin))
    note = impostor.sign(format_checkpoint(Checkpoint(runtime.checkpoints.origin, 9, root)))
    db.add(AuditCheckpoint(tree_size=9, root_hash=root, note=note, created_at=AT))
    report = verify(db, runtime)
    assert kinds(report) == {("checkpoint-signature", 9)}
    assert "no signature by a known key" in report.problems[0].detail


def test_a_checkpoint_row_that_is_not_what_its_note_signs(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [5, 8])
    db.exec(update(AuditCheckpoint).where(col(AuditCheckpoint.tree_size) == 5).values(root_hash=b"\x00" * 32))
    assert kinds(verify(db, runtime)) == {("checkpoint-note", 5)}


def test_a_head_far_beyond_the_entries_is_reported_quickly(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [6])
    db.exec(update(AuditHead).values(size=10**15))
    report = verify(db, runtime)
    assert {("missing-entry", 6), ("count", None)} <= kinds(report)
    assert report.problems_found < 20


def test_a_missing_subtree_hash(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [8])
    db.exec(delete(AuditNode).where(col(AuditNode.level) == 1, col(AuditNode.position) == 2))
    assert kinds(verify(db, runtime)) == {("missing-node", 4)}


def test_only_the_first_problems_are_kept_but_all_are_counted(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [40])
    db.exec(update(AuditEntry).values(leaf_hash=b"\x00" * 32))
    report = verify(db, runtime, max_problems=5)
    assert len(report.problems) == 5 and report.problems_found == 40
    assert report.as_json()["problems_found"] == 40 and not report.as_json()["ok"]


def test_a_restored_older_copy_is_caught_by_what_was_verified_before(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [4, 9])
    before = Remembered.of(verify(db, runtime))
    # An older copy with another history after entry 2, its checkpoints re-signed with the log's key:
    # consistent in itself, so only what was remembered outside the database gives it away.
    db.exec(delete(AuditCheckpoint))
    rebuild(db, [entry(i) if i < 3 else b"other history" for i in range(6)])
    runtime.checkpoints.current(db)
    assert verify(db, runtime).ok
    assert kinds(verify(db, runtime, remembered=before)) == {("remembered-size", 9)}
    tree.append_many(db, [b"more"] * 6, at=AT)
    runtime.checkpoints.current(db)
    assert kinds(verify(db, runtime, remembered=before)) == {("remembered-root", 9)}


def test_a_log_that_grew_since_it_was_remembered_verifies(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [0])
    empty = Remembered.of(verify(db, runtime))
    signed_log(db, runtime, [5, 11])
    report = verify(db, runtime, remembered=empty)
    assert report.ok
    assert verify(db, runtime, remembered=Remembered.of(report)).ok


def test_only_a_verified_log_is_remembered_and_the_form_round_trips(db: Session, runtime: Runtime) -> None:
    signed_log(db, runtime, [3])
    remembered = Remembered.of(verify(db, runtime))
    assert Remembered.from_json(json.loads(json.dumps(remembered.as_json()))) == remembered
    db.exec(delete(AuditEntry).where(col(AuditEntry.index) == 1))
    with pytest.raises(ValueError, match="only a log that verified"):
        Remembered.of(verify(db, runtime))
    for junk in (
        {},
        [],
        {"tree_size": -1, "root": remembered.as_json()["root"]},
        {"tree_size": 3, "root": "AA=="},
    ):
        with pytest.raises(ValueError, match="not a remembered verification"):
            Remembered.from_json(junk)


# The command


def test_consentry_audit_verify_exits_1_on_a_tampered_log(tmp_path: Path, fresh_database_url: str) -> None:
    env = cli_env(tmp_path / "var", fresh_database_url)
    consentry = str(Path(sys.executable).parent / "consentry")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([consentry, *args], env=env, capture_output=True, text=True, timeout=120)

    created = json.loads(run("auditors", "create", "--name", "Audit Co").stdout)
    assert set(created) == {"auditor_id", "name", "token"} and created["token"].startswith("cat_")
    assert run("audit", "checkpoint").stdout.split("\n")[:2] == ["127.0.0.1:8000/audit", "0"]
    ok = run("audit", "verify")
    assert ok.returncode == 0 and "the audit log verifies" in ok.stdout, ok.stderr

    engine = create_db_engine(fresh_database_url)
    try:
        with session_factory(engine)() as session:
            tree.append_many(session, [entry(i) for i in range(6)], at=AT)
            session.commit()
        assert run("audit", "checkpoint").stdout.split("\n")[1] == "6"
        with session_factory(engine)() as session:
            set_entry(session, 2, entry=b"edited")
            session.commit()
    finally:
        engine.dispose()
    bad = run("audit", "verify", "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert not report["ok"] and {"kind": "leaf-hash", "index": 2} in [
        {"kind": p["kind"], "index": p["index"]} for p in report["problems"]
    ]
    human = run("audit", "verify")
    assert human.returncode == 1 and "does not verify" in human.stdout and "leaf-hash" in human.stdout


def test_consentry_audit_verify_remembers_the_log_in_a_state_file(
    tmp_path: Path, fresh_database_url: str
) -> None:
    env = cli_env(tmp_path / "var", fresh_database_url)
    consentry = str(Path(sys.executable).parent / "consentry")
    state = tmp_path / "verified.json"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([consentry, *args], env=env, capture_output=True, text=True, timeout=120)

    engine = create_db_engine(fresh_database_url)
    try:
        with session_factory(engine)() as session:
            tree.append_many(session, [entry(i) for i in range(7)], at=AT)
            session.commit()
        assert run("audit", "checkpoint").returncode == 0
        assert run("audit", "verify", "--state", str(state)).returncode == 0
        assert json.loads(state.read_text())["tree_size"] == 7
        with session_factory(engine)() as session:  # an older backup comes back, checkpoints and all
            for table in (AuditCheckpoint, AuditEntry, AuditNode, AuditHead):
                session.exec(delete(table))
            tree.append_many(session, [entry(i) for i in range(5)], at=AT)
            session.commit()
        assert run("audit", "checkpoint").returncode == 0
        assert run("audit", "verify").returncode == 0  # the database alone cannot tell
        restored = run("audit", "verify", "--state", str(state), "--json")
        assert restored.returncode == 1
        assert [p["kind"] for p in json.loads(restored.stdout)["problems"]] == ["remembered-size"]
        assert json.loads(state.read_text())["tree_size"] == 7  # a failed run does not move it
    finally:
        engine.dispose()
    state.write_text("{not json")
    broken = run("audit", "verify", "--state", str(state))
    assert broken.returncode == 2 and "--state" in broken.stderr
