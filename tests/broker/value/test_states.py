"""An obligation changes state only as `broker.value.states.TRANSITIONS` allows: every (state, event)
pair either moves as the table says or is refused with the 409 the API has always answered, and the
table is the one the ledger's behaviour tests (tests/broker/value/test_ledger.py) walk through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, func, select
from support.oauth import OFFER, REDIRECT

from broker.accounts.models import Customer
from broker.audit.entries import Actor, Kind
from broker.audit.models import AuditEntry
from broker.consent.models import Grant
from broker.consent.offer_schemas import OfferDraft
from broker.errors import Conflict
from broker.oauth.clients import register_brand
from broker.runtime import Runtime
from broker.value import states
from broker.value.models import Obligation, ObligationStatus, Schedule
from broker.value.states import TRANSITIONS, Event
from vault.models import VaultSecret
from vault.sqltypes import utcnow

S, E = ObligationStatus, Event

# What the ledger allowed before the table existed (its status checks, written out), and what the
# behaviour tests exercise: deliver, dispute, answer, withdraw, confirm, cancel on a grant ended unread;
# then an auditor's decisions (tests/broker/value/test_disputes.py).
EXPECTED = {
    (S.OWED, E.DELIVER): S.DELIVERED,
    (S.OWED, E.CANCEL): S.CANCELLED,
    (S.DELIVERED, E.CONFIRM): S.CONFIRMED,
    (S.DELIVERED, E.DISPUTE): S.DISPUTED,
    (S.DISPUTED, E.CONFIRM): S.CONFIRMED,
    (S.DISPUTED, E.WITHDRAW): S.DELIVERED,
    (S.DISPUTED, E.ANSWER): S.DISPUTED,
    # Disputes decided by an auditor (broker.value.disputes)
    (S.DISPUTED, E.REJECT_ANSWER): S.DISPUTED,
    (S.DISPUTED, E.UPHOLD): S.OWED,
    (S.DISPUTED, E.OVERRULE): S.CONFIRMED,
}
PAIRS = [(state, event) for state in ObligationStatus for event in Event]
# The refusals as the API answered them: (problem slug, detail after "obligation '<id>' ").
REFUSED = {
    E.DELIVER: ("value-settled", "is already {}: deliver once only"),
    E.ANSWER: ("conflict", "is {}, not disputed: nothing to answer"),
    E.CONFIRM: ("conflict", "is {}: it cannot be confirmed; only a delivered value can be confirmed"),
    E.DISPUTE: (
        "conflict",
        "is {}: it cannot be disputed; only a delivered, unconfirmed value can be disputed",
    ),
    E.WITHDRAW: ("conflict", "is {}: it cannot be withdrawn from dispute; it is not disputed"),
    E.CANCEL: ("conflict", "is {}: it cannot be cancelled; only an owed value can be cancelled"),
    E.REJECT_ANSWER: ("conflict", "is {}, not disputed: there is no answer to reject"),
    E.UPHOLD: ("conflict", "is {}, not disputed: there is nothing to decide"),
    E.OVERRULE: ("conflict", "is {}, not disputed: there is nothing to decide"),
}
LOGGED = {
    E.DELIVER: Kind.VALUE_DELIVERED,
    E.CONFIRM: Kind.VALUE_CONFIRMED,
    E.DISPUTE: Kind.VALUE_DISPUTED,
    E.ANSWER: Kind.VALUE_DISPUTE_ANSWERED,
    E.WITHDRAW: Kind.VALUE_DISPUTE_WITHDRAWN,
    E.CANCEL: Kind.VALUE_CANCELLED,
    E.REJECT_ANSWER: Kind.VALUE_ANSWER_REJECTED,
    E.UPHOLD: Kind.DISPUTE_DECIDED,
    E.OVERRULE: Kind.DISPUTE_DECIDED,
}
# The legal way from owed to each state.
PATH = {
    S.OWED: [],
    S.DELIVERED: [E.DELIVER],
    S.DISPUTED: [E.DELIVER, E.DISPUTE],
    S.CONFIRMED: [E.DELIVER, E.CONFIRM],
    S.CANCELLED: [E.CANCEL],
}


def an_obligation(status: ObligationStatus, *, since: datetime) -> Obligation:
    """A row in memory, for the table alone."""
    return Obligation(
        id=uuid4(), grant_id=uuid4(), brand_id=uuid4(), customer_id=uuid4(), schedule=Schedule.ONCE,
        declared={"kind": "voucher"}, kind="voucher", due_at=since, created_at=since, status=status,
        status_changed_at=since,
    )  # fmt: skip


def test_the_table_is_the_ledgers_behaviour() -> None:
    table = {(s, e): to for s, moves in TRANSITIONS.items() for e, to in moves.items()}
    assert table == EXPECTED
    assert set(TRANSITIONS) == set(ObligationStatus), "every state has a row, final ones an empty one"
    assert not TRANSITIONS[S.CONFIRMED] and not TRANSITIONS[S.CANCELLED], "confirmed and cancelled are final"


def test_every_state_is_reached_from_owed_by_its_path() -> None:
    for state, path in PATH.items():
        obligation = an_obligation(S.OWED, since=utcnow())
        for event in path:
            states.move(obligation, event, at=utcnow())
        assert obligation.status is state


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_a_move_follows_the_table_or_is_refused_as_before(state: ObligationStatus, event: Event) -> None:
    before, at = utcnow() - timedelta(days=1), utcnow()
    obligation = an_obligation(state, since=before)
    if (state, event) in EXPECTED:
        assert states.move(obligation, event, at=at) is EXPECTED[state, event]
        assert obligation.status is EXPECTED[state, event]
        changed = EXPECTED[state, event] is not state
        assert obligation.status_changed_at == (at if changed else before), "an answer keeps the since"
        return
    with pytest.raises(Conflict) as refused:
        states.move(obligation, event, at=at)
    slug, detail = REFUSED[event]
    assert (refused.value.slug, refused.value.status) == (slug, 409)
    assert refused.value.detail == f"obligation '{obligation.id}' " + detail.format(state.value)
    assert (obligation.status, obligation.status_changed_at) == (state, before), "a refusal changes nothing"


@dataclass
class Owed:
    """One grant owing one voucher, made straight through the services."""

    runtime: Runtime
    session: Session
    grant: Grant
    customer: Customer
    obligation: Obligation

    @classmethod
    def make(cls, runtime: Runtime, session: Session) -> Owed:
        brand = register_brand(
            session, name=f"Grocer {uuid4()}", redirect_uris=[REDIRECT], public=False, clock=runtime.clock
        ).brand
        offer = runtime.offers.create(session, brand, OfferDraft.model_validate(OFFER))
        customer = runtime.accounts.create(session, f"{uuid4()}@example.org", "not-a-hash", verified=True)
        grant = runtime.grants.create(session, customer_id=customer.id, offer=offer, fields=["email"])
        obligation = session.exec(select(Obligation).where(Obligation.grant_id == grant.id)).one()
        session.commit()  # audit entries are appended as their transaction commits
        return cls(runtime, session, grant, customer, obligation)

    def apply(self, event: Event) -> None:
        """The event, through the service call that makes it happen (HTTP calls the same ones), then a
        commit (of whatever a refusal left behind too: it must be nothing)."""
        try:
            self._call(event)
        finally:
            self.session.commit()

    def _call(self, event: Event) -> None:
        ledger, session, grant, customer_id = self.runtime.value, self.session, self.grant, self.customer.id
        oid = self.obligation.id
        match event:
            case E.DELIVER:
                ledger.deliver(session, grant, obligation_id=oid, kind="voucher", amount=Decimal("10.00"),
                               currency="EUR", redemption="GROCER-10")  # fmt: skip
            case E.CONFIRM:
                ledger.confirm(session, customer_id, oid)
            case E.DISPUTE:
                ledger.dispute(session, customer_id, oid, "the code is rejected")
            case E.ANSWER:
                ledger.answer(session, grant, oid, "try again")
            case E.WITHDRAW:
                ledger.withdraw_dispute(session, customer_id, oid)
            case E.CANCEL:  # the grant ends before any read
                self.runtime.grants.revoke(session, grant, by=Actor.CUSTOMER)
            case E.REJECT_ANSWER:
                ledger.reject_answer(session, customer_id, oid)
            case E.UPHOLD:  # an auditor's decision (who may decide is broker.value.disputes' to check)
                ledger.uphold(session, self.obligation, self.runtime.clock() + timedelta(days=7))
            case E.OVERRULE:
                ledger.overrule(session, self.obligation)

    def logged(self) -> list[str]:
        kind = col(AuditEntry.kind)
        query = select(AuditEntry.kind).where(kind.startswith("value.") | (kind == Kind.DISPUTE_DECIDED))
        return list(self.session.exec(query.order_by(col(AuditEntry.index))))

    def sealed(self) -> int:
        return self.session.exec(select(func.count()).select_from(VaultSecret)).one()


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_the_ledger_moves_an_obligation_only_as_the_table_says(
    state: ObligationStatus, event: Event, runtime: Runtime, db: Session
) -> None:
    owed = Owed.make(runtime, db)
    answered = [E.ANSWER] if (state, event) == (S.DISPUTED, E.REJECT_ANSWER) else []  # something to reject
    for step in PATH[state] + answered:
        owed.apply(step)
    assert owed.obligation.status is state
    logged, sealed = owed.logged(), owed.sealed()
    if event is E.CANCEL and state is not S.OWED:
        owed.apply(event)  # a grant ending leaves what was settled as it is: nothing to refuse
        assert (owed.obligation.status, owed.logged()) == (state, logged)
        return
    if (state, event) in EXPECTED:
        owed.apply(event)
        assert owed.obligation.status is EXPECTED[state, event]
        assert owed.logged() == [*logged, LOGGED[event].value]
        return
    with pytest.raises(Conflict) as refused:
        owed.apply(event)
    slug, detail = REFUSED[event]
    assert refused.value.slug == slug
    assert refused.value.detail == f"obligation '{owed.obligation.id}' " + detail.format(state.value)
    db.refresh(owed.obligation)
    assert owed.obligation.status is state, "a refused event changes nothing"
    assert (owed.logged(), owed.sealed()) == (logged, sealed), "nor logs or seals anything"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.sampled_from([e for e in Event if e is not E.CANCEL]), max_size=6))
def test_any_sequence_of_events_ends_where_the_table_leads(
    events: list[Event], runtime: Runtime, db: Session
) -> None:
    owed, expected, accepted = Owed.make(runtime, db), S.OWED, 0
    answered = rejected = False  # beyond the table: only an answer can be rejected, and once
    logged = len(owed.logged())
    for event in events:
        try:
            owed.apply(event)
        except Conflict:
            assert (expected, event) not in EXPECTED or (event is E.REJECT_ANSWER and not answered)
            db.refresh(owed.obligation)
        else:
            repeated = event is E.REJECT_ANSWER and rejected  # said once already: nothing new to log
            expected, accepted = EXPECTED[expected, event], accepted + (0 if repeated else 1)
            if event is E.DISPUTE:
                answered = rejected = False
            answered, rejected = (
                answered or event is E.ANSWER,
                (rejected or event is E.REJECT_ANSWER) and event is not E.ANSWER,
            )
        assert owed.obligation.status is expected
    assert len(owed.logged()) == logged + accepted, "one log entry per accepted event, none per refusal"
