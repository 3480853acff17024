"""C2SP signed notes and checkpoints, checked against golang.org/x/mod/sumdb/note's test vectors
(note_test.go: TestNewVerifier, TestNewSigner, TestSign, TestOpen), the C2SP example and the
checkpoints Consentry's log signs: tests/vectors/note.json and checkpoint.json, which the server runs
too (tests/broker/audit/test_vectors.py)."""

from __future__ import annotations

import base64
import dataclasses
import inspect
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.vectors import load

import clients.auditor
import clients.auditor.tlog
from clients.auditor import (
    Checkpoint,
    NoteError,
    Verifier,
    format_checkpoint,
    generate_private_key,
    open_note,
    parse_checkpoint,
    parse_private_key,
    parse_verifier_key,
)
from clients.auditor.tlog import MAX_NOTE_BYTES, MAX_SIGNATURES

NOTE, CHECKPOINT = load("note"), load("checkpoint")
PETER_VKEY = NOTE["keys"]["PeterNeumann"]["verifier"]
PETER_SKEY = NOTE["keys"]["PeterNeumann"]["private"]
ENOCH_VKEY = NOTE["keys"]["EnochRoot"]["verifier"]
TEXT = NOTE["text"]
PETER_B64 = NOTE["signatures"]["PeterNeumann"]
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_B64 = NOTE["signatures"]["EnochRoot"]
ENOCH_SIG = f"— EnochRoot {ENOCH_B64}\n"
# Go slices bytes where Python slices characters: "— " is 4 bytes in UTF-8 but 2 characters.
GO_OFFSET_60 = 58
C2SP = CHECKPOINT["c2sp_example"]
C2SP_CHECKPOINT = C2SP["text"]
SIGNED_LOG = CHECKPOINT["signed_log"]


@pytest.fixture
def peter() -> Verifier:
    return parse_verifier_key(PETER_VKEY)


@pytest.fixture
def enoch() -> Verifier:
    return parse_verifier_key(ENOCH_VKEY)


def _manglings(key: str) -> list[str]:
    """Every proper substring of `key`, and `key` with each character incremented (as the Go tests)."""
    substrings = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    bumped = [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return [s for s in substrings if s != key] + bumped


@pytest.mark.parametrize("name", ["PeterNeumann", "EnochRoot"])
def test_verifier_keys_of_the_go_vectors_parse(name: str) -> None:
    key = NOTE["keys"][name]
    verifier = parse_verifier_key(key["verifier"])
    assert verifier.name == name
    assert verifier.key_id == bytes.fromhex(key["key_id"])
    assert verifier.verifier_key() == key["verifier"]


def test_every_mangled_verifier_key_is_refused() -> None:
    for mangled in _manglings(PETER_VKEY):
        with pytest.raises(NoteError):
            parse_verifier_key(mangled)


@pytest.mark.parametrize(
    ("vkey", "reason"),
    [
        # The first two from TestNewVerifier, key ids adjusted so only the key data is wrong.
        ("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==", "not canonical"),
        ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not an Ed25519 key"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "without spaces"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "non-empty"),
        ("PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
    ],
)
def test_verifier_key_errors_say_what_is_wrong(vkey: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_verifier_key(vkey)


def test_private_key_of_the_go_vector_gives_the_matching_verifier_key() -> None:
    signer = parse_private_key(PETER_SKEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert signer.verifier_key() == PETER_VKEY


def test_every_mangled_private_key_is_refused() -> None:
    for mangled in _manglings(PETER_SKEY):
        with pytest.raises(NoteError):
            parse_private_key(mangled)


def test_private_key_errors_do_not_echo_the_key() -> None:
    with pytest.raises(NoteError) as error:
        parse_private_key(PETER_SKEY.replace("c74f20a3", "c74f20a4"))
    assert "AYEKFALVFGyNhPJEMzD1QIDr" not in str(error.value)


def test_signing_reproduces_the_go_signed_note() -> None:
    assert (
        parse_private_key(PETER_SKEY).sign(TEXT) == TEXT + "\n" + PETER_SIG == NOTE["signed"]["PeterNeumann"]
    )


def test_opening_the_go_note_returns_its_text(peter: Verifier) -> None:
    assert open_note(TEXT + "\n" + PETER_SIG, [peter]) == TEXT


def test_signatures_by_unknown_keys_are_ignored(peter: Verifier, enoch: Verifier) -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, [peter]) == TEXT
    assert open_note(note, [enoch]) == TEXT
    assert open_note(note, [peter, enoch]) == TEXT


def test_a_note_without_a_known_signature_is_refused(enoch: Verifier) -> None:
    with pytest.raises(NoteError, match=r"no signature by a known key: signed by PeterNeumann\+c74f20a3"):
        open_note(TEXT + "\n" + PETER_SIG, [enoch])
    with pytest.raises(NoteError, match="known: none"):
        open_note(TEXT + "\n" + PETER_SIG, [])


def test_a_signature_sharing_only_the_name_or_only_the_key_id_is_someone_elses(peter: Verifier) -> None:
    other_id = PETER_SIG.replace("x08g", "xxxx")  # same name, another key id
    other_name = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")  # same key id, another name
    for line in (other_id, other_name):
        with pytest.raises(NoteError, match="no signature by a known key"):
            open_note(TEXT + "\n" + line, [peter])
        assert open_note(TEXT + "\n" + line + PETER_SIG, [peter]) == TEXT


def test_a_bad_signature_by_a_known_key_refuses_the_whole_note(peter: Verifier, enoch: Verifier) -> None:
    forged = PETER_SIG[:GO_OFFSET_60] + "ABCD" + PETER_SIG[GO_OFFSET_60:]
    with pytest.raises(NoteError, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(TEXT + "\n" + forged, [peter])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(TEXT + "\n" + ENOCH_SIG + forged, [peter, enoch])


def test_duplicate_signatures_are_checked_once(peter: Verifier) -> None:
    forged_enoch = ENOCH_SIG[:55] + "ABCD" + ENOCH_SIG[55:]
    note = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + forged_enoch
    assert open_note(note, [peter]) == TEXT


def test_a_changed_text_does_not_verify(peter: Verifier) -> None:
    tampered = TEXT.replace("answer", "Answer")
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(tampered + "\n" + PETER_SIG, [peter])


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\udcff" + TEXT + "\n" + PETER_SIG,  # Go's "\xff": not UTF-8
        TEXT + "\n" + f"— Bad Name {PETER_B64}",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace("— ", "- "),
        TEXT + "\n" + PETER_SIG.replace("=\n", "\n"),  # unpadded base64
        TEXT + "\n" + "— PeterNeumann AAAA\n",  # shorter than a key id and one byte
        (TEXT + "\n" + PETER_SIG).replace("\n", "\r\n"),
        TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1),
    ],
)
def test_malformed_notes_are_refused(note: str, peter: Verifier) -> None:
    with pytest.raises(NoteError, match="malformed"):
        open_note(note, [peter])


def test_an_oversized_note_is_refused_before_parsing(peter: Verifier) -> None:
    with pytest.raises(NoteError, match="limit"):
        open_note("x" * MAX_NOTE_BYTES + "\n\n" + PETER_SIG, [peter])
    with pytest.raises(NoteError, match="limit"):
        open_note("é" * (MAX_NOTE_BYTES // 2) + "\n\n" + PETER_SIG, [peter])  # counted in UTF-8 bytes


def test_two_known_keys_sharing_a_name_and_key_id_are_ambiguous(peter: Verifier) -> None:
    impostor = dataclasses.replace(peter, public_key=bytes(32))
    object.__setattr__(impostor, "key_id", peter.key_id)  # a forced collision
    assert open_note(TEXT + "\n" + PETER_SIG, [peter, peter]) == TEXT
    with pytest.raises(NoteError, match="ambiguous key"):
        open_note(TEXT + "\n" + PETER_SIG, [peter, impostor])


def test_a_fresh_signer_round_trips_text_with_empty_lines() -> None:
    signer = parse_private_key(generate_private_key("example.com/audit"))
    verifier = parse_verifier_key(signer.verifier_key())
    text = "first\n\nthird after an empty line\n\n"
    assert open_note(signer.sign(text), [verifier]) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no newline", "end with a newline"),
        ("tab\there\n", "U\\+0009"),
        ("x" * MAX_NOTE_BYTES + "\n", "limit"),
    ],
)
def test_signing_refuses_text_no_verifier_could_open(text: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        parse_private_key(PETER_SKEY).sign(text)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "no\u00a0break", "new\nline"])
def test_key_names_must_be_non_empty_without_spaces_or_plus(name: str) -> None:
    with pytest.raises(NoteError, match="key name"):
        generate_private_key(name)


def test_the_c2sp_example_checkpoint_parses() -> None:
    checkpoint = parse_checkpoint(C2SP_CHECKPOINT)
    assert checkpoint.origin == C2SP["origin"]
    assert checkpoint.size == C2SP["tree_size"]
    assert checkpoint.root_hash == base64.b64decode(C2SP["root_hash"])
    assert checkpoint.extensions == ()
    assert format_checkpoint(checkpoint) == C2SP_CHECKPOINT


@pytest.mark.parametrize("vector", SIGNED_LOG["checkpoints"], ids=lambda v: f"size {v['tree_size']}")
def test_signing_a_checkpoint_reproduces_the_logs_note(vector: dict[str, Any]) -> None:
    signer = parse_private_key(SIGNED_LOG["private_key"])
    assert signer.verifier_key() == SIGNED_LOG["verifier_key"]
    checkpoint = Checkpoint(SIGNED_LOG["origin"], vector["tree_size"], base64.b64decode(vector["root_hash"]))
    assert format_checkpoint(checkpoint) == vector["text"]
    assert signer.sign(vector["text"]) == vector["note"]
    verifier = parse_verifier_key(SIGNED_LOG["verifier_key"])
    assert parse_checkpoint(open_note(vector["note"], [verifier])) == checkpoint


def test_extension_lines_are_kept_in_order() -> None:
    text = C2SP_CHECKPOINT + "ext one\next two\n"
    assert parse_checkpoint(text).extensions == ("ext one", "ext two")
    assert format_checkpoint(parse_checkpoint(text)) == text


ROOT_LINE = C2SP["root_hash"]


@pytest.mark.parametrize(
    "text",
    [
        "origin\n5\n" + ROOT_LINE,  # no final newline
        "origin\n5\n",
        "\n5\n" + ROOT_LINE + "\n",
        "origin\n05\n" + ROOT_LINE + "\n",
        "origin\n-1\n" + ROOT_LINE + "\n",
        "origin\n+5\n" + ROOT_LINE + "\n",
        "origin\n 5\n" + ROOT_LINE + "\n",
        "origin\n1e3\n" + ROOT_LINE + "\n",
        "origin\n\u0663\n" + ROOT_LINE + "\n",  # ARABIC-INDIC DIGIT THREE
        f"origin\n{2**64}\n" + ROOT_LINE + "\n",
        "origin\n5\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "origin\n5\n" + ROOT_LINE[:-2] + "J=\n",  # non-canonical trailing bits
        "origin\n5\n" + ROOT_LINE.rstrip("=") + "\n",
        "origin\n5\n" + ROOT_LINE + "\n\n",  # an empty extension line
        "origin\n5\n" + ROOT_LINE + "\nbell\x07\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError, match="malformed"):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "fields",
    [
        {"origin": ""},
        {"origin": "two\nlines"},
        {"size": -1},
        {"size": 2**64},
        {"root_hash": bytes(33)},
        {"extensions": ("",)},
    ],
)
def test_a_checkpoint_cannot_be_built_malformed(fields: dict[str, object]) -> None:
    valid: dict[str, object] = {"origin": "o", "size": 1, "root_hash": bytes(32), "extensions": ()}
    with pytest.raises(NoteError, match="malformed checkpoint"):
        Checkpoint(**(valid | fields))  # type: ignore[arg-type]


_line = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@given(
    origin=_line,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_line, max_size=3),
)
def test_checkpoints_round_trip_through_a_signed_note(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    signer = parse_private_key(PETER_SKEY)
    note = signer.sign(format_checkpoint(checkpoint))
    assert parse_checkpoint(open_note(note, [signer.verifier])) == checkpoint


def test_a_tampered_checkpoint_is_refused(peter: Verifier) -> None:
    note = parse_private_key(PETER_SKEY).sign(C2SP_CHECKPOINT)
    other_root = base64.b64encode(bytes(32)).decode()
    for tampered in (note.replace("20852163", "20852164"), note.replace(ROOT_LINE, other_root)):
        with pytest.raises(NoteError, match="invalid signature"):
            open_note(tampered, [peter])


@pytest.mark.parametrize("package", [clients.auditor, clients.auditor.tlog], ids=lambda p: p.__name__)
def test_the_public_api_is_exactly_all(package: ModuleType) -> None:
    for name in package.__all__:
        getattr(package, name)  # clients.auditor loads its names when first used
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not inspect.ismodule(value)  # submodules: tlog, merkle, note, cli
    }
    assert set(package.__all__) == public
    assert len(package.__all__) == len(set(package.__all__))
