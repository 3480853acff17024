"""Signed notes (https://c2sp.org/signed-note) with Ed25519, and the transparency-log checkpoints
carried in them (https://c2sp.org/tlog-checkpoint): the format of Go's golang.org/x/mod/sumdb/note.

A signed note is its text (ending in a newline), a blank line, then one line per signature::

    — <key name> base64(4-byte key id ‖ Ed25519 signature over the text)

The key id is SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]. Keys travel as strings:
``<name>+<hex key id>+base64(0x01 ‖ public key)`` for verifiers and
``PRIVATE+KEY+<name>+<hex key id>+base64(0x01 ‖ seed)`` for signers.

Every failure (a malformed, oversized or unverifiable note, key or checkpoint) is one `NoteError`
whose message says what was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteError",
    "Signer",
    "Verifier",
    "format_checkpoint",
    "generate_private_key",
    "open_note",
    "parse_checkpoint",
    "parse_private_key",
    "parse_verifier_key",
]

MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_ED25519 = b"\x01"  # signature type identifier byte (signed-note, "Signature types")
_SIGNATURE_PREFIX = "\u2014 "  # em dash, space
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_KEY_ID_PATTERN = re.compile(r"[0-9a-fA-F]{8}")
_SIZE_PATTERN = re.compile(r"0|[1-9][0-9]*")
_MAX_TREE_SIZE = (1 << 64) - 1
# ASCII controls other than newline, and lone surrogates (which UTF-8 cannot encode).
_FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\ud800-\udfff]")


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed, too large, or not signed by a known key."""


def _key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 key that notes are checked against: its name, public key and derived key id."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.name, "key name")
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise NoteError("an Ed25519 public key is 32 bytes encoding a curve point") from None
        object.__setattr__(self, "key_id", _key_id(self.name, self.public_key))
        object.__setattr__(self, "_key", key)

    def verifier_key(self) -> str:
        """The verifier key string `<name>+<hex key id>+<base64(0x01 ‖ public key)>`."""
        encoded = base64.b64encode(_ED25519 + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message`."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Signer:
    """Signs notes as `name` with an Ed25519 private key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.verifier = Verifier(name, private_key.public_key().public_bytes_raw())

    @property
    def name(self) -> str:
        """The key name written on each signature line."""
        return self.verifier.name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id prefixed to each signature."""
        return self.verifier.key_id

    def verifier_key(self) -> str:
        """The verifier key string that lets others check this signer's notes."""
        return self.verifier.verifier_key()

    def sign(self, text: str) -> str:
        """The signed note: `text` (ending in a newline), a blank line, and this key's signature line."""
        if not text.endswith("\n"):
            raise NoteError("malformed note text: it must end with a newline")
        _check_characters(text, "note text")
        if len(text.encode()) > MAX_NOTE_BYTES:
            raise NoteError(f"note text is larger than the {MAX_NOTE_BYTES}-byte limit")
        signature = self._private_key.sign(text.encode())
        encoded = base64.b64encode(self.key_id + signature).decode()
        return f"{text}\n{_SIGNATURE_PREFIX}{self.name} {encoded}\n"


def generate_private_key(name: str) -> str:
    """A new random private key string for `name`; keep it secret, publish its verifier key."""
    private_key = Ed25519PrivateKey.generate()
    signer = Signer(name, private_key)
    encoded = base64.b64encode(_ED25519 + private_key.private_bytes_raw()).decode()
    return f"{_PRIVATE_PREFIX}{name}+{signer.key_id.hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> Verifier:
    """The `Verifier` of a verifier key string `<name>+<hex key id>+<base64(0x01 ‖ public key)>`."""
    name, key_id, key = _parse_key_string(vkey, "verifier key")
    verifier = Verifier(name, key)
    _check_key_id(verifier, key_id, "verifier key")
    return verifier


def parse_private_key(skey: str) -> Signer:
    """The `Signer` of a private key string `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`."""
    if not skey.startswith(_PRIVATE_PREFIX):
        raise NoteError(f"malformed private key: it must start with {_PRIVATE_PREFIX!r}")
    name, key_id, seed = _parse_key_string(skey.removeprefix(_PRIVATE_PREFIX), "private key")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
    _check_key_id(signer.verifier, key_id, "private key")
    return signer


def open_note(note: str, verifiers: Sequence[Verifier]) -> str:
    """The text of `note` once a signature by one of `verifiers` has been checked.

    Signatures by unknown keys are ignored. Raises `NoteError` if the note is malformed or larger
    than `MAX_NOTE_BYTES`, if a known key's signature does not verify, or if no known key signed it.
    """
    known = _index(verifiers)
    if len(note) > MAX_NOTE_BYTES:  # cheap bound first: a character is at least one byte
        raise NoteError(f"note is over the {MAX_NOTE_BYTES}-byte limit")
    _check_characters(note, "note")
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


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head (c2sp.org/tlog-checkpoint): origin, tree size, RFC 9162 root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= _MAX_TREE_SIZE:
            raise NoteError(f"malformed checkpoint: tree size {self.size} is outside 0..2^64-1")
        if len(self.root_hash) != 32:
            raise NoteError(f"malformed checkpoint: root hash is {len(self.root_hash)} bytes, not 32")
        for extension in self.extensions:
            _check_line(extension, "extension line")


def parse_checkpoint(text: str) -> Checkpoint:
    """The `Checkpoint` in a note text: origin, decimal size, base64 root hash, extension lines."""
    if not text.endswith("\n"):
        raise NoteError("malformed checkpoint: it must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("malformed checkpoint: it needs an origin, a tree size and a root hash line")
    origin, size, root, *extensions = lines
    if not _SIZE_PATTERN.fullmatch(size) or int(size) > _MAX_TREE_SIZE:
        raise NoteError(f"malformed checkpoint: tree size {size!r} is not a decimal without leading zeros")
    return Checkpoint(origin, int(size), _b64decode(root, "checkpoint root hash"), tuple(extensions))


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text of `checkpoint`, ready to be signed."""
    root = base64.b64encode(checkpoint.root_hash).decode()
    return "\n".join([checkpoint.origin, str(checkpoint.size), root, *checkpoint.extensions]) + "\n"


def _index(verifiers: Sequence[Verifier]) -> dict[tuple[str, bytes], Verifier]:
    known: dict[tuple[str, bytes], Verifier] = {}
    for verifier in verifiers:
        pair = (verifier.name, verifier.key_id)
        if known.setdefault(pair, verifier) != verifier:
            raise NoteError(f"ambiguous key {verifier.name}+{verifier.key_id.hex()}: two known keys share it")
    return known


def _parse_signature_line(line: str, number: int) -> tuple[str, bytes, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError(f"malformed note: signature line {number} does not start with '\u2014 '")
    name, _, encoded = line.removeprefix(_SIGNATURE_PREFIX).partition(" ")
    _check_name(name, f"key name on signature line {number}")
    raw = _b64decode(encoded, f"signature on line {number}")
    if len(raw) < 5:
        raise NoteError(f"malformed note: signature on line {number} is too short")
    return name, raw[:4], raw[4:]


def _parse_key_string(value: str, what: str) -> tuple[str, bytes, bytes]:
    """Split `<name>+<hex key id>+<base64(0x01 ‖ 32-byte key)>` into name, key id and key."""
    parts = value.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"malformed {what}: expected <name>+<hex key id>+<base64 key>")
    name, key_id, encoded = parts
    _check_name(name, f"{what} name")
    if not _KEY_ID_PATTERN.fullmatch(key_id):
        raise NoteError(f"malformed {what}: the key id must be 8 hex digits")
    key = _b64decode(encoded, what)
    if len(key) != 33 or key[:1] != _ED25519:
        raise NoteError(f"malformed {what}: not an Ed25519 key (type byte 0x01 and 32 bytes)")
    return name, bytes.fromhex(key_id), key[1:]


def _check_key_id(verifier: Verifier, key_id: bytes, what: str) -> None:
    if key_id != verifier.key_id:
        raise NoteError(
            f"malformed {what}: key id {key_id.hex()} does not match the name and key "
            f"(they give {verifier.key_id.hex()})"
        )


def _check_name(name: str, what: str) -> None:
    if not name or "+" in name or any(char.isspace() for char in name):
        raise NoteError(f"malformed {what} {name!r}: it must be non-empty, without spaces or '+'")


def _check_line(line: str, what: str) -> None:
    if not line or "\n" in line:
        raise NoteError(f"malformed checkpoint: the {what} must be one non-empty line")
    _check_characters(line, f"checkpoint {what}")


def _check_characters(text: str, what: str) -> None:
    """Signed notes are UTF-8 without ASCII control characters but newline (signed-note, "Format")."""
    found = _FORBIDDEN.search(text)
    if found:
        raise NoteError(f"malformed {what}: it contains the character U+{ord(found.group()):04X}")


def _b64decode(value: str, what: str) -> bytes:
    """Strict, canonical standard base64 (RFC 4648 §4): one encoding per byte string."""
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise NoteError(f"malformed {what}: not standard base64") from None
    if not raw or base64.b64encode(raw).decode() != value:
        raise NoteError(f"malformed {what}: not canonical standard base64")
    return raw
