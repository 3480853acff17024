"""Tokens a brand holds: a `TokenSet` from the token endpoint, and the `GrantSession` that keeps a
customer's grant readable by refreshing it (refresh tokens rotate: the newest one is the only good one)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

__all__ = ["GrantSession", "TokenSet"]


@dataclass(frozen=True, slots=True)
class TokenSet:
    """An access token, when it expires (by the client's clock), and the refresh token that replaces it."""

    access_token: str
    expires_at: datetime
    scope: str = ""
    refresh_token: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes."""
        return frozenset(self.scope.split())

    def expires_within(self, now: datetime, leeway: timedelta) -> bool:
        """True when the access token is expired, or will be within `leeway`."""
        return self.expires_at - leeway <= now

    @property
    def grant_id(self) -> UUID | None:
        """The grant a customer's access token belongs to (its `grant_id` claim), None for a brand token.

        Read without checking the signature: the token came straight from the token endpoint over the
        brand's own connection, and the broker checks it on every use anyway."""
        try:
            payload = self.access_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return (
                UUID(str(claims["grant_id"])) if isinstance(claims, dict) and "grant_id" in claims else None
            )
        except (IndexError, ValueError, binascii.Error):
            return None


@dataclass(eq=False)
class GrantSession:
    """One customer's grant as the brand holds it: the current tokens, replaced on every refresh.

    Persist `tokens` (e.g. in `on_refresh`) and rebuild with `GrantSession(tokens)`; keep only the newest
    refresh token, because presenting an older one revokes the grant's tokens. A session may be shared
    between threads (sync client) or tasks (async client): refreshes are serialised per session.
    """

    tokens: TokenSet
    on_refresh: Callable[[TokenSet], None] | None = None
    sealed_version: int = 0  # the newest version of a self-custody grant this session opened
    _thread_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _task_lock: asyncio.Lock | None = field(default=None, init=False, repr=False)

    @property
    def grant_id(self) -> UUID:
        """The grant these tokens belong to (for `deliver_value`, `get_grant` …)."""
        grant_id = self.tokens.grant_id
        if grant_id is None:
            raise ValueError("these tokens name no grant: a GrantSession holds a customer's grant tokens")
        return grant_id

    def replace(self, tokens: TokenSet) -> None:
        """Keep the new tokens (called by the clients after a refresh) and tell `on_refresh`."""
        self.tokens = tokens
        if self.on_refresh is not None:
            self.on_refresh(tokens)

    def thread_lock(self) -> threading.Lock:
        """The lock that serialises refreshes between threads."""
        return self._thread_lock

    def task_lock(self) -> asyncio.Lock:
        """The lock that serialises refreshes between tasks (created in the running event loop)."""
        if self._task_lock is None:
            self._task_lock = asyncio.Lock()
        return self._task_lock
