"""Delivering the outbox: claim due messages, send each outside any transaction, record the attempt.

    claim  (one transaction)   pending messages due now, `FOR UPDATE SKIP LOCKED` on PostgreSQL so
                               servers never take the same row (SQLite has one writer at a time);
                               each is leased (its next attempt pushed `LEASE` ahead) and committed
    send   (no transaction)    the URL is vetted again and the connection goes to the vetted address
                               (Host and TLS SNI keep the name), no redirects, short timeouts, at most
                               `MAX_RESPONSE_BYTES` of the answer read
    record (one transaction)   the attempt joins the delivery log; 2xx delivers, 410 Gone disables
                               the endpoint, anything else schedules the next try per `RETRY_DELAYS`
                               (Standard Webhooks' example schedule, ±10 % jitter) or, past its end,
                               fails the message; a 429 or 503 with `Retry-After` (seconds or an
                               HTTP date) is not tried again sooner than it asks, up to
                               `MAX_RETRY_AFTER`

Delivered and failed messages, with their attempts (the delivery log), are deleted once older than
`retention` (`CONSENTRY_WEBHOOK_RETENTION_DAYS`), by the worker, at most once per `PRUNE_EVERY`.

A server that dies after an event commits loses nothing: the message waits in the outbox. One that
dies mid-send leaves a lease that runs out, and the message is sent again with the same `webhook-id`,
which receivers use to drop duplicates (at-least-once delivery).
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from uuid import UUID

import anyio
import httpx
from sqlmodel import Session, col, delete, select

from broker.db import SessionFactory
from broker.webhooks import signing
from broker.webhooks.addresses import Refused, Resolver, Target, resolve_system, vet
from broker.webhooks.models import (
    EndpointStatus,
    MessageStatus,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)
from broker.webhooks.signing import WebhookSecrets

__all__ = ["LEASE", "RETRY_DELAYS", "Job", "Outcome", "WebhookDelivery"]

log = logging.getLogger(__name__)

# After the first try: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; then the message fails
# (about 3 days and 3 hours after the event).
RETRY_DELAYS = tuple(timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400))
PRUNE_EVERY = 3600.0  # seconds between two prunings of old messages by one worker
MAX_RETRY_AFTER = timedelta(hours=24)  # a receiver may slow its retries down, not park them for good
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # per step; the answer's body also has READ_DEADLINE in all
READ_DEADLINE = 15.0  # seconds: a receiver trickling its answer is cut off
MAX_RESPONSE_BYTES = 4096
PER_RUN = 100  # messages one `deliver_due` tries at most
BATCH = 10  # messages claimed at once: sent one after another, so the lease must cover them all
LEASE = timedelta(minutes=5)  # > BATCH sends at their slowest (connect + write + first byte + READ_DEADLINE)
USER_AGENT = "Consentry-Webhooks/1"


def jitter(delay: timedelta) -> timedelta:
    """`delay` ±10 %, so receivers that failed together are not retried together."""
    return delay * random.uniform(0.9, 1.1)  # noqa: S311 - spreading load, not a secret


@dataclass(frozen=True, slots=True)
class Job:
    """One leased message, with what sending it needs (no database object crosses the send)."""

    message_id: UUID
    webhook_id: str
    endpoint_id: UUID
    url: str
    secret_version: int
    event_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: a status code, or an error when no answer came."""

    status_code: int | None
    error: str | None
    duration_ms: int
    retry_after: timedelta | None = None  # what a 429 or 503 asked for (RFC 9110 Retry-After)


def _shared_tls() -> Callable[[], ssl.SSLContext]:
    """httpx's default TLS context (certifi's CAs, or SSL_CERT_FILE), built on first use and shared by
    every send: building it costs 25-50 ms of CPU, far more than a send to a nearby receiver."""
    return functools.cache(httpx.create_ssl_context)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """The outbox worker; clock, resolver, transport and jitter are injected."""

    clock: Callable[[], datetime]
    secrets: WebhookSecrets
    allow_private: bool = False
    resolve: Resolver = resolve_system
    transport: httpx.BaseTransport | None = None
    spread: Callable[[timedelta], timedelta] = jitter
    retention: timedelta = timedelta(days=30)
    tls: Callable[[], ssl.SSLContext] = field(default_factory=_shared_tls)

    def deliver_due(self, sessions: SessionFactory, limit: int = PER_RUN) -> int:
        """Try the messages due now, up to `limit`, claimed `BATCH` at a time; returns how many were tried."""
        tried = 0
        while tried < limit:
            jobs = self.claim(sessions, min(BATCH, limit - tried))
            for job in jobs:
                started = self.clock()
                outcome = self.send(job)
                self._record(sessions, job, started, outcome)
            tried += len(jobs)
            if len(jobs) < BATCH:
                break
        return tried

    def claim(self, sessions: SessionFactory, limit: int = BATCH) -> list[Job]:
        """Lease up to `limit` (at most `BATCH`) due messages to this worker, committed before any send."""
        limit = min(limit, BATCH)
        now = self.clock()
        jobs: list[Job] = []
        with sessions() as session:
            due = session.exec(
                select(WebhookMessage)
                .where(
                    WebhookMessage.status == MessageStatus.PENDING, col(WebhookMessage.next_attempt_at) <= now
                )
                .order_by(col(WebhookMessage.next_attempt_at))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for message in due:
                endpoint = session.get(WebhookEndpoint, message.endpoint_id)
                assert endpoint is not None  # the foreign key cascades deletes
                if endpoint.status is EndpointStatus.DISABLED:
                    message.status, message.next_attempt_at = MessageStatus.FAILED, None
                else:
                    message.next_attempt_at = now + LEASE
                    jobs.append(
                        Job(message.id, message.webhook_id, endpoint.id, endpoint.url,
                             endpoint.secret_version, message.event_type, message.body)
                    )  # fmt: skip
                session.add(message)
            session.commit()
        return jobs

    def send(self, job: Job) -> Outcome:
        """One POST of a message, signed now, to an address vetted now; never raises."""
        start = time.perf_counter()
        try:
            target = vet(job.url, allow_private=self.allow_private, resolve=self.resolve)
        except Refused as exc:
            return Outcome(None, f"refused: {exc}"[:200], 0)
        secret = self.secrets.secret(job.endpoint_id, job.secret_version)
        headers = signing.headers(secret, job.webhook_id, int(self.clock().timestamp()), job.body)
        # identity: the answer is read raw, so a compressed flood cannot expand in memory
        headers |= {"host": target.url.netloc, "user-agent": USER_AGENT, "accept-encoding": "identity"}
        try:
            with httpx.Client(
                transport=self.transport, verify=self.tls(), timeout=TIMEOUT, follow_redirects=False
            ) as client:
                request = client.build_request(
                    "POST", _pinned(target), content=job.body, headers=headers,
                    extensions={"sni_hostname": target.host},
                )  # fmt: skip
                response = client.send(request, stream=True)
                try:
                    _drain(response, deadline=start + READ_DEADLINE)
                finally:
                    response.close()
                status: int | None = response.status_code
                retry_after = _retry_after(response, self.clock()) if status in (429, 503) else None
            error = None
        except httpx.TimeoutException:
            status, error, retry_after = None, "timeout", None
        except httpx.HTTPError as exc:
            status, error, retry_after = None, f"connection failed ({type(exc).__name__})", None
        except Exception:  # one bad URL or answer must not stop the batch; its attempt is logged
            log.exception("webhook send failed unexpectedly")
            status, error, retry_after = None, "the request could not be made", None
        return Outcome(status, error, int((time.perf_counter() - start) * 1000), retry_after)

    def _record(self, sessions: SessionFactory, job: Job, started: datetime, outcome: Outcome) -> None:
        with sessions() as session:
            message = session.get(WebhookMessage, job.message_id)
            if message is None:  # its endpoint was deleted meanwhile
                return
            message.attempts += 1
            code = outcome.status_code
            if code is not None and 200 <= code < 300:
                message.status, message.next_attempt_at = MessageStatus.DELIVERED, None
            elif code == 410:
                message.status, message.next_attempt_at = MessageStatus.FAILED, None
                self._disable(session, job.endpoint_id, "the receiver answered 410 Gone")
            elif message.attempts > len(RETRY_DELAYS):
                message.status, message.next_attempt_at = MessageStatus.FAILED, None
            else:
                wait = self.spread(RETRY_DELAYS[message.attempts - 1])
                if outcome.retry_after is not None:
                    wait = max(wait, min(outcome.retry_after, MAX_RETRY_AFTER))
                message.next_attempt_at = self.clock() + wait
            session.add(message)
            session.add(
                WebhookAttempt(
                    message_id=message.id,
                    endpoint_id=job.endpoint_id,
                    event_type=job.event_type,
                    attempt=message.attempts,
                    created_at=started,
                    status_code=code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    next_attempt_at=message.next_attempt_at,
                )
            )
            session.commit()

    @staticmethod
    def _disable(session: Session, endpoint_id: UUID, reason: str) -> None:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is not None:
            endpoint.status, endpoint.disabled_reason = EndpointStatus.DISABLED, reason
            session.add(endpoint)

    def prune(self, sessions: SessionFactory, batch: int = 1000) -> int:
        """Delete delivered and failed messages created more than `retention` ago, with their attempts;
        returns how many messages went. Pending ones stay, however old: they are still owed."""
        cutoff, removed = self.clock() - self.retention, 0
        while True:
            with sessions() as session:
                ended = col(WebhookMessage.status).in_([MessageStatus.DELIVERED, MessageStatus.FAILED])
                before = col(WebhookMessage.created_at) < cutoff
                old = session.exec(select(WebhookMessage.id).where(ended, before).limit(batch)).all()
                if not old:
                    return removed
                session.exec(delete(WebhookAttempt).where(col(WebhookAttempt.message_id).in_(old)))
                session.exec(delete(WebhookMessage).where(col(WebhookMessage.id).in_(old)))
                session.commit()
            removed += len(old)

    async def deliver_periodically(self, sessions: SessionFactory, interval: float) -> None:
        """Deliver what is due now and every `interval` seconds until cancelled, and prune what is past
        its retention once per `PRUNE_EVERY`; failures are logged."""
        pruned_at = -PRUNE_EVERY
        while True:
            try:
                while await anyio.to_thread.run_sync(self.deliver_due, sessions) == PER_RUN:
                    pass  # as many as one call takes: more may be due at once
                if time.monotonic() - pruned_at >= PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    if removed := await anyio.to_thread.run_sync(self.prune, sessions):
                        log.info("pruned %d webhook messages past their retention", removed)
            except Exception:
                log.exception("webhook delivery failed; trying again in %s s", interval)
            await anyio.sleep(interval)


def _pinned(target: Target) -> str:
    """The URL with its host replaced by the vetted address (so DNS cannot change it now)."""
    address = target.addresses[0]
    host = f"[{address}]" if address.version == 6 else str(address)
    path = target.url.path or "/"
    query = f"?{target.url.query}" if target.url.query else ""
    return f"{target.url.scheme}://{host}:{target.port}{path}{query}"


def _drain(response: httpx.Response, *, deadline: float) -> None:
    """Read at most `MAX_RESPONSE_BYTES` of the answer, until `deadline` (a `perf_counter` time) at
    the latest: a receiver can make us read neither a flood nor a trickle."""
    if response.is_stream_consumed:  # a transport that answered from memory (tests)
        return
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES or time.perf_counter() > deadline:
            break


def _retry_after(response: httpx.Response, now: datetime) -> timedelta | None:
    """A response's Retry-After as a wait from `now`: delay-seconds or an HTTP date (RFC 9110 10.2.3);
    None when absent or unreadable (then the usual schedule applies)."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), int(MAX_RETRY_AFTER.total_seconds())))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an obsolete date form without a zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
