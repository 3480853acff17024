"""The development mail sink: each message a `.eml` file under `<data_dir>/mail/`, readable by its
owner only (the directory is 0700, files 0600), listed and shown by `consentry mail list|show`.

A file is named `<UTC time>-<message id>.eml`; it is written to a temporary
name and renamed, so a retried message replaces its earlier copy instead of doubling it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from uuid import UUID

from broker.mail.transport import MailRefused
from vault.private_files import private_directory

__all__ = ["EmlSink", "SinkEntry", "find", "listing", "read"]

SHORT_ID = 12  # hex digits of the message id shown by `consentry mail list`


@dataclass(frozen=True, slots=True)
class EmlSink:
    """A transport that files messages in `directory`."""

    directory: Path

    def send(self, message_id: UUID, message: EmailMessage) -> None:
        """Write the message as `<time>-<id>.eml`, owner-only."""
        try:
            private_directory(self.directory)  # parents made 0700 too
            self.directory.chmod(0o700)  # and an existing one tightened
            sent = message["Date"].datetime if message["Date"] else datetime.now()
            path = self.directory / f"{sent:%Y%m%dT%H%M%S}-{message_id.hex}.eml"
            temporary = path.with_suffix(".tmp")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(message.as_bytes(policy=policy.SMTP))
            temporary.replace(path)
        except OSError as exc:
            raise MailRefused(f"could not write the message file ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True)
class SinkEntry:
    """One filed message, as `consentry mail list` shows it."""

    id: str
    path: Path
    date: str
    to: str
    subject: str


def read(path: Path) -> EmailMessage:
    """Parse a filed message."""
    with path.open("rb") as file:
        message = BytesParser(policy=policy.default).parse(file)
    assert isinstance(message, EmailMessage)
    return message


def listing(directory: Path) -> list[SinkEntry]:
    """Every filed message, in the order they were filed."""
    entries = []
    paths = (
        sorted(directory.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        if directory.is_dir()
        else []
    )
    for path in paths:
        message = read(path)
        entries.append(
            SinkEntry(
                id=path.stem.rsplit("-", 1)[-1][:SHORT_ID],
                path=path,
                date=str(message["Date"] or ""),
                to=str(message["To"] or ""),
                subject=str(message["Subject"] or ""),
            )
        )
    return entries


def find(directory: Path, message_id: str) -> Path:
    """The file of the message whose id starts with `message_id`; LookupError if none or several."""
    wanted = message_id.strip().lower()
    matches = [
        entry.path
        for entry in listing(directory)
        if wanted and entry.path.stem.rsplit("-", 1)[-1].startswith(wanted)
    ]
    if len(matches) != 1:
        problem = "no message" if not matches else "several messages"
        raise LookupError(f"{problem} with id {message_id!r} in {directory}; see `consentry mail list`")
    return matches[0]
