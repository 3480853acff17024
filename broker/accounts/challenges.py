"""Single-use, short-lived login challenges: WebAuthn challenges and pending second factors.

A challenge is stored only as the SHA-256 of its base64url form, and a pending login's `mfa_token`
only as its digest, so a database reader can answer neither. Each row is bound to what it was issued
for (a purpose, and a customer or a session where there is one), expires after `ttl`, and is deleted
when used: a replayed WebAuthn assertion finds no challenge and is refused before any signature is
checked. Expired rows are swept whenever a new one is issued.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from sqlmodel import Session, col, delete, select
from webauthn.helpers import bytes_to_base64url

from broker.accounts.factor_models import LoginChallenge
from broker.digests import secret_digest
from broker.errors import ChallengeInvalid, LoginStepExpired

MFA_TOKEN_PREFIX = "mfa_"  # noqa: S105 - makes leaked tokens recognisable, not a secret
CHALLENGE_BYTES = 32


class Purpose(StrEnum):
    """What a challenge was issued for; it is good for nothing else."""

    PASSKEY_LOGIN = "passkey-login"
    SECOND_FACTOR = "second-factor"
    REGISTER = "passkey-register"
    REAUTHENTICATE = "reauthenticate"


def challenge_digest(challenge: bytes) -> bytes:
    """The stored form of a WebAuthn challenge."""
    return secret_digest(bytes_to_base64url(challenge))


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    """A new challenge row, with its challenge bytes and token in clear (only in this response)."""

    row: LoginChallenge
    challenge: bytes | None
    token: str | None


@dataclass(frozen=True, slots=True)
class Challenges:
    """Issue and take challenges, with the clock injected."""

    ttl: timedelta
    clock: Callable[[], datetime]

    def issue(
        self,
        session: Session,
        purpose: Purpose,
        *,
        customer_id: UUID | None = None,
        session_id: UUID | None = None,
        with_challenge: bool = True,
        with_token: bool = False,
    ) -> IssuedChallenge:
        """A new challenge for `purpose`, bound to the customer and session given."""
        now = self.clock()
        session.exec(delete(LoginChallenge).where(col(LoginChallenge.expires_at) <= now))
        challenge = secrets.token_bytes(CHALLENGE_BYTES) if with_challenge else None
        token = MFA_TOKEN_PREFIX + secrets.token_urlsafe(32) if with_token else None
        row = LoginChallenge(
            purpose=purpose.value,
            challenge_hash=challenge_digest(challenge) if challenge else None,
            token_hash=secret_digest(token) if token else None,
            customer_id=customer_id,
            session_id=session_id,
            expires_at=now + self.ttl,
        )
        session.add(row)
        session.flush()
        return IssuedChallenge(row=row, challenge=challenge, token=token)

    def renew(self, session: Session, row: LoginChallenge) -> IssuedChallenge:
        """A new WebAuthn challenge for a pending login (the page is shown again after a failure);
        the old challenge stops working."""
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        row.challenge_hash = challenge_digest(challenge)
        session.add(row)
        session.flush()
        return IssuedChallenge(row=row, challenge=challenge, token=None)

    def by_token(self, session: Session, purpose: Purpose, token: str) -> LoginChallenge:
        """The live pending login behind an `mfa_token`; 401 when it is unknown, used or expired."""
        # Locked, as `take` is: a pending login finished twice at once must open one session only.
        row = session.exec(
            select(LoginChallenge).where(LoginChallenge.token_hash == secret_digest(token)).with_for_update()
        ).first()
        if row is None or row.purpose != purpose or row.expires_at <= self.clock():
            raise LoginStepExpired(
                "this sign-in step has expired or was already used; start again with your password"
            )
        return row

    def take(
        self,
        session: Session,
        purpose: Purpose,
        challenge: bytes,
        *,
        customer_id: UUID | None = None,
        session_id: UUID | None = None,
    ) -> None:
        """Use up the challenge a client signed; 401 when it is unknown, used, expired or was issued
        for something else (another purpose, customer or session)."""
        row = session.exec(
            select(LoginChallenge)
            .where(LoginChallenge.challenge_hash == challenge_digest(challenge))
            .with_for_update()
        ).first()
        bound = row is not None and (
            row.purpose == purpose
            and (customer_id is None or row.customer_id == customer_id)
            and (session_id is None or row.session_id == session_id)
        )
        if row is None or not bound or row.expires_at <= self.clock():
            raise ChallengeInvalid(
                "this passkey challenge has expired, was already used or was issued for something else; "
                "ask for new options and try again",
            )
        self.discard(session, row)

    def discard(self, session: Session, row: LoginChallenge) -> None:
        """Delete a challenge that has been used (or failed too often)."""
        session.delete(row)
        session.flush()
