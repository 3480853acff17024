"""The dashboard's value figures are counted by the database (`ValueViews.states_and_totals`): they
must equal the definition, obligation by obligation (`Obligation.overdue`, and sums per currency or
points over every state but cancelled), for any mix of states, due dates, kinds and amounts."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select
from support.oauth import OFFER, REDIRECT

from broker.consent.models import Grant
from broker.consent.offer_schemas import OfferDraft
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from broker.value.amounts import from_minor
from broker.value.models import Obligation, ObligationStatus, Schedule
from broker.value.schemas import Totals

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KINDS = [("voucher", "EUR"), ("cash", "GBP"), ("points", None), ("discount", None), ("service", None)]
BUCKETS = ("owed", "overdue", "delivered", "confirmed", "disputed")

obligations = st.lists(
    st.tuples(
        st.integers(0, 2),  # which of the customer's grants
        st.sampled_from(list(ObligationStatus)),
        st.sampled_from([-86_400, -1, 0, 1, 86_400]),  # due, in seconds from now: the edge included
        st.sampled_from(KINDS),
        st.one_of(st.none(), st.integers(0, 10**7)),
    ),
    max_size=25,
)


def expected(rows: list[Obligation], shown: list[Grant]) -> tuple[dict[object, dict[str, int]], list[Totals]]:
    counts: dict[object, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    for row in rows:
        state = "overdue" if row.overdue(NOW) else row.status.value
        if row.grant_id in {g.id for g in shown}:
            counts[row.grant_id][state] += 1
        unit = row.currency or ("POINTS" if row.kind == "points" else None)
        if unit is not None and row.amount_minor is not None and row.status is not ObligationStatus.CANCELLED:
            sums[unit][state] += row.amount_minor
    totals = [
        Totals(
            currency=unit,
            declared=from_minor(sum(values.values())) or "0.00",
            **{bucket: from_minor(values[bucket]) or "0.00" for bucket in BUCKETS},
        )
        for unit, values in sorted(sums.items())
    ]
    return {k: dict(v) for k, v in counts.items()}, totals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(made=obligations)
def test_the_dashboard_s_figures_are_the_definition_s(
    runtime: Runtime,
    db: Session,
    made: list[tuple[int, ObligationStatus, int, tuple[str, str | None], int | None]],
) -> None:
    savepoint = db.begin_nested()
    try:
        brand = register_brand(
            db, name=f"B {uuid4()}", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
        )
        offer = runtime.offers.create(db, brand.brand, OfferDraft.model_validate(OFFER))
        customer = runtime.accounts.create(db, f"{uuid4()}@example.org", "not-a-hash", verified=True)
        grants = [
            runtime.grants.create(db, customer_id=customer.id, offer=offer, fields=["email"])
            for _ in range(3)
        ]
        for grant in grants:  # the offer's own obligations: start from none
            for row in db.exec(select(Obligation).where(Obligation.grant_id == grant.id)):
                db.delete(row)
        db.flush()
        rows = [
            Obligation(
                grant_id=grants[which].id,
                brand_id=brand.brand.id,
                customer_id=customer.id,
                schedule=Schedule.MONTHLY,
                period=period,
                declared={},
                kind=kind,
                amount_minor=amount,
                currency=currency,
                due_at=NOW + timedelta(seconds=due),
                status=status,
                created_at=NOW,
                status_changed_at=NOW,
            )
            for period, (which, status, due, (kind, currency), amount) in enumerate(made)
        ]
        db.add_all(rows)
        db.flush()
        shown = grants[:2]  # the dashboard counts the grants it shows; the totals are over all
        views = runtime.grant_views.value
        original = views.clock
        object.__setattr__(views, "clock", lambda: NOW)
        try:
            counts, totals = views.states_and_totals(db, customer.id, [g.id for g in shown])
            assert views.totals(db, customer.id) == totals
        finally:
            object.__setattr__(views, "clock", original)
        assert ({k: dict(v) for k, v in counts.items()}, totals) == expected(rows, shown)
    finally:
        savepoint.rollback()
