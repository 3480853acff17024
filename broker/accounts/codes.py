"""Emailed one-time codes that confirm an address: random, single-use, short-lived, stored as SHA-256.

A code is 20 characters of Crockford's base32 in five groups (`K7QX-M2PD-…`, 100 bits): enough that
guessing one is hopeless, so a code alone names its account (the link in the message needs nothing
else), and readable aloud or typed from a phone. Input is forgiving as Crockford's alphabet is:
case, spaces and dashes do not matter, `O` reads as `0` and `I`/`L` as `1`. Wrong codes are counted
per client address by the caller (`broker.accounts.throttle`); issuing a code for an account and
purpose withdraws the earlier ones, so only the newest message works.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlmodel import Session, col, delete, select

from broker.accounts.models import CodePurpose, EmailCode
from broker.digests import secret_digest
from broker.errors import CodeExpired, CodeRejected, CodeUsed

__all__ = ["ALPHABET", "EmailCodes", "new_code", "normalise_code"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_GROUPS, _GROUP = 5, 4
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh random code, grouped for reading."""
    characters = "".join(secrets.choice(ALPHABET) for _ in range(_GROUPS * _GROUP))
    return "-".join(characters[i : i + _GROUP] for i in range(0, len(characters), _GROUP))


def normalise_code(text: str) -> str:
    """A code as typed, in its issued form (upper case, grouped); unreadable input stays unmatched."""
    bare = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    return "-".join(bare[i : i + _GROUP] for i in range(0, len(bare), _GROUP))


@dataclass(frozen=True, slots=True)
class EmailCodes:
    """Issue and redeem codes, with the clock and their lifetime injected."""

    clock: Callable[[], datetime]
    ttl: timedelta

    def issue(
        self, session: Session, customer_id: UUID, purpose: CodePurpose, email_index: bytes
    ) -> tuple[EmailCode, str]:
        """A new code confirming the address behind `email_index`; earlier unused ones of the same
        purpose stop working. Returns the row and the code, which exists in clear only here."""
        session.exec(
            delete(EmailCode).where(
                col(EmailCode.customer_id) == customer_id,
                col(EmailCode.purpose) == purpose,
                col(EmailCode.used_at).is_(None),
            )
        )
        code, now = new_code(), self.clock()
        row = EmailCode(
            customer_id=customer_id, purpose=purpose, code_hash=secret_digest(code),
            email_index=email_index, created_at=now, expires_at=now + self.ttl,
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row, code

    def redeem(self, session: Session, code: str, *, purposes: Collection[CodePurpose]) -> EmailCode:
        """Use a code once: the row it names, now marked used; CodeRejected when it is unknown, for
        another purpose (a reset code does not verify an address), used or expired (each with its own
        problem type and a message that says what to do)."""
        digest = secret_digest(normalise_code(code))
        # Locked: two requests spending one code at once must not both read it as unused.
        row = session.exec(select(EmailCode).where(EmailCode.code_hash == digest).with_for_update()).first()
        if row is None or not hmac.compare_digest(row.code_hash, digest) or row.purpose not in purposes:
            raise CodeRejected("this code is not valid; check it against the newest message we sent you")
        if row.used_at is not None:
            raise CodeUsed("this code was already used; each code works once")
        if row.expires_at <= self.clock():
            raise CodeExpired("this code has expired; ask for a new one from your account page")
        row.used_at = self.clock()
        session.add(row)
        return row

    def withdraw(self, session: Session, customer_id: UUID, purposes: Collection[CodePurpose]) -> None:
        """Every unused code of the customer for these purposes stops working (after a reset, say)."""
        session.exec(
            delete(EmailCode).where(
                col(EmailCode.customer_id) == customer_id,
                col(EmailCode.purpose).in_(list(purposes)),
                col(EmailCode.used_at).is_(None),
            )
        )
