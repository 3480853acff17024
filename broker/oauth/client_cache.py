"""Brands as the token endpoint sees them, kept in each server process and dropped the moment a brand
changes.

Every client-credentials token looks its brand up. Measured over HTTP (one worker, 32 clients), that
lookup cost a fifth of the token's rate on SQLite and two fifths on PostgreSQL, where it is a round
trip and a pooled connection. So a request that only reads (a client-credentials token) finds its brand
here, and reads the row only when the cache cannot vouch for it.

The cache vouches for an entry through the `BRANDS` stamp of `broker.signals`, which changes whenever
any brand may have changed, in this process, another process on the same SQLite database or another
node on PostgreSQL (that module says how). Every session that changed or deleted a brand (its
objects, or an ORM `UPDATE` or `DELETE` of the table) signals it. Adding a brand signals nothing: a
client id that was not found is never cached. While a PostgreSQL process is not listening, nothing is
served from the cache: every lookup reads the row.

What a customer or a brand can count on: a replaced secret stops working at once in the process that
replaced it and in every process on the same SQLite database; on other PostgreSQL nodes, as soon as
the notification arrives (milliseconds). Each entry also lives at most `ttl` seconds: a process that
died between its commit and its signal cannot leave an old secret working for longer than that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from broker.accounts.models import Brand
from broker.oauth.clients import ClientRecord
from broker.signals import BRANDS, Signals, StampedCache, changed

__all__ = ["ClientCache"]


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    if any(isinstance(item, Brand) for item in (*session.dirty, *session.deleted)):
        changed(session, BRANDS)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and any(mapper.class_ is Brand for mapper in state.all_mappers):
        changed(state.session, BRANDS)


class ClientCache(StampedCache[str, ClientRecord]):
    """Brands by client id, for requests that only read (see the module)."""

    def __init__(
        self,
        signals: Signals,
        *,
        ttl: float = 60.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(signals, ttl=ttl, size=size, clock=clock)
        self.signals = signals
