"""Signed checkpoints of the audit log: C2SP tlog-checkpoint text in a C2SP signed note (Ed25519).

The log's note key is named after the log's origin, `<host[:port]>/audit` of the public base URL
when the key was made; the origin never changes after, so a later change of URL does not fork the
log. The key comes from ``CONSENTRY_AUDIT_SIGNING_KEY`` (a ``PRIVATE+KEY+…`` string) or from the key
file ``<data_dir>/keys/audit-log.key`` (mode 0600), made on first use.

A checkpoint is signed for the size the log has when one is asked for (`Checkpoints.current`), and
every minute by the server (`sign_periodically`); each one is kept. The signer holds the lock that
appenders take, so it signs only committed sizes and never two checkpoints for one size; it refuses
to sign a log that is smaller than, or does not extend, its latest checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
from sqlmodel import Session, col, select

from broker.audit import tree
from broker.audit.models import AuditCheckpoint
from broker.db import SessionFactory
from broker.errors import AuditIntegrityError, NotFound
from clients.auditor.tlog import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    generate_private_key,
    parse_private_key,
    verify_consistency,
)
from vault.keys import create_key_file
from vault.private_files import private_directory

__all__ = ["KEY_FILE", "Checkpoints", "load_signer", "log_origin"]

KEY_FILE = "audit-log.key"
_MAX_TREE_SIZE = 2**63 - 1  # the BIGINT column
log = logging.getLogger("consentry.audit")


def log_origin(base_url: str) -> str:
    """The origin line of the log served at `base_url`: `<host[:port]>/audit`."""
    host = urlsplit(base_url).netloc.rpartition("@")[2].lower()
    return f"{host}/audit"


def load_signer(*, private_key: str | None, key_dir: Path, origin: str) -> Signer:
    """The log's note signer: `private_key` if given, else the key file in `key_dir`, made for `origin`
    if there is none yet (an existing file keeps the origin it was made with)."""
    if private_key is not None:
        try:
            return parse_private_key(private_key.strip())
        except NoteError as exc:  # the message never quotes the key
            raise ValueError(f"CONSENTRY_AUDIT_SIGNING_KEY is not a signed-note private key: {exc}") from None
    path = key_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path, generate_private_key(origin))
    try:
        return parse_private_key(path.read_text().strip())
    except NoteError as exc:
        raise ValueError(f"{path} does not hold a signed-note private key: {exc}") from None


def _create_key_file(path: Path, key: str) -> None:
    """Write the key file whole; two processes racing both end up with the first one's key."""
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        create_key_file(path, key + "\n")


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """Sign, keep and find the log's checkpoints."""

    signer: Signer
    clock: Callable[[], datetime]

    @property
    def origin(self) -> str:
        """The log's origin line, which is also the note key's name."""
        return self.signer.name

    @property
    def verifier(self) -> Verifier:
        """The key that checks this log's checkpoints."""
        return self.signer.verifier

    def verifier_key(self) -> str:
        """The verifier key string auditors check checkpoints with (`<name>+<key id>+<key>`)."""
        return self.signer.verifier_key()

    def latest(self, session: Session) -> AuditCheckpoint | None:
        """The checkpoint of the largest tree signed so far, if any."""
        query = select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size).desc()).limit(1)
        return session.exec(query).first()

    def get(self, session: Session, tree_size: int) -> AuditCheckpoint:
        """The checkpoint signed at `tree_size`; NotFound if none was."""
        found = session.get(AuditCheckpoint, tree_size) if 0 <= tree_size <= _MAX_TREE_SIZE else None
        if found is None:
            raise NotFound(
                f"no checkpoint was signed at tree size {tree_size}: checkpoints exist only for the sizes "
                "the log had when one was signed; fetch the current checkpoint instead"
            )
        return found

    def current(self, session: Session) -> AuditCheckpoint:
        """A checkpoint of the log as it is now: the latest one if the log has not grown since, else a
        new one signed for the current size. The caller commits."""
        # Look first without the head lock, which every append needs: most calls find the log unchanged.
        for take_lock in (False, True):
            size = tree.lock_head(session) if take_lock else tree.size(session)
            latest = self.latest(session)
            if latest is not None and latest.tree_size == size:
                return latest
        root = tree.root(session, size)
        if latest is not None:
            self._check_extends(session, latest, size, root)
        note = self.signer.sign(format_checkpoint(Checkpoint(self.origin, size, root)))
        signed = AuditCheckpoint(tree_size=size, root_hash=root, note=note, created_at=self.clock())
        session.add(signed)
        session.flush()
        return signed

    def _check_extends(self, session: Session, latest: AuditCheckpoint, size: int, root: bytes) -> None:
        """Refuse to sign a tree that is not the latest checkpoint's tree plus new entries."""
        if latest.tree_size > size:
            raise AuditIntegrityError(
                f"the audit log has {size} entries but a checkpoint was signed at {latest.tree_size}: "
                "it was truncated; no checkpoint is signed until it is restored "
                "(run `consentry audit verify`)"
            )
        proof = tree.consistency_proof(session, latest.tree_size, size)
        if not verify_consistency(latest.tree_size, size, latest.root_hash, root, proof):
            raise AuditIntegrityError(
                f"the audit log at size {size} does not extend the checkpoint signed at {latest.tree_size}: "
                "its history was rewritten; no checkpoint is signed until it is restored "
                "(run `consentry audit verify`)"
            )

    def sign_now(self, sessions: SessionFactory) -> AuditCheckpoint:
        """`current` in a transaction of its own, committed."""
        with sessions() as session:
            signed = self.current(session)
            session.commit()
            return signed

    async def sign_periodically(self, sessions: SessionFactory, interval: float) -> None:
        """Sign the current checkpoint now and every `interval` seconds until cancelled. A failure is
        logged and tried again at the next tick; it never ends the loop."""
        while True:
            try:
                signed = await anyio.to_thread.run_sync(self.sign_now, sessions)
            except Exception:
                log.exception("signing an audit checkpoint failed; trying again in %s s", interval)
            else:
                log.debug("audit checkpoint at tree size %d", signed.tree_size)
            await anyio.sleep(interval)
