"""Auditors: people or services allowed to read the whole audit log, each with a bearer token.

The token exists in clear only when it is made; the database keeps its SHA-256 (as for sessions).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from broker.accounts.models import Auditor
from broker.digests import secret_digest
from broker.errors import NotAuthenticated, ValidationFailed

__all__ = ["AUDITOR_TOKEN_PREFIX", "MAX_NAME_LENGTH", "Auditors"]

AUDITOR_TOKEN_PREFIX = "cat_"  # noqa: S105 - a prefix that makes leaked tokens recognisable, not a secret
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Auditors:
    """Create auditors and authenticate their tokens."""

    clock: Callable[[], datetime]

    def create(self, session: Session, name: str) -> tuple[Auditor, str]:
        """A new auditor and its token (256 random bits), which is not stored and cannot be shown again."""
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME_LENGTH or not name.isprintable():
            detail = f"an auditor's name is 1 to {MAX_NAME_LENGTH} printable characters"
            raise ValidationFailed(detail, errors=[{"pointer": "/name", "detail": detail}])
        token = AUDITOR_TOKEN_PREFIX + secrets.token_urlsafe(32)
        auditor = Auditor(name=name, token_hash=secret_digest(token), created_at=self.clock())
        session.add(auditor)
        session.flush()
        return auditor, token

    def authenticate(self, session: Session, token: str) -> Auditor:
        """The auditor holding `token`; NotAuthenticated if the token is unknown or was revoked."""
        digest = secret_digest(token)
        auditor = session.exec(select(Auditor).where(Auditor.token_hash == digest)).first()
        if auditor is None or not hmac.compare_digest(auditor.token_hash, digest):
            raise NotAuthenticated(
                "this is not an auditor token; an operator issues one with `consentry auditors create`"
            )
        if auditor.revoked_at is not None:
            raise NotAuthenticated("this auditor token was revoked; ask the operator for a new one")
        return auditor
