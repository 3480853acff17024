"""The lifecycle sweep: records what time alone changes, so it is logged and notified even when no
request touches the grant (an expiry is enforced on every read either way)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from broker.consent.grants import Grants
from broker.db import SessionFactory

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One sweep settles every lapsed grant, a committed batch at a time."""

    grants: Grants

    def sweep(self, sessions: SessionFactory) -> int:
        """Settle every grant whose expiry passed; returns how many."""
        total = 0
        while True:
            with sessions() as session:
                moved = self.grants.settle_lapsed(session, limit=BATCH)
                session.commit()
            total += moved
            if moved < BATCH:
                return total

    async def sweep_periodically(self, sessions: SessionFactory, interval: float) -> None:
        """Sweep now and every `interval` seconds until cancelled; a failure is logged and retried."""
        while True:
            try:
                moved = await anyio.to_thread.run_sync(self.sweep, sessions)
            except Exception:
                log.exception("the lifecycle sweep failed; trying again in %s s", interval)
            else:
                if moved:
                    log.info("lifecycle sweep: %d grants expired", moved)
            await anyio.sleep(interval)
