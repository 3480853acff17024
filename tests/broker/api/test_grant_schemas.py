"""A page of grants serialised from plain values (`GrantPage.json_of`) is byte for byte the validated
model's JSON, whatever state its grants are in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.api.grant_schemas import (
    AcknowledgementStatePublic,
    DeletionPublic,
    GrantPage,
    GrantPublic,
    RenewalPublic,
)
from broker.consent.models import Grant, GrantStatus
from broker.consent.renewal import RenewalState
from broker.consent.retention import (
    AcknowledgementState,
    AcknowledgementStatus,
    DeletionState,
    DeletionStatus,
    Outcome,
)
from broker.consent.standing import BrandName
from broker.usecases.grant_views import GrantView, GrantViewPage

# Aware datetimes, in UTC as the database gives them, and in other zones as a caller might pass them.
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])
moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31), timezones=zones)
maybe = st.none() | moments
text = st.text(max_size=20)


@st.composite
def views(draw: st.DrawFn) -> GrantView:
    grant = Grant(
        id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        brand_id=uuid.uuid4(),
        offer_id=uuid.uuid4(),
        fields=draw(st.lists(text, max_size=4)),
        purpose=draw(text),
        status=draw(st.sampled_from(GrantStatus)),
        created_at=draw(moments),
        expires_at=draw(moments),
        status_changed_at=draw(moments),
        last_confirmed_at=draw(moments),
        ended_by=draw(st.none() | st.sampled_from(["customer", "brand", "broker"])),
    )
    return GrantView(
        grant=grant,
        brand=BrandName(draw(text), draw(text)),
        status=draw(st.sampled_from(GrantStatus)),
        status_changed_at=draw(moments),
        deletion_due_at=draw(maybe),
        deletion=DeletionState(
            draw(st.sampled_from(get_args(DeletionStatus))),
            draw(maybe),
            draw(st.none() | st.sampled_from(get_args(Outcome))),
            draw(maybe),
        ),
        acknowledgement=AcknowledgementState(
            draw(st.sampled_from(get_args(AcknowledgementStatus))), draw(maybe), draw(maybe)
        ),
        renewal=RenewalState(draw(maybe), draw(maybe), draw(st.booleans()), draw(st.booleans())),
        account_deleted=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(views(), max_size=3), st.none() | text)
def test_the_plain_json_of_a_page_is_the_validated_model_s(
    items: list[GrantView], cursor: str | None
) -> None:
    page = GrantViewPage(items, cursor)
    validated = GrantPage.model_validate(GrantPage.of(page).model_dump())
    assert GrantPage.json_of(page) == validated.model_dump_json().encode()


@settings(max_examples=1, deadline=None)
@given(views())
def test_the_plain_shape_has_the_model_s_fields_in_its_order(view: GrantView) -> None:
    plain = GrantPublic.plain(view)
    assert list(plain) == list(GrantPublic.model_fields)
    assert list(plain["deletion"]) == list(DeletionPublic.model_fields)
    assert list(plain["acknowledgement"]) == list(AcknowledgementStatePublic.model_fields)
    assert list(plain["renewal"]) == list(RenewalPublic.model_fields)
