"""Delivering the mail outbox: claim due messages, send each outside any transaction, record it.

    claim  (one transaction)   pending messages due now, `FOR UPDATE SKIP LOCKED` on PostgreSQL so
                               servers never take the same row (SQLite has one writer at a time);
                               each is leased (its next attempt pushed `LEASE` ahead), its sealed
                               recipient and bodies opened, and the lease committed
    send   (no transaction)    the transport (SMTP, or the `.eml` sink) takes the message
    record (one transaction)   accepted: delivered; refused for good (a 5xx) or past `RETRY_DELAYS`:
                               failed; otherwise tried again after the next delay (±10 % jitter).
                               A delivered or failed message's sealed contents are dropped at once

Delivered and failed rows (ids and states only) are deleted after `retention`. A server that dies
mid-send leaves a lease that runs out and the message is sent again with the same Message-ID
(at-least-once delivery). A message whose account was deleted meanwhile is simply gone.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from uuid import UUID

import anyio
from sqlmodel import col, delete, select

from broker.db import SessionFactory
from broker.mail.models import MailMessage, MailStatus
from broker.mail.transport import MailRefused, Transport
from vault.errors import VaultError
from vault.profile import Vault

__all__ = ["LEASE", "RETRY_DELAYS", "Attachment", "MailDelivery", "Outgoing"]

log = logging.getLogger(__name__)

# After the first try: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h; then the message fails.
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 7200, 14400, 28800))
PER_RUN = 100
BATCH = 10
LEASE = timedelta(minutes=5)  # > BATCH sends at the transport's timeout
PRUNE_EVERY = 3600.0


def jitter(delay: timedelta) -> timedelta:
    """`delay` ±10 %, so messages that failed together are not retried together."""
    return delay * random.uniform(0.9, 1.1)  # noqa: S311 - spreading load, not a secret


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file carried by a message (the deletion receipt, `broker.usecases.account_deletion`)."""

    filename: str
    content: bytes
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message, opened: what the transport needs (no database object crosses the send)."""

    message_id: UUID
    to: str
    subject: str
    text: str
    html: str
    created_at: datetime
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class MailDelivery:
    """The outbox worker; clock, transport and jitter are injected."""

    clock: Callable[[], datetime]
    vault: Vault
    transport: Transport
    sender: str
    spread: Callable[[timedelta], timedelta] = jitter
    retention: timedelta = timedelta(days=30)

    def deliver_due(self, sessions: SessionFactory, limit: int = PER_RUN) -> int:
        """Send the messages due now, up to `limit`, `BATCH` at a time; returns how many were tried."""
        tried = 0
        while tried < limit:
            jobs = self.claim(sessions, min(BATCH, limit - tried))
            for job in jobs:
                self._record(sessions, job, self.send(job))
            tried += len(jobs)
            if len(jobs) < BATCH:
                break
        return tried

    def claim(self, sessions: SessionFactory, limit: int = BATCH) -> list[Outgoing]:
        """Lease up to `limit` due messages to this worker and open them, committed before any send."""
        now, jobs = self.clock(), []
        with sessions() as session:
            due = session.exec(
                select(MailMessage)
                .where(MailMessage.status == MailStatus.PENDING, col(MailMessage.next_attempt_at) <= now)
                .order_by(col(MailMessage.next_attempt_at))
                .limit(min(limit, BATCH))
                .with_for_update(skip_locked=True)
            ).all()
            for message in due:
                try:
                    sealed = self.vault.secrets(session, message.customer_id, [message.secret_label])
                    content = json.loads(sealed[message.secret_label])
                except (VaultError, KeyError):  # its contents are gone: nothing can ever send it
                    message.status, message.next_attempt_at = MailStatus.FAILED, None
                    message.last_error = "the message's sealed contents could not be opened"
                else:
                    message.next_attempt_at = now + LEASE
                    jobs.append(Outgoing(message.id, content["to"], content["subject"],
                                         content["text"], content["html"], message.created_at))  # fmt: skip
                session.add(message)
            session.commit()
        return jobs

    def envelope(self, job: Outgoing) -> EmailMessage:
        """The MIME message: plain text with an HTML alternative, a Message-ID stable across retries."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = job.to
        message["Subject"] = job.subject
        message["Date"] = format_datetime(job.created_at)
        domain = self.sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
        message["Message-ID"] = f"<{job.message_id.hex}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
        message.set_content(job.text)
        message.add_alternative(job.html, subtype="html")
        for attached in job.attachments:
            maintype, subtype = attached.media_type.split("/", 1)
            message.add_attachment(
                attached.content, maintype=maintype, subtype=subtype, filename=attached.filename
            )
        return message

    def send(self, job: Outgoing) -> MailRefused | None:
        """Hand one message to the transport; returns why it did not go, or None. Never raises."""
        try:
            self.transport.send(job.message_id, self.envelope(job))
        except MailRefused as refused:
            return refused
        except Exception:  # one bad message must not stop the batch
            log.exception("mail send failed unexpectedly")
            return MailRefused("the message could not be sent")
        return None

    def _record(self, sessions: SessionFactory, job: Outgoing, refused: MailRefused | None) -> None:
        with sessions() as session:
            message = session.get(MailMessage, job.message_id)
            if message is None:  # the account was deleted meanwhile
                return
            message.attempts += 1
            if refused is None:
                message.status, message.next_attempt_at, message.last_error = MailStatus.DELIVERED, None, None
            elif refused.permanent or message.attempts > len(RETRY_DELAYS):
                message.status, message.next_attempt_at = MailStatus.FAILED, None
            else:
                message.next_attempt_at = self.clock() + self.spread(RETRY_DELAYS[message.attempts - 1])
            if refused is not None:
                message.last_error = str(refused)[:200]
                log.warning("mail %s not sent (attempt %d): %s", message.id, message.attempts, refused)
            if message.status is not MailStatus.PENDING:
                self.vault.forget_secret(session, message.customer_id, message.secret_label)
            session.add(message)
            session.commit()

    def prune(self, sessions: SessionFactory, batch: int = 1000) -> int:
        """Delete delivered and failed rows created more than `retention` ago; returns how many went."""
        cutoff, removed = self.clock() - self.retention, 0
        while True:
            with sessions() as session:
                ended = col(MailMessage.status).in_([MailStatus.DELIVERED, MailStatus.FAILED])
                old = session.exec(
                    select(MailMessage.id).where(ended, col(MailMessage.created_at) < cutoff).limit(batch)
                ).all()
                if not old:
                    return removed
                session.exec(delete(MailMessage).where(col(MailMessage.id).in_(old)))
                session.commit()
            removed += len(old)

    async def deliver_periodically(self, sessions: SessionFactory, interval: float) -> None:
        """Deliver what is due now and every `interval` seconds until cancelled; prune hourly."""
        pruned_at = -PRUNE_EVERY
        while True:
            try:
                while await anyio.to_thread.run_sync(self.deliver_due, sessions) == PER_RUN:
                    pass
                if time.monotonic() - pruned_at >= PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    await anyio.to_thread.run_sync(self.prune, sessions)
            except Exception:
                log.exception("mail delivery failed; trying again in %s s", interval)
            await anyio.sleep(interval)
