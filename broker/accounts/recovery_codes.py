"""One-time recovery codes: the way in when the phone with the authenticator app is lost.

Ten codes of 80 random bits each (16 base32 characters, shown as four groups of four), stored only
as SHA-256 digests (80 bits is beyond brute force, so no slow hash is needed). They are shown once,
when made; each works once; making new ones voids the old set.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlmodel import Session, col, delete, func, select

from broker.accounts.factor_models import RecoveryCode
from broker.digests import secret_digest

COUNT = 10


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


@dataclass(frozen=True, slots=True)
class RecoveryCodes:
    """Make, use and count a customer's recovery codes."""

    clock: Callable[[], datetime]

    def regenerate(self, session: Session, customer_id: UUID) -> list[str]:
        """A new set of codes, in clear for this once; the old set stops working."""
        self.delete_all(session, customer_id)
        codes = [_new_code() for _ in range(COUNT)]
        now = self.clock()
        for code in codes:
            session.add(
                RecoveryCode(
                    customer_id=customer_id, code_hash=secret_digest(_normalise(code)), created_at=now
                )
            )
        session.flush()
        return codes

    def use(self, session: Session, customer_id: UUID, code: str) -> bool:
        """Spend a code: True when it was one of the customer's unused codes (now used)."""
        row = session.exec(
            select(RecoveryCode)
            .where(
                RecoveryCode.code_hash == secret_digest(_normalise(code)),
                RecoveryCode.customer_id == customer_id,
                col(RecoveryCode.used_at).is_(None),
            )
            .with_for_update()  # two requests spending one code at once: the second waits, then misses
        ).first()
        if row is None:
            return False
        row.used_at = self.clock()
        session.add(row)
        session.flush()
        return True

    def remaining(self, session: Session, customer_id: UUID) -> int:
        """How many unused codes the customer has."""
        query = select(func.count()).where(
            RecoveryCode.customer_id == customer_id, col(RecoveryCode.used_at).is_(None)
        )
        return int(session.exec(query).one())

    def delete_all(self, session: Session, customer_id: UUID) -> None:
        """Void every code (a new set is made, or the last second factor is gone)."""
        session.exec(delete(RecoveryCode).where(col(RecoveryCode.customer_id) == customer_id))
        session.flush()
