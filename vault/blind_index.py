"""Blind index: keyed lookup tokens, so nothing searchable is stored in clear.

HMAC-SHA-256 under a dedicated key, after normalisation (trim, Unicode NFC, lower case), keeping the
full 32-byte tag: exact-match lookup only, no prefix or fuzzy search. Each use has its own label so a
token for one purpose never matches another (an email token is not an address token).
"""

from __future__ import annotations

import hmac
import unicodedata
from hashlib import sha256
from typing import Literal

Purpose = Literal[
    "email",
    "email-skeleton",
    "client-address",
    "signup-address",
    "verify-address",
    "email-change",
    "signup-notice",
    "pairwise-subject",
    "password-change",
    "code-request",
    "code-attempt",
    "intent-owner",
    "rater",
]


def normalise(value: str) -> str:
    """Trim, NFC-normalise and lower-case, so equal inputs written differently match."""
    return unicodedata.normalize("NFC", value.strip()).lower()


def blind_token(key: bytes, purpose: Purpose, value: str) -> bytes:
    """The 32-byte lookup token for `value` under `key`, separated by `purpose`."""
    message = purpose.encode() + b"\x00" + normalise(value).encode()
    return hmac.new(key, message, sha256).digest()
