"""Grant views: a grant as its brand or its customer sees it right now, assembled once for the brand API
(`GET /v1/grants`), the customer API (`GET /v1/me/grants`) and the portal's pages.

A view is the grant's row and its brand with what is computed about it at one moment: the effective
status (an expiry holds to the second, whatever is stored), where its deletion stands, where its renewal
stands (its offer looked up) and whether its customer deleted their account (only a brand can see a
grant of a deleted account). A page of views costs the same few queries whatever its size. The portal's
dashboard adds each grant's obligations per state and its last read; its grant page adds the offer, the
shared values, the timeline, the reads per day, the obligations and the receipts.

These are plain dataclasses: `broker.api.grant_schemas` makes the HTTP shapes from them and
`broker.portal.views` the page text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.accounts.models import Brand
from broker.consent.access_log import AccessLog, AccessLogPage
from broker.consent.grants import Grants
from broker.consent.models import EndAcknowledgement, Grant, GrantFacts, GrantStatus, Offer
from broker.consent.renewal import Renewals, RenewalState
from broker.consent.retention import (
    AcknowledgementState,
    DeletionState,
    acknowledgement_state,
    deletion_state,
)
from broker.consent.standing import BrandName, Listed, effective_status, settled_ending
from broker.receipts.schemas import ReceiptPublic
from broker.receipts.service import Receipts
from broker.value.schemas import ObligationPublic, Totals
from broker.value.views import ValueViews
from vault.profile import Vault

__all__ = ["Dashboard", "DashboardRow", "GrantDetail", "GrantView", "GrantViewPage", "GrantViews"]

DASHBOARD_PAGE = 50  # the dashboard shows a customer's grants this many at a time, newest first
DETAIL_RECEIPTS = 20  # the grant page lists its newest receipts, up to this many


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant and its brand's names, with its state at one moment."""

    grant: GrantFacts  # a `Grant`, or a row of its columns (a page of them: `Grants.listing`)
    brand: BrandName
    status: GrantStatus  # effective: a live grant past its expiry is expired
    status_changed_at: datetime  # effective too: a lapsed grant's is its expiry
    deletion_due_at: datetime | None  # effective too: a lapsed grant's is its expiry + retention
    deletion: DeletionState
    acknowledgement: AcknowledgementState  # the brand's acknowledgement of the end
    renewal: RenewalState
    account_deleted: bool  # the customer deleted their account (the grant stays, revoked)


@dataclass(frozen=True, slots=True)
class GrantViewPage:
    """A page of views, newest first; `next_cursor` asks for the next one."""

    items: list[GrantView]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One grant on the customer's dashboard."""

    view: GrantView
    obligations: dict[str, int]  # how many in each state, overdue counted as such; empty: none declared
    last_read: datetime | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A page of a customer's grants across brands, newest first (`next_cursor` for the older ones),
    and the value totals over all of them, at `now`."""

    rows: list[DashboardRow]
    totals: list[Totals]
    now: datetime
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class GrantDetail:
    """Everything the grant page shows, at `now`."""

    view: GrantView
    offer: Offer  # the version the customer accepted
    values: dict[str, Any]  # the shared fields' values, decrypted for their owner
    log: AccessLogPage  # the grant's logged events, a page at a time
    reads: list[int]  # how many times it was read on each of the days asked for, oldest first
    obligations: list[ObligationPublic]
    receipts: list[ReceiptPublic]  # the newest ones
    now: datetime
    acknowledgement: EndAcknowledgement | None = None  # the brand's statement that it stopped


@dataclass(frozen=True, slots=True)
class GrantViews:
    """Grants as brands and customers see them; the clock is injected."""

    grants: Grants
    renewals: Renewals
    value: ValueViews
    access_log: AccessLog
    receipts: Receipts
    vault: Vault
    clock: Callable[[], datetime]

    def for_brand(self, session: Session, brand: Brand, grant_id: UUID) -> GrantView:
        """One of the brand's grants (another brand's is NotFound)."""
        grant = self.grants.for_brand(session, brand.id, grant_id)
        return self._views(session, self.grants.listed(session, [grant]), brand=brand)[0]

    def brand_page(
        self, session: Session, brand: Brand, *, status: GrantStatus | None, cursor: str | None, limit: int
    ) -> GrantViewPage:
        """The brand's grants, newest first, optionally in one state."""
        page = self.grants.listing(
            session, owner=("brand_id", brand.id), status=status, cursor=cursor, limit=limit
        )
        return GrantViewPage(self._views(session, page.items, brand=brand), page.next_cursor)

    def for_customer(self, session: Session, customer_id: UUID, grant_id: UUID) -> GrantView:
        """One of the customer's grants (anyone else's is NotFound). A read: it writes nothing."""
        return self.of(session, self.grants.seen_by_customer(session, customer_id, grant_id))

    def of(self, session: Session, grant: Grant) -> GrantView:
        """The customer's view of a grant they hold (after changing it, say)."""
        return self._views(session, self.grants.listed(session, [grant]))[0]

    def customer_page(
        self,
        session: Session,
        customer_id: UUID,
        *,
        status: GrantStatus | None,
        brand_client_id: str | None,
        cursor: str | None,
        limit: int,
    ) -> GrantViewPage:
        """The customer's grants across brands (or one brand's), newest first, optionally in one state."""
        page = self.grants.listing(
            session,
            owner=("customer_id", customer_id),
            status=status,
            brand_id=self.grants.brand_filter(session, brand_client_id),
            cursor=cursor,
            limit=limit,
        )
        return GrantViewPage(self._views(session, page.items), page.next_cursor)

    def dashboard(self, session: Session, customer_id: UUID, *, cursor: str | None = None) -> Dashboard:
        """A page of the customer's grants (the newest, or those older than `cursor`) with their value
        per state and last read, and value totals. A page, not every grant: the page's cost then stays
        the same however many grants a customer collects (it was the newest 200, and the older ones
        were not reachable from it at all)."""
        page = self.grants.listing(
            session, owner=("customer_id", customer_id), cursor=cursor, limit=DASHBOARD_PAGE
        )
        last_read = self.access_log.last_reads(session, customer_id, [item.grant.id for item in page.items])
        now = self.clock()
        views = self._views(session, page.items, now=now)
        states, totals = self.value.states_and_totals(session, customer_id, [v.grant.id for v in views])
        rows = [DashboardRow(v, states.get(v.grant.id, {}), last_read.get(v.grant.id)) for v in views]
        return Dashboard(rows, totals, now, page.next_cursor)

    def detail(
        self,
        session: Session,
        customer_id: UUID,
        grant_id: UUID,
        *,
        log_cursor: str | None,
        log_limit: int,
        read_days: int,
    ) -> GrantDetail:
        """One of the customer's grants with all the page shows; `read_days` of reads, today included."""
        grant = self.grants.for_customer(session, customer_id, grant_id)
        offer = session.get(Offer, grant.offer_id)
        assert offer is not None  # grants keep their offer version
        now = self.clock()
        view = self._views(session, self.grants.listed(session, [grant]), now=now)[0]
        values = self.vault.read(session, customer_id, grant.fields, omit_held=True)  # held: the browser's
        log = self.access_log.for_customer(
            session, customer_id, cursor=log_cursor, limit=log_limit, grant_id=grant.id
        )
        first = now.date() - timedelta(days=read_days - 1)
        reads = self.access_log.reads_per_day(session, customer_id, grant.id, first, read_days)
        obligations = self.value.for_grant_as_customer(session, grant)
        receipts = self.receipts.for_customer(
            session, customer_id, cursor=None, limit=DETAIL_RECEIPTS, grant_id=grant.id
        )
        acknowledged = session.get(EndAcknowledgement, grant.id)
        return GrantDetail(view, offer, values, log, reads, obligations, receipts.items, now, acknowledged)

    def _views(
        self,
        session: Session,
        listed: Sequence[Listed],
        *,
        brand: Brand | None = None,
        now: datetime | None = None,
    ) -> list[GrantView]:
        """Views of these grants: as one `brand` sees them (its customers may have deleted their
        account), or as their customer does."""
        now = now or self.clock()
        grants = [item.grant for item in listed]
        gone = set[UUID]() if brand is None else self.grants.customers_deleted(session, grants)
        views, window = [], self.grants.end_ack_window
        for grant, owner, terms in listed:
            changed_at, due_at = settled_ending(grant, now, terms.retention_days)
            views.append(
                GrantView(
                    grant=grant,
                    brand=owner,
                    status=effective_status(grant, now),
                    status_changed_at=changed_at,
                    deletion_due_at=due_at,
                    deletion=deletion_state(grant, now, due_at=due_at),
                    acknowledgement=acknowledgement_state(
                        grant, now, ended_at=None if due_at is None else changed_at, window=window
                    ),
                    renewal=self.renewals.state(grant, offer_current=terms.current),
                    account_deleted=grant.customer_id in gone,
                )
            )
        return views
