"""Verify a whole Consentry audit log, streaming, with nothing but the server's signed claims.

`verify_log(client, key=..., state=...)`:

1. settles the log's verifier key: the pinned one, the one a previous run remembered (`AuditorState`),
   or, with neither, the server's own, trusted on first use;
2. opens the latest checkpoint with it (c2sp.org/signed-note, c2sp.org/tlog-checkpoint);
3. downloads every entry [0, size) as C2SP tlog-tiles entry bundles (256 entries each, a few fetched
   ahead in parallel), or, from a server without tiles (its first bundle is a 404), as the JSON pages
   of `/v1/audit/entries`; and hashes them into a `tlog.StreamingTree`, which holds O(log n) hashes
   however long the log;
4. compares the recomputed root (RFC 9162 §2.1.1) with the checkpoint's; with tiles, rebuilds the root
   from the server's hash tiles too (`tlog.tile_root`: the few tiles holding the tree's complete
   subtrees), so the tiles a mirror or a cache keeps are vouched for as well; and, given the checkpoint of
   size M a previous run verified, checks that the first M entries still hash to its root and that
   the server's consistency proof M → N (RFC 9162 §2.1.4) verifies, so the log was neither rewritten,
   forked nor rolled back.

What failed is listed in `VerifyReport.problems`. Only the `AuditorAPIError`s that say nothing about
the log (the server unreachable, an error status, a refused token) are raised.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clients.auditor.api import AuditorClient, HTTPProblem, MalformedResponse
from clients.auditor.download import FETCH_AHEAD, Download, DownloadFailed
from clients.auditor.tlog import (
    Checkpoint,
    NoteError,
    StreamingTree,
    Tile,
    Verifier,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    tile_root,
    verify_consistency,
)

__all__ = [
    "FETCH_AHEAD",
    "AuditorState",
    "EntriesSink",
    "KeySource",
    "ProgressSink",
    "StateError",
    "VerifyReport",
    "load_state",
    "save_state",
    "verify_log",
]

EntriesSink = Callable[[int, Sequence[bytes]], None]  # (index of the first entry, entries)
ProgressSink = Callable[[int, int], None]  # (entries done, entries in all)


class StateError(ValueError):
    """A state file that cannot be read, or does not hold a consistent `AuditorState`."""


class AuditorState(BaseModel):
    """What a run remembers for the next: the key it trusts and the last checkpoint it verified.

    `origin`, `tree_size` and `root_hash` repeat the checkpoint for people reading the file; loading
    checks them, and the checkpoint's signature, against the note.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    url: str
    key: str = Field(description="verifier key, <name>+<hex key id>+<base64 key>")
    origin: str
    tree_size: int
    root_hash: str = Field(description="standard base64")
    checkpoint: str = Field(description="the signed checkpoint note, exactly as served")

    @model_validator(mode="after")
    def _agrees_with_its_checkpoint(self) -> Self:
        checkpoint = self.verified_checkpoint()
        claimed = (self.origin, self.tree_size, self.root_hash)
        if claimed != (checkpoint.origin, checkpoint.size, _b64(checkpoint.root_hash)):
            raise ValueError("origin, tree_size or root_hash differ from the remembered checkpoint's")
        return self

    @property
    def verifier(self) -> Verifier:
        """The remembered verifier key, parsed."""
        return parse_verifier_key(self.key)

    def verified_checkpoint(self) -> Checkpoint:
        """The remembered checkpoint, its signature checked against the remembered key."""
        return parse_checkpoint(open_note(self.checkpoint, [self.verifier]))


def load_state(path: Path) -> AuditorState | None:
    """The state stored at `path`, or None if there is no file yet. Raises `StateError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the state file {str(path)!r}: {exc.strerror}") from None
    try:
        return AuditorState.model_validate_json(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise StateError(f"{str(path)!r} is not a usable consentry-audit state file ({reasons})") from None


def save_state(path: Path, state: AuditorState) -> None:
    """Write `state` to `path` atomically: a reader sees the old file or the new one, never half."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(state.model_dump_json(indent=2) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class KeySource(StrEnum):
    """Where the verifier key that checked the checkpoint came from."""

    PINNED = "pinned"
    STATE = "state"
    FIRST_USE = "trust-on-first-use"  # fetched from the very server being audited


@dataclass
class VerifyReport:
    """The outcome of `verify_log`. `verified` only if every check ran and none failed."""

    url: str
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    key: Verifier | None = None
    key_source: KeySource | None = None
    checkpoint_note: str | None = None
    checkpoint: Checkpoint | None = None
    previous: Checkpoint | None = None  # the checkpoint the state remembered
    entries: int = 0  # entries downloaded and hashed
    source: Literal["tiles", "json"] | None = None  # how the entries were downloaded
    seconds: float = 0.0

    @property
    def entries_per_second(self) -> float:
        """Entries downloaded, checked and hashed per second."""
        return self.entries / self.seconds if self.seconds > 0 else 0.0

    def new_state(self) -> AuditorState:
        """The state to remember after a successful verification."""
        if not self.verified or self.key is None or self.checkpoint is None or self.checkpoint_note is None:
            raise ValueError("only a verified log gives a new state")
        return AuditorState(
            url=self.url,
            key=self.key.verifier_key(),
            origin=self.checkpoint.origin,
            tree_size=self.checkpoint.size,
            root_hash=_b64(self.checkpoint.root_hash),
            checkpoint=self.checkpoint_note,
        )


class _Failed(Exception):
    """A check failed in a way that stops the rest."""


def verify_log(
    client: AuditorClient,
    *,
    key: Verifier | None = None,
    state: AuditorState | None = None,
    on_entries: EntriesSink | None = None,
    on_progress: ProgressSink | None = None,
    fetch_ahead: int = FETCH_AHEAD,
) -> VerifyReport:
    """Verify the log `client` serves against `key` and what `state` remembers (see the module doc).

    `on_entries(start, entries)` receives each page once its indices check out, so a caller can replay
    the log without a second download; `on_progress(done, total)` follows the download; `fetch_ahead`
    entry bundles are requested at once (1: one after the other). Raises the
    `AuditorAPIError`s other than `MalformedResponse`.
    """
    report = VerifyReport(url=client.base_url)
    try:
        report.key = _settle_key(client, key, state, report)
        checkpoint = _open_checkpoint(client, report.key, state, report)
        _check_entries(client, checkpoint, report, on_entries, on_progress, fetch_ahead)
    except (_Failed, DownloadFailed) as failed:
        report.problems.append(str(failed))
    except MalformedResponse as exc:
        report.problems.append(f"the server broke the auditor API contract: {exc}")
    else:
        report.verified = not report.problems
    return report


def _settle_key(
    client: AuditorClient, key: Verifier | None, state: AuditorState | None, report: VerifyReport
) -> Verifier:
    if key is not None:
        if state is not None and state.key != key.verifier_key():
            raise _Failed(
                f"the pinned key {key.verifier_key()} is not the key the state file trusts ({state.key}): "
                "pin the remembered key, or start a new state file if the log's key really changed"
            )
        report.key_source = KeySource.PINNED
        return key
    if state is not None:
        report.key_source = KeySource.STATE
        return state.verifier
    report.key_source = KeySource.FIRST_USE
    try:
        return parse_verifier_key(client.verifier_key())
    except NoteError as exc:
        raise _Failed(f"the server's verifier key is unusable: {exc}") from None


def _open_checkpoint(
    client: AuditorClient, key: Verifier, state: AuditorState | None, report: VerifyReport
) -> Checkpoint:
    note = client.checkpoint()
    try:
        checkpoint = parse_checkpoint(open_note(note, [key]))
    except NoteError as exc:
        raise _Failed(f"the checkpoint does not verify: {exc}") from None
    report.checkpoint_note, report.checkpoint = note, checkpoint
    if state is None:
        return checkpoint
    report.previous = previous = state.verified_checkpoint()
    if checkpoint.origin != previous.origin:
        raise _Failed(
            f"the checkpoint is for the log {checkpoint.origin!r}, "
            f"but the state file remembers the log {previous.origin!r}"
        )
    if checkpoint.size < previous.size:
        raise _Failed(
            f"the log shrank: its checkpoint has {checkpoint.size} entries, but a checkpoint of "
            f"{previous.size} entries was verified before; the log was rolled back"
        )
    return checkpoint


def _check_entries(
    client: AuditorClient,
    checkpoint: Checkpoint,
    report: VerifyReport,
    on_entries: EntriesSink | None,
    on_progress: ProgressSink | None,
    fetch_ahead: int,
) -> None:
    size, previous, tree = checkpoint.size, report.previous, StreamingTree()
    remembered = previous.size if previous is not None else -1  # where to capture the root on the way
    root_at_previous = tree.root() if remembered == 0 else None
    began = time.perf_counter()
    if on_progress is not None:
        on_progress(0, size)
    # Without `on_entries`, bundles arrive as leaf hashes (no entry is copied); with it, as entries.
    hashed = on_entries is None
    add = tree.extend_hashes if hashed else tree.extend
    download = Download(client, size, fetch_ahead, hashed=hashed)
    for start, items in download:
        if start < remembered <= start + len(items):
            cut = remembered - start
            add(items[:cut])
            root_at_previous = tree.root()
            add(items[cut:])
        else:
            add(items)
        report.entries = tree.size
        if on_entries is not None:
            on_entries(start, items)
        if on_progress is not None:
            on_progress(tree.size, size)
    report.source = download.source
    if tree.root() != checkpoint.root_hash:
        report.problems.append(
            f"the {size} entries hash to {_b64(tree.root())}, not to the checkpoint's root "
            f"{_b64(checkpoint.root_hash)}: entries were altered, added or removed"
        )
    if report.source == "tiles":
        _check_hash_tiles(client, checkpoint, report)
    report.seconds = time.perf_counter() - began  # fetch, decode, hash, and the root checked twice
    if previous is not None:
        _check_consistency(client, previous, root_at_previous, checkpoint, report)


def _check_consistency(
    client: AuditorClient,
    previous: Checkpoint,
    root_at_previous: bytes | None,
    checkpoint: Checkpoint,
    report: VerifyReport,
) -> None:
    m, n = previous.size, checkpoint.size
    if root_at_previous != previous.root_hash:
        report.problems.append(
            f"the first {m} entries no longer hash to the root verified before ({_b64(previous.root_hash)}): "
            "the log was rewritten or forked"
        )
    if 0 < m < n:
        proof = client.consistency_proof(m, n)
        if not verify_consistency(m, n, previous.root_hash, checkpoint.root_hash, proof):
            report.problems.append(
                f"the server's consistency proof from {m} to {n} entries does not verify: "
                "the log was rewritten or forked"
            )


def _check_hash_tiles(client: AuditorClient, checkpoint: Checkpoint, report: VerifyReport) -> None:
    """Rebuild the checkpoint's root from the hash tiles that hold the tree's complete subtrees."""
    fetched: list[str] = []

    def read(level: int, index: int, width: int) -> list[bytes]:
        fetched.append(Tile(level, index, width).path())
        return client.hash_tile(level, index, width)

    try:
        rebuilt = tile_root(checkpoint.size, read)
    except HTTPProblem as exc:
        if exc.status != 404:
            raise
        report.problems.append(f"the server does not serve the hash tile {fetched[-1]} its checkpoint covers")
        return
    if rebuilt != checkpoint.root_hash:
        report.problems.append(
            f"the hash tiles {', '.join(fetched)} rebuild the root {_b64(rebuilt)}, not the checkpoint's "
            f"{_b64(checkpoint.root_hash)}: the tiles do not match the log"
        )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()
