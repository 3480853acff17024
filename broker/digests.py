"""The one form in which we store a bearer secret: session and auditor tokens, OAuth codes, refresh
tokens and client secrets are kept only as their SHA-256."""

from __future__ import annotations

import hashlib

__all__ = ["secret_digest"]


def secret_digest(secret: str) -> bytes:
    """SHA-256 of a secret we issued (256 random bits each, so no salt or slow hash is needed)."""
    return hashlib.sha256(secret.encode()).digest()
