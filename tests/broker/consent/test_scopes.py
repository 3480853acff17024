"""The one scope vocabulary: `profile:<field>` per catalogue field, the brand-level scopes, and
every parser and formatter of a scope string (`broker.consent.scopes`)."""

from __future__ import annotations

import pytest

from broker.consent.scopes import (
    BRAND_SCOPES,
    PROFILE_SCOPE_PREFIX,
    field_scope,
    fields_scope,
    granted_scope,
    is_profile_scope,
    profile_fields,
    split_scope,
    supported_scopes,
)
from vault.fields import CATALOGUE


def test_scopes_name_catalogue_fields() -> None:
    assert field_scope("email") == "profile:email"
    assert profile_fields(" profile:email  profile:age_band offers:write ") == ["email", "age_band"]
    assert profile_fields("") == []


@pytest.mark.parametrize("scope", [None, "", "   ", "\t\n"])
def test_an_empty_scope_has_no_scopes_and_no_fields(scope: str | None) -> None:
    assert split_scope(scope) == []
    assert profile_fields(scope) == []
    assert granted_scope(scope, ["email"]) == ""


def test_split_keeps_order_and_repeats_as_sent() -> None:
    assert split_scope(" offers:write  profile:email profile:email ") == [
        "offers:write", "profile:email", "profile:email",
    ]  # fmt: skip


def test_profile_fields_skip_other_scopes_and_do_not_check_the_catalogue() -> None:
    # The caller compares the names with what it allows (an offer's fields) and says which are not.
    assert profile_fields("offers:write profile:email profile:shoe_size profile:") == [
        "email",
        "shoe_size",
        "",
    ]


def test_duplicates_come_through_profile_fields_as_sent() -> None:
    assert profile_fields("profile:email profile:email") == ["email", "email"]


def test_is_profile_scope_is_the_prefix_exactly() -> None:
    assert is_profile_scope("profile:email") and is_profile_scope("profile:")
    assert not any(map(is_profile_scope, ["offers:write", "profile", "Profile:email", " profile:email"]))


def test_formatting_round_trips_through_parsing() -> None:
    names = ["email", "dietary", "age_band"]
    assert fields_scope(names) == "profile:email profile:dietary profile:age_band"
    assert profile_fields(fields_scope(names)) == names
    assert fields_scope([]) == ""


def test_a_granted_scope_never_goes_beyond_the_grant() -> None:
    asked = "profile:email profile:phone offers:write profile:dietary profile:email"
    assert granted_scope(asked, {"email", "dietary"}) == "profile:email profile:dietary profile:email"
    assert granted_scope(asked, set()) == ""
    assert granted_scope("offers:write grants:read", {"email"}) == ""


def test_the_supported_scopes_are_every_field_then_every_brand_scope() -> None:
    supported = supported_scopes()
    assert supported == [PROFILE_SCOPE_PREFIX + name for name in CATALOGUE] + list(BRAND_SCOPES)
    assert len(set(supported)) == len(supported)
    assert not any(is_profile_scope(s) for s in BRAND_SCOPES)
