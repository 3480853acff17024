"""Signed notes (https://c2sp.org/signed-note): the format of Go's golang.org/x/mod/sumdb/note.

A signed note is its text (ending in a newline), a blank line, then one line per signature::

    — <key name> base64(4-byte key id ‖ signature over the text)

The key id is SHA-256(key name ‖ 0x0A ‖ key type ‖ public key)[:4]; keys travel as strings
``<name>+<hex key id>+base64(key type ‖ key)``. This module is the format alone, standard library
only: `open_note` checks signatures through any `NoteVerifier`, `sign_note` through any signing
function; the Ed25519 keys are in `clients.auditor.tlog.ed25519`.

Every failure (a malformed, oversized or unverifiable note or key) is one `NoteError` whose message
says what was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "NoteError",
    "NoteVerifier",
    "check_characters",
    "check_name",
    "decode_base64",
    "format_key",
    "key_id_of",
    "open_note",
    "parse_key",
    "sign_note",
]

MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_KEY_ID_PATTERN = re.compile(r"[0-9a-fA-F]{8}")
# ASCII controls other than newline, and lone surrogates (which UTF-8 cannot encode).
_FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\ud800-\udfff]")


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed, too large, or not signed by a known key."""


class NoteVerifier(Protocol):
    """A key that notes are checked against (`clients.auditor.tlog.ed25519.Verifier` is one)."""

    @property
    def name(self) -> str:
        """The key name on its signature lines."""
        ...

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id prefixed to its signatures."""
        ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's signature of `message`."""
        ...


def key_id_of(name: str, key: bytes) -> bytes:
    """The 4-byte id of the key `key` (its type byte, then the public key) named `name`."""
    return hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]


def format_key(name: str, key_id: bytes, key: bytes) -> str:
    """The key string ``<name>+<hex key id>+base64(key)`` (`key` begins with its type byte)."""
    return f"{name}+{key_id.hex()}+{base64.b64encode(key).decode()}"


def parse_key(value: str, what: str) -> tuple[str, bytes, bytes]:
    """Split ``<name>+<hex key id>+base64(key)`` into name, key id and key (type byte first)."""
    parts = value.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"malformed {what}: expected <name>+<hex key id>+<base64 key>")
    name, key_id, encoded = parts
    check_name(name, f"{what} name")
    if not _KEY_ID_PATTERN.fullmatch(key_id):
        raise NoteError(f"malformed {what}: the key id must be 8 hex digits")
    return name, bytes.fromhex(key_id), decode_base64(encoded, what)


def sign_note(text: str, name: str, key_id: bytes, sign: Callable[[bytes], bytes]) -> str:
    """The signed note: `text` (ending in a newline), a blank line, and the signature line of the key
    `name` with id `key_id`, whose signing function is `sign`."""
    if not text.endswith("\n"):
        raise NoteError("malformed note text: it must end with a newline")
    check_characters(text, "note text")
    message = text.encode()
    if len(message) > MAX_NOTE_BYTES:
        raise NoteError(f"note text is larger than the {MAX_NOTE_BYTES}-byte limit")
    encoded = base64.b64encode(key_id + sign(message)).decode()
    return f"{text}\n{_SIGNATURE_PREFIX}{name} {encoded}\n"


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> str:
    """The text of `note` once a signature by one of `verifiers` has been checked.

    Signatures by unknown keys are ignored. Raises `NoteError` if the note is malformed or larger
    than `MAX_NOTE_BYTES`, if a known key's signature does not verify, or if no known key signed it.
    """
    known = _index(verifiers)
    if len(note) > MAX_NOTE_BYTES:  # cheap bound first: a character is at least one byte
        raise NoteError(f"note is over the {MAX_NOTE_BYTES}-byte limit")
    check_characters(note, "note")
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise NoteError(f"note is over the {MAX_NOTE_BYTES}-byte limit")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line separates the text from its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("malformed note: it must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: {len(lines)} signature lines, more than {MAX_SIGNATURES}")
    verified: set[tuple[str, bytes]] = set()
    seen: list[str] = []
    for number, line in enumerate(lines, start=1):
        name, key_id, signature = _parse_signature_line(line, number)
        seen.append(f"{name}+{key_id.hex()}")
        verifier = known.get((name, key_id))
        if verifier is None or (name, key_id) in verified:
            continue
        if not verifier.verify(text.encode(), signature):
            raise NoteError(f"invalid signature for key {name}+{key_id.hex()}: altered or forged")
        verified.add((name, key_id))
    if not verified:
        expected = ", ".join(f"{name}+{key_id.hex()}" for name, key_id in known) or "none"
        raise NoteError(f"no signature by a known key: signed by {', '.join(seen)}; known: {expected}")
    return text


def check_name(name: str, what: str) -> None:
    """Refuse a key name that is empty, or holds a space or a '+'."""
    if not name or "+" in name or any(char.isspace() for char in name):
        raise NoteError(f"malformed {what} {name!r}: it must be non-empty, without spaces or '+'")


def check_characters(text: str, what: str) -> None:
    """Signed notes are UTF-8 without ASCII control characters but newline (signed-note, "Format")."""
    found = _FORBIDDEN.search(text)
    if found:
        raise NoteError(f"malformed {what}: it contains the character U+{ord(found.group()):04X}")


def decode_base64(value: str, what: str) -> bytes:
    """Strict, canonical, non-empty standard base64 (RFC 4648 §4): one encoding per byte string."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise NoteError(f"malformed {what}: not standard base64") from None
    if not raw or base64.b64encode(raw).decode() != value:
        raise NoteError(f"malformed {what}: not canonical standard base64")
    return raw


def _index(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        pair = (verifier.name, verifier.key_id)
        if known.setdefault(pair, verifier) != verifier:
            raise NoteError(f"ambiguous key {verifier.name}+{verifier.key_id.hex()}: two known keys share it")
    return known


def _parse_signature_line(line: str, number: int) -> tuple[str, bytes, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError(f"malformed note: signature line {number} does not start with '\u2014 '")
    name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
    check_name(name, f"key name on signature line {number}")
    raw = decode_base64(encoded, f"signature on line {number}")
    if len(raw) < 5:
        raise NoteError(f"malformed note: signature on line {number} is too short")
    return name, raw[:4], raw[4:]
