"""A grant's standing at one moment, as its views show it.

Expiry holds to the second: a live grant past its `expires_at` is expired (`effective_status`) whatever
its row says, and views show it with the ending it will be stored with (`settled_ending`) before the
lifecycle sweep records it, so reading a grant never needs to write. A listing carries, with each grant,
what its views need (`Listed`: its brand and its offer version's terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from broker.consent.models import GrantFacts, GrantStatus

__all__ = ["AcceptedTerms", "BrandName", "Listed", "effective_status", "lapsed", "settled_ending"]


def effective_status(grant: GrantFacts, now: datetime) -> GrantStatus:
    """The grant's state at `now`: a live grant past its expiry is expired, whatever is stored."""
    if grant.status in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED) and now >= grant.expires_at:
        return GrantStatus.EXPIRED
    return grant.status


def lapsed(grant: GrantFacts, now: datetime) -> bool:
    """Expired by the clock but not yet recorded as such (the sweep, or the next write, records it)."""
    return grant.status is not GrantStatus.EXPIRED and effective_status(grant, now) is GrantStatus.EXPIRED


def settled_ending(grant: GrantFacts, now: datetime, retention_days: int) -> tuple[datetime, datetime | None]:
    """The grant's `status_changed_at` and `deletion_due_at` at `now`, as they will be stored once a
    lapsed expiry is recorded (`retention_days`: its offer's)."""
    if not lapsed(grant, now):
        return grant.status_changed_at, grant.deletion_due_at
    return grant.expires_at, grant.expires_at + timedelta(days=retention_days)


@dataclass(frozen=True, slots=True)
class AcceptedTerms:
    """What a view of a grant needs of the offer version it accepted."""

    current: bool  # still the brand's active version (a grant can be renewed only then)
    retention_days: int


class BrandName(NamedTuple):
    """What a grant's views show of its brand."""

    client_id: str
    name: str


class Listed(NamedTuple):
    """A grant with what its views need: its brand's names and its offer version's terms."""

    grant: GrantFacts
    brand: BrandName
    terms: AcceptedTerms
