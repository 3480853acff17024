"""The lifecycle sweep: records what time alone changes, so it is logged and notified even when no
request touches the grant (an expiry is enforced on every read either way): grants that expired,
deletions that passed their due date without an attestation, and brands that are half-way through
their window to acknowledge a grant's end without having done so (a reminder). It also forgets what
has outlived its retention (`prunes`: security activity past its period, sessions that can never
work again)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from broker.consent.grants import Grants
from broker.consent.retention import Retention
from broker.db import SessionFactory
from broker.usecases.acknowledgements import EndAcknowledgements

log = logging.getLogger(__name__)

BATCH = 500


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One sweep settles every lapsed grant, then tells each overdue deletion, a committed batch at a time."""

    grants: Grants
    retention: Retention
    acknowledgements: EndAcknowledgements
    prunes: list[Callable[..., int]] = field(default_factory=list)

    def sweep(self, sessions: SessionFactory) -> int:
        """Settle every grant whose expiry passed, then tell each deletion newly overdue, then prune;
        returns how many grants it recorded something for."""
        # Expiries first: a grant that lapsed long ago may owe its deletion already.
        moved = self._batches(sessions, self.grants.settle_lapsed) + self._batches(
            sessions, self.retention.tell_overdue
        )
        self._batches(sessions, self.acknowledgements.remind)  # a reminder records nothing: not counted
        for prune in self.prunes:
            self._batches(sessions, prune)
        return moved

    @staticmethod
    def _batches(sessions: SessionFactory, step: Callable[..., int]) -> int:
        total = 0
        while True:
            with sessions() as session:
                done = step(session, limit=BATCH)
                session.commit()
            total += done
            if done < BATCH:
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
                    log.info("lifecycle sweep: %d grants expired or overdue for deletion", moved)
            await anyio.sleep(interval)
