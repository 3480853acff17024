"""Transparency-log checkpoints (https://c2sp.org/tlog-checkpoint): the note text a log signs.

A checkpoint is the log's origin line, its tree size in decimal, the standard base64 of its
RFC 9162 root hash, and optional extension lines, each ending in a newline. Failures are the
signed notes' `NoteError`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from clients.auditor.tlog.note import NoteError, check_characters, decode_base64

__all__ = ["MAX_TREE_SIZE", "Checkpoint", "format_checkpoint", "parse_checkpoint"]

MAX_TREE_SIZE = (1 << 64) - 1
_SIZE_PATTERN = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed tree head (c2sp.org/tlog-checkpoint): origin, tree size, RFC 9162 root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_TREE_SIZE:
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
    if not _SIZE_PATTERN.fullmatch(size) or int(size) > MAX_TREE_SIZE:
        raise NoteError(f"malformed checkpoint: tree size {size!r} is not a decimal without leading zeros")
    return Checkpoint(origin, int(size), decode_base64(root, "checkpoint root hash"), tuple(extensions))


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text of `checkpoint`, ready to be signed."""
    root = base64.b64encode(checkpoint.root_hash).decode()
    return "\n".join([checkpoint.origin, str(checkpoint.size), root, *checkpoint.extensions]) + "\n"


def _check_line(line: str, what: str) -> None:
    if not line or "\n" in line:
        raise NoteError(f"malformed checkpoint: the {what} must be one non-empty line")
    check_characters(line, f"checkpoint {what}")
