"""The consent decision on typed inputs: a `ConsentRequest` (plain data, no Authlib object) and the
customer's form. The screen shows the requested fields with their current values; an approval makes
the grant with exactly the fields kept, a denial makes none, and an incomplete answer asks again."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlmodel import Session, select
from support.oauth import OFFER, REDIRECT, BrandCredentials

from broker.accounts.models import Brand, Customer
from broker.consent.models import Grant
from broker.consent.offer_schemas import OfferDraft
from broker.oauth.authorize import ConsentRequest
from broker.portal.consent_screen import RETRY_MESSAGES, consent_context
from broker.runtime import Runtime
from broker.usecases.consent_decision import ConsentScreen, Decision, Retry, decide

FIELDS = ("email", "dietary", "household_size", "given_name")


@pytest.fixture
def request_for(runtime: Runtime, db: Session, brand: BrandCredentials, customer: str) -> ConsentRequest:
    """What `broker.oauth.authorize` would hand over for the test offer, asking for four fields."""
    owner = db.exec(select(Brand)).one()
    offer = runtime.offers.create(db, owner, OfferDraft.model_validate(OFFER))
    params = (("client_id", owner.client_id), ("scope", "profile:email"), ("state", "s1"))
    return ConsentRequest(owner.name, offer, FIELDS, (*params, ("decision", "x")), REDIRECT)


def customer_id(db: Session) -> UUID:
    return db.exec(select(Customer.id)).one()


def answer(runtime: Runtime, db: Session, request: ConsentRequest, **form: list[str]) -> Any:
    return decide(runtime.grants, db, request, customer_id=customer_id(db), form=form)


def test_the_screen_shows_the_requested_fields_with_their_values(
    runtime: Runtime, db: Session, request_for: ConsentRequest
) -> None:
    screen = ConsentScreen.build(
        request_for, runtime.vault, db, customer_id=customer_id(db), now=runtime.clock()
    )
    assert screen.brand == "Green Grocer" and screen.offer is request_for.offer
    assert [f["name"] for f in screen.fields] == list(FIELDS)
    shown = {f["name"]: (f["value"], f["required"], f["special"]) for f in screen.fields}
    assert shown["dietary"] == ("vegan, nut_allergy", True, True)
    assert shown["household_size"] == ("3", False, False)
    page = consent_context(screen)
    assert ("decision", "x") not in page["params"], "the form's own fields are not re-sent"
    assert "decision" not in page["return_to"]
    assert ("state", "s1") in screen.params and screen.form_targets == ("https://grocer.example",)


def test_approval_makes_the_grant_with_the_required_and_ticked_fields_only(
    runtime: Runtime, db: Session, request_for: ConsentRequest
) -> None:
    decision = answer(
        runtime, db, request_for, decision=["approve"], fields=["given_name"], special_consent=["yes"]
    )
    assert decision.retry is None and decision.grant is not None
    assert decision.grant.fields == ["email", "dietary", "given_name"]
    assert db.get(Grant, decision.grant.id) is decision.grant


def test_denial_makes_no_grant(runtime: Runtime, db: Session, request_for: ConsentRequest) -> None:
    decision = answer(runtime, db, request_for, decision=["deny"], fields=list(FIELDS))
    assert (decision.grant, decision.retry) == (None, None)
    assert db.exec(select(Grant)).all() == []


@pytest.mark.parametrize(
    ("form", "retry"),
    [
        ({}, Retry.NO_CHOICE),
        ({"decision": ["maybe"]}, Retry.NO_CHOICE),
        ({"decision": ["approve"]}, Retry.SPECIAL_CONSENT_MISSING),
    ],
)
def test_an_incomplete_answer_asks_again(
    runtime: Runtime, db: Session, request_for: ConsentRequest, form: dict[str, list[str]], retry: Retry
) -> None:
    decision = answer(runtime, db, request_for, **form)
    assert decision.grant is None and decision.retry is retry
    assert db.exec(select(Grant)).all() == []


def test_an_unconfirmed_email_is_never_granted(
    runtime: Runtime, db: Session, request_for: ConsentRequest
) -> None:
    form = {"decision": ["approve"], "special_consent": ["yes"]}
    required = decide(
        runtime.grants, db, request_for, customer_id=customer_id(db), form=form, email_verified=False
    )
    assert required == Decision(None, retry=Retry.EMAIL_UNCONFIRMED)
    owner = db.exec(select(Brand)).one()
    draft = {**OFFER, "required_fields": ["dietary"], "optional_fields": ["email"]}
    offer = runtime.offers.create(db, owner, OfferDraft.model_validate(draft))
    optional = ConsentRequest(owner.name, offer, ("dietary", "email"), (), REDIRECT)
    made = decide(runtime.grants, db, optional, customer_id=customer_id(db), form=form, email_verified=False)
    assert made.grant is not None and made.grant.fields == ["dietary"], "left out when optional"


def test_every_reason_to_ask_again_has_words_on_the_page() -> None:
    assert set(RETRY_MESSAGES) == set(Retry)
    assert all(message.strip() for message in RETRY_MESSAGES.values())
