"""An entry's bytes are RFC 8785 canonical JSON: the fast encoder every audited read uses agrees byte
for byte with the `rfc8785` library on every document an entry can hold, and hands anything else to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.entries import Actor, Event, Kind, canonical_json

_KEYS = st.text(st.characters(codec="ascii"), max_size=12)
# any Unicode scalar value: control characters, quotes, backslashes, U+2028, astral planes
_TEXT = st.text(st.characters(codec="utf-8"), max_size=40)
_VALUES = st.one_of(
    _TEXT,
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.booleans(),
    st.lists(_TEXT, max_size=5),
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=10))
def test_the_fast_encoder_is_rfc8785_on_every_document_an_entry_can_hold(document: dict[str, Any]) -> None:
    assert canonical_json(document) == rfc8785.dumps(document)


@given(st.dictionaries(_KEYS, st.floats(allow_nan=False, allow_infinity=False), min_size=1))
def test_what_it_cannot_vouch_for_goes_to_the_library(document: dict[str, Any]) -> None:
    assert canonical_json(document) == rfc8785.dumps(document)  # floats: ES6 number formatting


def test_an_integer_json_cannot_hold_exactly_is_refused_as_the_library_does() -> None:
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_json({"period": 2**53})


def test_non_ascii_keys_go_to_the_library() -> None:
    document = {"\u00e9": "x", "z": "y", "\U0001f600": 1, "\uff61": 2}  # UTF-16 order: not code points
    assert canonical_json(document) == rfc8785.dumps(document)


def test_an_event_serialises_canonically() -> None:
    event = Event(kind=Kind.PROFILE_READ, at=datetime(2026, 11, 23, 10, tzinfo=UTC), actor=Actor.BRAND,
                  grant=uuid4(), fields=["email", "dietary"], purpose="personalised_offers", period=3,
                  request_id='a"b\\c\n\u2028')  # fmt: skip
    assert event.canonical() == rfc8785.dumps(__import__("json").loads(event.canonical()))
