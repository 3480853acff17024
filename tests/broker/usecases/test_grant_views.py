"""The grant views (`broker.usecases.grant_views`) the brand API, the customer API and the portal all
show: one grant looks the same from every side, a deleted account shows to the brand only, and a page
costs the same queries whatever its size."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from uuid import uuid4

from sqlalchemy import event
from sqlmodel import Session
from support.core import FakeClock
from support.oauth import OFFER, REDIRECT

from broker.accounts.models import Brand, Customer
from broker.consent.models import Grant, GrantFacts, GrantStatus
from broker.consent.offer_schemas import OfferDraft
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from broker.usecases.grant_views import GrantView


def grants_of(runtime: Runtime, db: Session, count: int) -> tuple[Brand, Customer, list[Grant]]:
    brand = register_brand(
        db, name=f"Grocer {uuid4()}", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
    ).brand
    offer = runtime.offers.create(db, brand, OfferDraft.model_validate(OFFER))
    customer = runtime.accounts.create(db, f"{uuid4()}@example.org", "not-a-hash", verified=True)
    made = [
        runtime.grants.create(db, customer_id=customer.id, offer=offer, fields=["email"])
        for _ in range(count)
    ]
    db.commit()
    return brand, customer, made


@contextmanager
def statements(db: Session) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _facts(view: GrantView) -> tuple[GrantView, dict[str, Any]]:
    """A view with its grant as the values views read (`GrantFacts`), each with its type (a status is
    a `GrantStatus` whether the grant is an ORM object or a row)."""
    names = [name for name in dir(GrantFacts) if isinstance(getattr(GrantFacts, name), property)]
    assert len(names) == 21
    values = {name: getattr(view.grant, name) for name in names}
    return replace(view, grant=None), {name: (type(v), v) for name, v in values.items()}  # type: ignore[arg-type]


def test_a_grant_looks_the_same_to_its_brand_and_its_customer(
    runtime: Runtime, db: Session, clock: FakeClock
) -> None:
    brand, customer, (grant,) = grants_of(runtime, db, 1)
    clock.advance(days=200)  # past its expiry: expired to both, whatever the row says
    seen_by_brand = runtime.grant_views.for_brand(db, brand, grant.id)
    seen_by_customer = runtime.grant_views.for_customer(db, customer.id, grant.id)
    (on_dashboard,) = runtime.grant_views.dashboard(db, customer.id).rows
    # The same view, whether its grant is the ORM object (one grant) or a row of a page's query.
    assert _facts(seen_by_brand) == _facts(seen_by_customer) == _facts(on_dashboard.view)
    assert seen_by_brand.status is GrantStatus.EXPIRED and seen_by_brand.deletion.status == "due"
    assert seen_by_brand.brand == (brand.client_id, brand.name) and not seen_by_brand.account_deleted


def test_only_the_brand_sees_that_the_customer_deleted_their_account(runtime: Runtime, db: Session) -> None:
    brand, customer, (grant,) = grants_of(runtime, db, 1)
    runtime.account_deletion.delete(db, customer)
    db.commit()
    (view,) = runtime.grant_views.brand_page(db, brand, status=None, cursor=None, limit=10).items
    assert view.grant.id == grant.id and view.account_deleted and view.status is GrantStatus.REVOKED


def test_a_page_of_views_costs_the_same_queries_whatever_its_size(runtime: Runtime, db: Session) -> None:
    counts = []
    for size in (1, 4):
        brand, customer, _ = grants_of(runtime, db, size)
        with statements(db) as by_customer:
            page = runtime.grant_views.customer_page(
                db, customer.id, status=None, brand_client_id=None, cursor=None, limit=50
            )
        with statements(db) as by_brand:
            runtime.grant_views.brand_page(db, brand, status=None, cursor=None, limit=50)
        assert len(page.items) == size
        counts.append((len(by_customer), len(by_brand)))
    assert counts[0] == counts[1]
