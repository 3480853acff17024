"""Standard Webhooks signing (spec 1.0.0, "Verifying webhook authenticity"), and where secrets come from.

Every request carries `webhook-id` (the message id, the same on every retry), `webhook-timestamp`
(unix seconds of this attempt) and `webhook-signature: v1,<base64 HMAC-SHA256>` over
`{id}.{timestamp}.{body}`, keyed with the endpoint's secret `whsec_<base64 of 32 bytes>`.

Secrets are derived, not stored. An endpoint's secret is HKDF-SHA256 (RFC 5869) of a server key,
with `info` naming this use, the endpoint id and the endpoint's `secret_version`. The database holds
only the version, so a copy of it (a backup, a leak) signs nothing; the secret is shown once, when it
is made, and recomputed for each delivery.

Why derive rather than seal a random secret: nothing to encrypt, wrap, re-wrap on KEK rotation or
lose; rotating one endpoint's secret is bumping its version (the old version's secret stops being
derived at once); and two servers compute the same secret without sharing anything but the key. The
price: the server key must never change, or every endpoint's secret changes with it, and whoever
holds that key can compute every secret. The server key is the broker's blind-index key, which
already has exactly that lifetime ("never rotated") and comes from the configured key provider (file
or env), so there is no new key to provision; HKDF's extract step and our own `info` label keep its
outputs unrelated to the blind index's HMAC tokens. Should that key ever have to change, the way out
is the one for a leaked secret: rotate each endpoint's secret and tell its brand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["SECRET_PREFIX", "WebhookSecrets", "headers", "sign"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_BYTES = 32  # the spec asks for 24 to 64 random bytes
_INFO = b"consentry webhook signing secret v1\x00"


class WebhookSecrets:
    """Derives each endpoint's signing secret from one server key."""

    def __init__(self, server_key: bytes) -> None:
        self._key = server_key

    def secret(self, endpoint_id: UUID, version: int) -> bytes:
        """The raw secret of `endpoint_id` at `version`."""
        info = _INFO + endpoint_id.bytes + version.to_bytes(4, "big")
        return HKDF(algorithm=hashes.SHA256(), length=SECRET_BYTES, salt=None, info=info).derive(self._key)

    def shown(self, endpoint_id: UUID, version: int) -> str:
        """The secret as a brand is given it: `whsec_` and base64."""
        return SECRET_PREFIX + base64.b64encode(self.secret(endpoint_id, version)).decode()


def sign(secret: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one attempt."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def headers(secret: bytes, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt, with the JSON content type."""
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }
