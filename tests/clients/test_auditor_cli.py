"""`consentry-audit checkpoint verify`: 0 when verified, 1 when verification fails, 2 on misuse."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.auditor import (
    Checkpoint,
    Signer,
    format_checkpoint,
    generate_private_key,
    leaf_hash,
    parse_private_key,
    root_hash,
)
from clients.auditor.cli import app, main
from clients.auditor.tlog import MAX_NOTE_BYTES

ORIGIN = "audit.example.com/audit"
CHECKPOINT = Checkpoint(ORIGIN, 3, root_hash([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")]))
ROOT_B64 = base64.b64encode(CHECKPOINT.root_hash).decode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return parse_private_key(generate_private_key(ORIGIN))


@pytest.fixture
def note_file(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "checkpoint.note"
    path.write_text(signer.sign(format_checkpoint(CHECKPOINT)), encoding="utf-8")
    return path


runner = CliRunner()


def test_a_signed_checkpoint_verifies_and_is_shown(note_file: Path, signer: Signer) -> None:
    result = runner.invoke(app, ["checkpoint", "verify", str(note_file), "--key", signer.verifier_key()])
    assert result.exit_code == 0, result.output
    assert f"signed by {ORIGIN}+{signer.key_id.hex()}" in result.stdout
    for value in (ORIGIN, "3", ROOT_B64):
        assert value in result.stdout
    assert result.stderr == ""


def test_json_output_is_machine_readable(note_file: Path, signer: Signer) -> None:
    args = ["checkpoint", "verify", str(note_file), "--key", signer.verifier_key(), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "verified": True,
        "key": f"{ORIGIN}+{signer.key_id.hex()}",
        "origin": ORIGIN,
        "size": 3,
        "root_hash": ROOT_B64,
        "extensions": [],
    }


def test_dash_reads_the_note_from_standard_input(note_file: Path, signer: Signer) -> None:
    args = ["checkpoint", "verify", "-", "--key", signer.verifier_key(), "--json"]
    result = runner.invoke(app, args, input=note_file.read_bytes())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["size"] == 3


def test_a_tampered_checkpoint_fails_with_the_reason_on_stderr(note_file: Path, signer: Signer) -> None:
    note_file.write_text(note_file.read_text(encoding="utf-8").replace("\n3\n", "\n4\n"), encoding="utf-8")
    result = runner.invoke(app, ["checkpoint", "verify", str(note_file), "--key", signer.verifier_key()])
    assert result.exit_code == 1
    assert "checkpoint verification failed: invalid signature" in result.stderr
    assert result.stdout == ""


def test_a_checkpoint_signed_by_another_key_fails(note_file: Path) -> None:
    stranger = parse_private_key(generate_private_key(ORIGIN))
    result = runner.invoke(app, ["checkpoint", "verify", str(note_file), "--key", stranger.verifier_key()])
    assert result.exit_code == 1
    assert "no signature by a known key" in result.stderr


def test_a_validly_signed_note_that_is_no_checkpoint_fails(tmp_path: Path, signer: Signer) -> None:
    path = tmp_path / "other.note"
    path.write_text(signer.sign("just a note\n"), encoding="utf-8")
    result = runner.invoke(app, ["checkpoint", "verify", str(path), "--key", signer.verifier_key()])
    assert result.exit_code == 1
    assert "malformed checkpoint" in result.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\xff\xfe not text\n\n", "not UTF-8"), (b"x" * (MAX_NOTE_BYTES + 1), "limit")],
)
def test_unreadable_notes_fail(tmp_path: Path, signer: Signer, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.note"
    path.write_bytes(content)
    result = runner.invoke(app, ["checkpoint", "verify", str(path), "--key", signer.verifier_key()])
    assert result.exit_code == 1
    assert reason in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["checkpoint", "verify", "{note}", "--key", "not+a+key"], "Invalid value for '--key'"),
        (["checkpoint", "verify", "{note}"], "Missing option '--key'"),
        (["checkpoint", "verify", "{missing}", "--key", "{key}"], "Invalid value for FILE"),
        (["checkpoint", "verify", "{note}", "--key", "{key}", "--yaml"], "No such option"),
        (["checkpoint", "verify"], "Missing argument"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], reason: str, note_file: Path, signer: Signer, tmp_path: Path
) -> None:
    values = {"note": str(note_file), "key": signer.verifier_key(), "missing": str(tmp_path / "missing")}
    result = runner.invoke(app, [arg.format(**values) for arg in args])
    assert result.exit_code == 2
    assert reason in result.stderr


def test_no_arguments_shows_help_with_the_command_groups() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "checkpoint" in result.output


def test_main_is_the_console_script_entry_point(
    note_file: Path, signer: Signer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "consentry-audit",
        "checkpoint",
        "verify",
        str(note_file),
        "--key",
        signer.verifier_key(),
        "--json",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out)["origin"] == ORIGIN
