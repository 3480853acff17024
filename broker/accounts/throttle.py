"""Login throttling that slows attackers down without locking the owner out.

Failed attempts are counted against three keys, all blind tokens (`vault.blind_index`), so neither
emails nor IP addresses are stored:

- the (account, client address) pair: slows down after `slowdown_after` failures, locks at
  `max_failures` (429 + Retry-After for that address and that account only);
- the client address: slows down halfway, locks at its own limit (one address trying many accounts);
- the account, from every address together: only *slows password attempts* for that account, by a
  bounded delay, and never locks. A burst against one account from many addresses therefore cannot
  stop its owner; and a passkey login, or a second factor after a correct password, is never slowed
  by it at all.

Delays double from 125 ms up to `max_delay`. A success clears the pair's counter, not the address's
(one good password must not launder a stuffing run) nor the account's (the attacker's count stays
where it is). The state lives in the database, so several server processes share it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from broker.accounts.models import LoginThrottle
from broker.errors import TooManyAttempts

BASE_DELAY_SECONDS = 0.125


@dataclass(frozen=True, slots=True)
class ThrottleKey:
    """One throttled subject: its blind token, when its attempts slow down, when it locks (None:
    never; it only slows down)."""

    token: bytes
    slowdown_after: int
    max_failures: int | None


@dataclass(frozen=True, slots=True)
class LoginKeys:
    """The three keys of one login attempt."""

    pair: ThrottleKey
    address: ThrottleKey
    account: ThrottleKey

    @property
    def lockable(self) -> list[ThrottleKey]:
        """The keys that may lock: every step of a login checks them."""
        return [self.pair, self.address]

    @property
    def password(self) -> list[ThrottleKey]:
        """The keys a password attempt waits for."""
        return [self.pair, self.address, self.account]


def pair_token(account: bytes, address: bytes) -> bytes:
    """The token of an (account, address) pair, from the two blind tokens (both already keyed)."""
    return hashlib.sha256(b"login-pair\x00" + account + address).digest()


@dataclass(frozen=True, slots=True)
class Throttle:
    """The policy, with the clock injected."""

    window: timedelta
    lockout: timedelta
    max_delay: float
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

    def check_not_locked(self, session: Session, keys: Iterable[ThrottleKey]) -> None:
        """Raise TooManyAttempts (with Retry-After) when any of the keys is locked."""
        now = self.clock()
        for key in keys:
            row = self._current(session, key)
            if row is not None and row.locked_until is not None and row.locked_until > now:
                retry = max(1, math.ceil((row.locked_until - now).total_seconds()))
                raise TooManyAttempts(
                    f"too many failed logins from here; try again in {retry} seconds, "
                    "or sign in with a passkey",
                    retry_after=retry,
                )

    def delay_before_attempt(self, session: Session, keys: list[ThrottleKey]) -> float:
        """Raise TooManyAttempts when any key is locked; otherwise the seconds to wait before checking."""
        self.check_not_locked(session, keys)
        excess = 0
        for key in keys:
            row = self._current(session, key)
            if row is not None:
                excess = max(excess, row.failures - key.slowdown_after + 1)
        if excess <= 0:
            return 0.0
        # min() before the power: 2 ** a million failures is not a number we need.
        return float(min(self.max_delay, BASE_DELAY_SECONDS * 2 ** min(excess - 1, 16)))

    def limit(self, session: Session, key: ThrottleKey, what: str, *, count: bool = True) -> None:
        """A plain rate limit on `key`: 429 ("<what>; try again in N seconds") while it is locked;
        otherwise this attempt is counted against it (unless `count` is False: only failures count)."""
        try:
            self.check_not_locked(session, [key])
        except TooManyAttempts as exc:
            raise TooManyAttempts(
                f"{what}; try again in {exc.retry_after} seconds", retry_after=exc.retry_after
            ) from None
        if count:
            self.record_failure(session, [key])

    def allow(self, session: Session, key: ThrottleKey) -> bool:
        """A quiet limit on `key`: False while it is locked (the caller silently does nothing), else
        this attempt is counted and True."""
        try:
            self.check_not_locked(session, [key])
        except TooManyAttempts:
            return False
        self.record_failure(session, [key])
        return True

    def record_failure(self, session: Session, keys: Iterable[ThrottleKey]) -> None:
        """Count a failed attempt against every key, locking those that reach their limit."""
        now = self.clock()
        for key in keys:
            row = self._current(session, key) or LoginThrottle(token=key.token, window_started_at=now)
            row.failures += 1
            if key.max_failures is not None and row.failures >= key.max_failures:
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
