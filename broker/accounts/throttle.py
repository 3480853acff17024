"""Login throttling per account and per client address.

Both are keyed by blind tokens (`vault.blind_index`), so neither emails nor IP addresses are stored.
After a key's `slowdown_after` failures in a window each attempt is delayed (doubling, at most 2 s), and at
`max_failures` the key is locked for `lockout` and answers 429 with Retry-After. A success clears
the account's counter, not the address's: one good password must not launder a stuffing run.
The state lives in the database, so several server processes share it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from broker.accounts.models import LoginThrottle
from broker.errors import TooManyAttempts

MAX_DELAY_SECONDS = 2.0
BASE_DELAY_SECONDS = 0.125


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    """One throttled subject: its blind token, when its attempts slow down, when it locks."""

    token: bytes
    slowdown_after: int
    max_failures: int


@dataclass(frozen=True, slots=True)
class Throttle:
    """The policy, with the clock injected."""

    window: timedelta
    lockout: timedelta
    clock: Callable[[], datetime]

    def _current(self, session: Session, key: ThrottleKey) -> LoginThrottle | None:
        row = session.get(LoginThrottle, key.token)
        if row is None:
            return None
        now = self.clock()
        expired_window = now - row.window_started_at > self.window
        if expired_window and (row.locked_until is None or row.locked_until <= now):
            session.delete(row)
            session.flush()
            return None
        return row

    def delay_before_attempt(self, session: Session, keys: list[ThrottleKey]) -> float:
        """Raise TooManyAttempts when any key is locked; otherwise the seconds to wait before checking."""
        now, excess = self.clock(), 0
        for key in keys:
            row = self._current(session, key)
            if row is None:
                continue
            if row.locked_until is not None and row.locked_until > now:
                retry = max(1, math.ceil((row.locked_until - now).total_seconds()))
                raise TooManyAttempts(
                    f"too many failed logins; try again in {retry} seconds", retry_after=retry
                )
            excess = max(excess, row.failures - key.slowdown_after + 1)
        if excess <= 0:
            return 0.0
        return float(min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (excess - 1)))

    def record_failure(self, session: Session, keys: list[ThrottleKey]) -> None:
        """Count a failed attempt against every key, locking those that reach their limit."""
        now = self.clock()
        for key in keys:
            row = self._current(session, key) or LoginThrottle(token=key.token, window_started_at=now)
            row.failures += 1
            if row.failures >= key.max_failures:
                row.locked_until = now + self.lockout
                row.window_started_at = now  # the window restarts when the lock begins
            session.add(row)
        session.flush()

    def clear(self, session: Session, key: ThrottleKey) -> None:
        """Forget a key's failures (after a successful login)."""
        row = session.get(LoginThrottle, key.token)
        if row is not None:
            session.delete(row)
            session.flush()
