"""Verifying Consentry's webhooks, which follow the Standard Webhooks specification (v1.0.0,
https://www.standardwebhooks.com, "Verifying webhook authenticity").

A webhook carries `webhook-id` (the message id, the same on every retry), `webhook-timestamp` (unix
seconds of this attempt) and `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` signatures
over `{id}.{timestamp}.{body}` under the endpoint's secret (`whsec_<base64>`); several during a secret
rotation. `verify_webhook` accepts one when any v1 signature matches (constant-time), the timestamp is
within `tolerance` of now in either direction, and, given a `ReplayCache`, its id was not accepted
before. Only then is the body parsed into a `WebhookEvent`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from clients.brand.errors import WebhookReplayed, WebhookVerificationError

__all__ = ["MemoryReplayCache", "ReplayCache", "WebhookEvent", "sign_webhook", "verify_webhook"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not one
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class ReplayCache(Protocol):
    """Where accepted message ids are remembered (in memory, Redis `SET NX EX`, a database table …)."""

    def add(self, message_id: str, *, now: datetime, expires_at: datetime) -> bool:
        """Remember `message_id` until `expires_at`; False if it is remembered already. Must be atomic."""
        ...


class MemoryReplayCache:
    """An in-process `ReplayCache`: ids live until their timestamp leaves the tolerance window (after
    that the timestamp check refuses the message anyway). Holds at most `max_entries`, forgetting the
    oldest first. One process only: behind several workers, use a shared store."""

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._expiry: dict[str, datetime] = {}
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def add(self, message_id: str, *, now: datetime, expires_at: datetime) -> bool:
        """Remember `message_id`; False if it is remembered and not yet expired."""
        with self._lock:
            known = self._expiry.get(message_id)
            if known is not None and known > now:
                return False
            if len(self._expiry) >= self._max_entries:
                self._expiry = {k: v for k, v in self._expiry.items() if v > now}
                while len(self._expiry) >= self._max_entries:
                    del self._expiry[next(iter(self._expiry))]
            self._expiry.pop(message_id, None)
            self._expiry[message_id] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._expiry)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook: `type` (e.g. `grant.revoked`), when it happened, its `data`; `id` is the
    message id (use it to process each event once) and `sent_at` the time of this delivery attempt."""

    id: str
    type: str
    timestamp: datetime
    data: dict[str, Any]
    sent_at: datetime


def sign_webhook(*, secret: str, message_id: str, timestamp: int, body: bytes | str) -> str:
    """The `v1,<base64>` signature of a message, as the broker sends it (for testing a receiver)."""
    payload = body.encode() if isinstance(body, str) else body
    signed = f"{message_id}.{timestamp}.".encode() + payload
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_webhook(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
    seen: ReplayCache | None = None,
) -> WebhookEvent:
    """The event of a webhook request whose signature, timestamp and id check out.

    `body` must be the raw request body, exactly as received (not re-serialised JSON). Raises
    `WebhookVerificationError` saying what failed (answer 4xx), or `WebhookReplayed` when the id was
    accepted before (answer 2xx and do nothing).
    """
    key = _key(secret)
    now = now or datetime.now(UTC)
    fields = {name.lower(): value for name, value in headers.items()}
    message_id, stamp = fields.get("webhook-id", ""), fields.get("webhook-timestamp", "")
    signatures = fields.get("webhook-signature", "")
    if not (message_id and stamp and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not _TIMESTAMP.fullmatch(stamp):
        raise WebhookVerificationError("webhook-timestamp is not a whole number of unix seconds")
    sent_at = datetime.fromtimestamp(int(stamp), UTC)
    if sent_at < now - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp {stamp} is older than {tolerance}: refusing a stale message"
        )
    if sent_at > now + tolerance:
        raise WebhookVerificationError(f"webhook-timestamp {stamp} is more than {tolerance} in the future")
    payload = body.encode() if isinstance(body, str) else body
    expected = hmac.new(key, f"{message_id}.{stamp}.".encode() + payload, hashlib.sha256).digest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in _v1_signatures(signatures)):
        raise WebhookVerificationError("no v1 signature matches: wrong secret, or the message was altered")
    event = _event(message_id, payload, sent_at)
    if seen is not None and not seen.add(message_id, now=now, expires_at=sent_at + tolerance):
        raise WebhookReplayed(f"message {message_id!r} was accepted before", message_id=message_id)
    return event


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError(
            "the webhook secret is not whsec_ followed by base64; copy it as it was shown"
        ) from None
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded v1 signatures of the header; other versions and malformed entries are skipped."""
    found = []
    for item in header.split(" "):
        version, _, encoded = item.partition(",")
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except binascii.Error:
            continue
    return found


def _event(message_id: str, payload: bytes, sent_at: datetime) -> WebhookEvent:
    try:
        body = json.loads(payload)
        kind, data, at = body["type"], body["data"], datetime.fromisoformat(body["timestamp"])
        if not isinstance(kind, str) or not isinstance(data, dict) or at.tzinfo is None:
            raise TypeError(kind)
    except (ValueError, TypeError, KeyError):
        raise WebhookVerificationError(
            "the signature is valid but the body is not an event {type, timestamp, data}"
        ) from None
    return WebhookEvent(id=message_id, type=kind, timestamp=at, data=data, sent_at=sent_at)
