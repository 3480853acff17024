"""Ed25519 keys for signed notes: the one module of the transparency-log primitive that needs
`cryptography` (c2sp.org/signed-note, signature type 0x01).

Keys travel as strings: ``<name>+<hex key id>+base64(0x01 ‖ public key)`` for verifiers (`Verifier`,
`parse_verifier_key`) and ``PRIVATE+KEY+<name>+<hex key id>+base64(0x01 ‖ seed)`` for signers
(`Signer`, `parse_private_key`, `generate_private_key`). Failures are the signed notes' `NoteError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clients.auditor.tlog.note import NoteError, check_name, format_key, key_id_of, parse_key, sign_note

__all__ = ["Signer", "Verifier", "generate_private_key", "parse_private_key", "parse_verifier_key"]

_ED25519 = b"\x01"  # signature type identifier byte (signed-note, "Signature types")
_PRIVATE_PREFIX = "PRIVATE+KEY+"


@dataclass(frozen=True)
class Verifier:
    """An Ed25519 key that notes are checked against: its name, public key and derived key id."""

    name: str
    public_key: bytes
    key_id: bytes = field(init=False)
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name, "key name")
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise NoteError("an Ed25519 public key is 32 bytes encoding a curve point") from None
        object.__setattr__(self, "key_id", key_id_of(self.name, _ED25519 + self.public_key))
        object.__setattr__(self, "_key", key)

    def verifier_key(self) -> str:
        """The verifier key string `<name>+<hex key id>+<base64(0x01 ‖ public key)>`."""
        return format_key(self.name, self.key_id, _ED25519 + self.public_key)

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
        return sign_note(text, self.name, self.key_id, self._private_key.sign)


def generate_private_key(name: str) -> str:
    """A new random private key string for `name`; keep it secret, publish its verifier key."""
    private_key = Ed25519PrivateKey.generate()
    signer = Signer(name, private_key)
    return _PRIVATE_PREFIX + format_key(name, signer.key_id, _ED25519 + private_key.private_bytes_raw())


def parse_verifier_key(vkey: str) -> Verifier:
    """The `Verifier` of a verifier key string `<name>+<hex key id>+<base64(0x01 ‖ public key)>`."""
    name, key_id, key = _parse_key(vkey, "verifier key")
    verifier = Verifier(name, key)
    _check_key_id(verifier, key_id, "verifier key")
    return verifier


def parse_private_key(skey: str) -> Signer:
    """The `Signer` of a private key string `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`."""
    if not skey.startswith(_PRIVATE_PREFIX):
        raise NoteError(f"malformed private key: it must start with {_PRIVATE_PREFIX!r}")
    name, key_id, seed = _parse_key(skey.removeprefix(_PRIVATE_PREFIX), "private key")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
    _check_key_id(signer.verifier, key_id, "private key")
    return signer


def _parse_key(value: str, what: str) -> tuple[str, bytes, bytes]:
    """Name, key id and 32-byte key of an Ed25519 key string."""
    name, key_id, key = parse_key(value, what)
    if len(key) != 33 or key[:1] != _ED25519:
        raise NoteError(f"malformed {what}: not an Ed25519 key (type byte 0x01 and 32 bytes)")
    return name, key_id, key[1:]


def _check_key_id(verifier: Verifier, key_id: bytes, what: str) -> None:
    if key_id != verifier.key_id:
        raise NoteError(
            f"malformed {what}: key id {key_id.hex()} does not match the name and key "
            f"(they give {verifier.key_id.hex()})"
        )
