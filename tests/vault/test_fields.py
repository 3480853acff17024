"""The field catalogue: every field accepts good values in one normal form and explains bad ones."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from vault import fields
from vault.errors import FieldError, ProfileInvalid, UnknownField
from vault.fields import (
    AGE_BANDS,
    CATALOGUE,
    CHANNELS,
    DERIVED_FIELDS,
    DIETARY,
    INTEREST_TAGS,
    MAX_INTERESTS,
    SPECIAL_CATEGORY_DIETARY,
    STORED_FIELDS,
    JSONValue,
    Sensitivity,
    derive,
    field_spec,
    is_special_category,
    validate_field,
    validate_values,
)

TODAY = date(2026, 6, 15)


def rejection(name: str, value: object) -> FieldError:
    """The single FieldError that validating `value` for `name` produces."""
    with pytest.raises(ProfileInvalid) as caught:
        validate_field(name, value)
    [error] = caught.value.errors
    assert error.field == name
    return error


# --- the catalogue ---


def test_public_api_is_exactly_all() -> None:
    assert sorted(fields.__all__) == sorted([
        "Sensitivity", "FieldSpec", "JSONValue", "LIFE_STAGES", "DIETARY", "SPECIAL_CATEGORY_DIETARY",
        "INTEREST_TAGS", "CHANNELS", "MAX_INTERESTS", "AGE_BANDS", "STORED_FIELDS", "DERIVED_FIELDS",
        "CATALOGUE", "field_spec", "validate_field", "validate_values", "derive", "is_special_category",
    ])  # fmt: skip
    assert all(hasattr(fields, name) for name in fields.__all__)


def test_stored_fields_come_in_catalogue_order_then_derived_fields() -> None:
    assert list(STORED_FIELDS) == [
        "email", "phone", "given_name", "family_name", "birthdate", "postcode", "city", "country",
        "household_size", "life_stage", "dietary", "interests", "preferred_channels",
    ]  # fmt: skip
    assert list(DERIVED_FIELDS) == ["age_band", "region"]
    assert list(CATALOGUE) == [*STORED_FIELDS, *DERIVED_FIELDS]
    assert all(spec.name == name for name, spec in CATALOGUE.items())


def test_only_derived_fields_are_derived_and_they_name_their_sources() -> None:
    assert not any(spec.derived for spec in STORED_FIELDS.values())
    assert DERIVED_FIELDS["age_band"].derived_from == ("birthdate",)
    assert DERIVED_FIELDS["region"].derived_from == ("country", "postcode")
    assert all(set(spec.derived_from) <= set(STORED_FIELDS) for spec in DERIVED_FIELDS.values())


def test_sensitivity_marks_identifying_and_special_category_fields() -> None:
    by_level = {level: {n for n, s in CATALOGUE.items() if s.sensitivity is level} for level in Sensitivity}
    assert by_level[Sensitivity.IDENTIFYING] == {
        "email", "phone", "given_name", "family_name", "birthdate", "postcode", "city",
    }  # fmt: skip
    assert by_level[Sensitivity.SPECIAL_CATEGORY] == {"dietary"}
    assert "age_band" in by_level[Sensitivity.STANDARD]
    assert "region" in by_level[Sensitivity.STANDARD]


def test_every_field_has_a_title_description_and_json_schema_for_the_api() -> None:
    for spec in CATALOGUE.values():
        assert spec.title
        assert spec.description.endswith(".")
        assert "type" in TypeAdapter(spec.annotation).json_schema()


def test_catalogue_vocabularies_are_snake_case_and_special_dietary_is_a_subset() -> None:
    assert len(INTEREST_TAGS) >= 40
    assert len(set(INTEREST_TAGS)) == len(INTEREST_TAGS)
    assert all(tag.isidentifier() and tag == tag.lower() for tag in INTEREST_TAGS)
    assert set(SPECIAL_CATEGORY_DIETARY) == {"halal", "kosher", "gluten_free", "lactose_free", "nut_allergy"}
    assert set(DIETARY) > SPECIAL_CATEGORY_DIETARY
    assert CHANNELS == ("email", "sms", "post", "app")


def test_field_spec_returns_the_entry_and_rejects_unknown_names() -> None:
    assert field_spec("dietary").title == "Dietary requirements"
    assert field_spec("region").derived
    with pytest.raises(UnknownField) as caught:
        field_spec("shoe_size")
    assert caught.value.name == "shoe_size"
    assert caught.value.known == list(CATALOGUE)


# --- good values, normalised ---


@pytest.mark.parametrize(
    ("name", "value", "normalised"),
    [
        ("email", "  Ada.Lovelace@Example.COM ", "Ada.Lovelace@example.com"),
        ("phone", "+447400123456", "+447400123456"),
        ("phone", "+33612345678", "+33612345678"),
        ("given_name", "  Ada ", "Ada"),
        ("family_name", "Lovelace-Byron", "Lovelace-Byron"),
        ("birthdate", "1990-02-03", "1990-02-03"),
        ("birthdate", date(1990, 2, 3), "1990-02-03"),
        ("birthdate", "1900-01-01", "1900-01-01"),
        ("postcode", " sw1a   1aa ", "SW1A 1AA"),
        ("postcode", "94103-1234", "94103-1234"),
        ("city", " Saint-Étienne ", "Saint-Étienne"),
        ("country", "gb", "GB"),
        ("country", " FR ", "FR"),
        ("household_size", 1, 1),
        ("household_size", 20, 20),
        ("life_stage", "empty_nester", "empty_nester"),
        ("dietary", [], []),
        ("dietary", ["nut_allergy", "vegan"], ["vegan", "nut_allergy"]),
        ("interests", ["yoga", "cooking"], ["cooking", "yoga"]),
        ("interests", list(INTEREST_TAGS[:MAX_INTERESTS]), list(INTEREST_TAGS[:MAX_INTERESTS])),
        ("preferred_channels", ["app", "email"], ["email", "app"]),
    ],
)
def test_each_field_accepts_a_good_value_and_normalises_it(
    name: str, value: object, normalised: JSONValue
) -> None:
    assert validate_field(name, value) == normalised


def test_email_keeps_the_local_part_as_written_and_lowercases_the_domain() -> None:
    assert validate_field("email", "Mixed.Case@EXAMPLE.org") == "Mixed.Case@example.org"


# --- bad values, explained ---


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("email", "not-an-email", "email must be an email address such as name@example.com"),
        ("email", "a@b@example.com", "email must be an email address"),
        ("email", 42, "email must be an email address"),
        ("phone", "07400123456", "phone must be in E.164 form, e.g. +447400123456"),
        ("phone", "+44 7400 123456", "phone must be in E.164 form"),
        ("phone", "+4407400123456", "phone must be in E.164 form"),
        ("phone", "+449999999", "phone is not a valid phone number"),
        ("phone", 447400123456, "phone must be in E.164 form"),
        ("given_name", "   ", "given_name must be text of 1 to 100 characters"),
        ("given_name", "x" * 101, "given_name must be text of 1 to 100 characters"),
        ("given_name", 7, "given_name must be text of 1 to 100 characters"),
        ("family_name", "Love\nlace", "family_name must not contain control characters or line breaks"),
        ("city", "Paris\x00", "city must not contain control characters"),
        ("birthdate", "03/02/1990", "birthdate must be a date written YYYY-MM-DD"),
        ("birthdate", "1990-02-30", "birthdate is not a real calendar date; write it as YYYY-MM-DD"),
        ("birthdate", "1899-12-31", "birthdate must be on or after 1900-01-01"),
        ("birthdate", 0, "birthdate must be a date written YYYY-MM-DD"),
        ("postcode", "A", "postcode must be 2 to 10 letters, digits, spaces or hyphens"),
        ("postcode", "SW1A_1AA", "postcode must be 2 to 10 letters, digits, spaces or hyphens"),
        ("postcode", "ABCDEFGHIJK", "postcode must be 2 to 10 letters"),
        ("country", "UK", "country must be an ISO 3166-1 alpha-2 code such as GB or FR"),
        ("country", "GBR", "country must be an ISO 3166-1 alpha-2 code"),
        ("household_size", 0, "household_size must be a whole number from 1 to 20"),
        ("household_size", 21, "household_size must be a whole number from 1 to 20"),
        ("household_size", True, "household_size must be a whole number"),
        ("household_size", 3.0, "household_size must be a whole number"),
        ("household_size", "3", "household_size must be a whole number"),
        ("life_stage", "toddler", "life_stage must be one of: student, young_professional, couple,"),
        ("dietary", ["vegan", "vegan"], "dietary lists 'vegan' twice"),
        ("dietary", ["paleo"], "unknown dietary requirement 'paleo'; choose from: vegetarian, vegan,"),
        ("dietary", "vegan", "dietary must be a list of: vegetarian, vegan,"),
        ("dietary", [1], "dietary must be a list of:"),
        ("interests", ["x"], "unknown interest tag 'x'; see the interest catalogue"),
        ("interests", list(INTEREST_TAGS[: MAX_INTERESTS + 1]), "interests holds at most 30 tags"),
        ("preferred_channels", ["fax"], "unknown channel 'fax'; choose from: email, sms, post, app"),
        ("preferred_channels", ("email",), "preferred_channels must be a list of: email, sms, post, app"),
    ],
)
def test_each_bad_value_is_rejected_with_a_message_saying_what_is_allowed(
    name: str, value: object, message: str
) -> None:
    error = rejection(name, value)
    assert error.message.startswith(message)
    assert not error.message.startswith("Value error")


def test_phone_must_be_e164() -> None:
    assert (
        rejection("phone", "+44 (0)7400 123456").message == "phone must be in E.164 form, e.g. +447400123456"
    )


def test_birthdate_must_not_be_in_the_future() -> None:
    tomorrow = date.today() + timedelta(days=1)
    assert rejection("birthdate", tomorrow.isoformat()).message == "birthdate cannot be in the future"
    assert validate_field("birthdate", date.today()) == date.today().isoformat()


def test_strings_are_strict_and_not_coerced() -> None:
    for name in ("email", "given_name", "postcode", "country", "life_stage"):
        assert rejection(name, 12345).message.startswith(name)
        assert rejection(name, b"bytes").message.startswith(name)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("email", "secret.person@@example.com"),
        ("phone", "+44 7400 654321"),
        ("given_name", "Secretname\x07"),
        ("city", "S" * 101),
        ("postcode", "SECRET_PC"),
        ("birthdate", "1977-13-45"),
        ("dietary", ["Ada Lovelace, 12 Secret Street"]),
    ],
)
def test_messages_never_echo_free_text(name: str, secret: object) -> None:
    text = secret[0] if isinstance(secret, list) else str(secret)
    message = rejection(name, secret).message
    assert text not in message
    assert text.strip()[:6] not in message


def test_null_is_not_a_value() -> None:
    assert rejection("city", None).message == "must not be null"


def test_unknown_field_is_refused() -> None:
    with pytest.raises(UnknownField) as caught:
        validate_field("shoe_size", 42)
    assert "shoe_size" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("age_band", "age_band is derived from birthdate and cannot be written"),
        ("region", "region is derived from country and postcode and cannot be written"),
    ],
)
def test_derived_fields_cannot_be_written(name: str, message: str) -> None:
    assert rejection(name, "anything").message == message


# --- many fields at once ---


def test_validate_values_returns_every_value_normalised() -> None:
    values = {"email": "Ada@Example.com", "country": "gb", "dietary": ["halal", "vegan"], "household_size": 2}
    assert validate_values(values) == {
        "email": "Ada@example.com",
        "country": "GB",
        "dietary": ["vegan", "halal"],
        "household_size": 2,
    }


def test_validate_values_collects_every_error_in_one_profile_invalid() -> None:
    values = {
        "email": "nope",
        "shoe_size": 42,
        "city": None,
        "region": "GB-SW",
        "country": "gb",
        "phone": "123",
    }
    with pytest.raises(ProfileInvalid) as caught:
        validate_values(values)
    errors = {error.field: error.message for error in caught.value.errors}
    assert list(errors) == ["email", "shoe_size", "city", "region", "phone"]
    assert errors["shoe_size"].startswith("unknown field; known fields are: email, phone,")
    assert errors["city"] == "must not be null"
    assert errors["region"].endswith("cannot be written")
    assert "email: email must be an email address" in str(caught.value)


def test_validate_values_accepts_an_empty_mapping() -> None:
    assert validate_values({}) == {}


# --- derived fields ---


@pytest.mark.parametrize(
    ("birthdate", "band"),
    [
        ("2008-06-15", "18-24"),  # eighteenth birthday today
        ("2008-06-16", "under_18"),  # eighteenth birthday tomorrow
        ("2001-06-16", "18-24"),  # turns 25 tomorrow
        ("2001-06-15", "25-34"),
        ("1992-06-15", "25-34"),
        ("1991-06-15", "35-44"),
        ("1981-06-15", "45-54"),
        ("1971-06-15", "55-64"),
        ("1961-06-16", "55-64"),
        ("1961-06-15", "65+"),
        ("1900-01-01", "65+"),
        ("2026-06-15", "under_18"),
    ],
)
def test_age_band_counts_completed_years_at_today(birthdate: str, band: str) -> None:
    assert derive({"birthdate": birthdate}, today=TODAY) == {"age_band": band}


def test_a_leap_day_birthday_is_reached_on_the_first_of_march_in_common_years() -> None:
    assert derive({"birthdate": "2008-02-29"}, today=date(2026, 2, 28))["age_band"] == "under_18"
    assert derive({"birthdate": "2008-02-29"}, today=date(2026, 3, 1))["age_band"] == "18-24"


@pytest.mark.parametrize(
    ("country", "postcode", "region"),
    [
        ("GB", "SW1A 1AA", "GB-SW"),
        ("GB", "M1 1AE", "GB-M"),
        ("GB", "B33 8TH", "GB-B"),
        ("US", "94103", "US-941"),
        ("US", "02139-4307", "US-021"),
        ("FR", "75001", "FR-75"),
        ("NL", "1012 AB", "NL-10"),
        ("CA", "K1A 0B1", "CA-K1"),
    ],
)
def test_region_is_the_country_and_a_coarse_postal_area(country: str, postcode: str, region: str) -> None:
    assert derive({"country": country, "postcode": postcode}, today=TODAY) == {"region": region}


def test_a_postcode_that_does_not_fit_its_country_gives_no_region() -> None:
    assert derive({"country": "US", "postcode": "AB 12"}, today=TODAY) == {}
    assert derive({"country": "GB", "postcode": "12345"}, today=TODAY) == {}


def test_derived_fields_need_all_their_inputs() -> None:
    assert derive({}, today=TODAY) == {}
    assert derive({"country": "GB"}, today=TODAY) == {}
    assert derive({"postcode": "SW1A 1AA", "email": "a@example.com"}, today=TODAY) == {}


def test_derive_works_on_validated_values() -> None:
    stored = validate_values({"birthdate": "1990-06-16", "country": "gb", "postcode": "sw1a 1aa"})
    assert derive(stored, today=TODAY) == {"age_band": "35-44", "region": "GB-SW"}


# --- special-category data ---


@pytest.mark.parametrize(
    ("name", "value", "special"),
    [
        ("dietary", ["vegan", "halal"], True),
        ("dietary", ["kosher"], True),
        ("dietary", ["nut_allergy"], True),
        ("dietary", ["gluten_free", "lactose_free"], True),
        ("dietary", ["vegetarian", "vegan", "pescatarian"], False),
        ("dietary", [], False),
        ("interests", ["cooking"], False),
        ("email", "halal@example.com", False),
        ("age_band", "18-24", False),
    ],
)
def test_is_special_category(name: str, value: JSONValue, special: bool) -> None:
    assert is_special_category(name, value) is special


def test_is_special_category_refuses_unknown_fields() -> None:
    with pytest.raises(UnknownField):
        is_special_category("diet", ["halal"])


# --- properties ---

LIST_FIELDS = {"dietary": DIETARY, "interests": INTEREST_TAGS, "preferred_channels": CHANNELS}


@st.composite
def tag_lists(draw: st.DrawFn) -> tuple[str, list[str]]:
    name = draw(st.sampled_from(sorted(LIST_FIELDS)))
    tags = draw(st.lists(st.sampled_from(LIST_FIELDS[name]), unique=True, max_size=MAX_INTERESTS))
    return name, tags


@given(tag_lists(), st.randoms(use_true_random=False))
def test_tag_lists_normalise_to_one_order_and_validation_is_idempotent(
    drawn: tuple[str, list[str]], rng: random.Random
) -> None:
    name, tags = drawn
    normalised = validate_field(name, tags)
    assert validate_field(name, normalised) == normalised
    shuffled = list(tags)
    rng.shuffle(shuffled)
    assert validate_field(name, shuffled) == normalised
    assert isinstance(normalised, list)
    assert set(normalised) == set(tags)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)), st.dates())
def test_age_band_is_always_a_known_band(birthdate: date, today: date) -> None:
    band = derive({"birthdate": birthdate.isoformat()}, today=today)["age_band"]
    assert band in AGE_BANDS


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2020, 12, 31)))
def test_birthdate_round_trips_through_its_iso_form(birthdate: date) -> None:
    normalised = validate_field("birthdate", birthdate.isoformat())
    assert normalised == birthdate.isoformat()
    assert validate_field("birthdate", normalised) == normalised
