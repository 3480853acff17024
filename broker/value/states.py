"""An obligation's states and the one table of moves between them.

    owed ──deliver──▶ delivered ──confirm──▶ confirmed
     │ ▲                 │  ▲                   ▲
     │ │              dispute  withdraw          │
     │ │                 ▼  │                    │
     │ └────uphold──── disputed ───confirm───────┤      (answer, reject-answer: the state stays)
     │                          ───overrule──────┘      (an auditor decided: `broker.value.disputes`)
     └──cancel──▶ cancelled                              (the grant ended before any read)

An auditor who upholds a dispute sends the obligation back to owed, due again by a deadline: the
brand delivers again or the grant is suspended, as for any overdue value. One who overrules it
settles it: the value counts as delivered, and confirmed is final.

`TRANSITIONS` is that diagram as data: for each state, the events it accepts and where each leads.
The ledger changes a status only through `move`, which checks the table; any other (state, event) is
refused with a 409 saying what the obligation is and why it cannot (`refusal`). Confirmed and cancelled
are final. Overdue is not a state: an owed obligation past its due date (`broker.value.schedule`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from broker.errors import Conflict, ValueSettled
from broker.value.models import Obligation, ObligationStatus

__all__ = ["TRANSITIONS", "Event", "move", "refusal", "target"]


class Event(StrEnum):
    """What happens to an obligation, and who makes it happen."""

    DELIVER = "deliver"  # the brand delivers what it owes
    CONFIRM = "confirm"  # the customer received it (also ends a dispute)
    DISPUTE = "dispute"  # the customer says the delivery is not what was declared
    ANSWER = "answer"  # the brand answers a dispute
    WITHDRAW = "withdraw"  # the customer takes a dispute back
    CANCEL = "cancel"  # the broker: the grant ended before the brand read anything under it
    REJECT_ANSWER = "reject-answer"  # the customer does not accept the brand's answer
    UPHOLD = "uphold"  # an auditor: the customer is right, the brand delivers again
    OVERRULE = "overrule"  # an auditor: the brand is right, the value counts as delivered


_S, _E = ObligationStatus, Event
TRANSITIONS: Mapping[ObligationStatus, Mapping[Event, ObligationStatus]] = {
    _S.OWED: {_E.DELIVER: _S.DELIVERED, _E.CANCEL: _S.CANCELLED},
    _S.DELIVERED: {_E.CONFIRM: _S.CONFIRMED, _E.DISPUTE: _S.DISPUTED},
    _S.DISPUTED: {
        _E.CONFIRM: _S.CONFIRMED,
        _E.WITHDRAW: _S.DELIVERED,
        _E.ANSWER: _S.DISPUTED,
        _E.REJECT_ANSWER: _S.DISPUTED,
        _E.UPHOLD: _S.OWED,
        _E.OVERRULE: _S.CONFIRMED,
    },
    _S.CONFIRMED: {},
    _S.CANCELLED: {},
}


def target(obligation: Obligation, event: Event) -> ObligationStatus:
    """The state `event` leads the obligation to; its `refusal` when the table has no such move."""
    found = TRANSITIONS[obligation.status].get(event)
    if found is None:
        raise refusal(obligation, event)
    return found


def move(obligation: Obligation, event: Event, *, at: datetime) -> ObligationStatus:
    """Apply `event` if the table allows it: the new status, since `at` (a move that keeps the state,
    an answer, keeps its since). Returns the status the obligation is in now."""
    status = target(obligation, event)
    if status is not obligation.status:
        obligation.status, obligation.status_changed_at = status, at
    return status


def refusal(obligation: Obligation, event: Event) -> Conflict:
    """Why `event` cannot happen to the obligation in its state, as the API answers it (409)."""
    name, status = f"obligation '{obligation.id}'", obligation.status.value
    match event:
        case Event.DELIVER:
            return ValueSettled(f"{name} is already {status}: deliver once only")
        case Event.ANSWER:
            return Conflict(f"{name} is {status}, not disputed: nothing to answer")
        case Event.REJECT_ANSWER:
            return Conflict(f"{name} is {status}, not disputed: there is no answer to reject")
        case Event.UPHOLD | Event.OVERRULE:
            return Conflict(f"{name} is {status}, not disputed: there is nothing to decide")
        case Event.CONFIRM:
            why = "confirmed; only a delivered value can be confirmed"
        case Event.DISPUTE:
            why = "disputed; only a delivered, unconfirmed value can be disputed"
        case Event.WITHDRAW:
            why = "withdrawn from dispute; it is not disputed"
        case Event.CANCEL:
            why = "cancelled; only an owed value can be cancelled"
    return Conflict(f"{name} is {status}: it cannot be {why}")
