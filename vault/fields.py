"""The field catalogue: every profile field the vault knows, how it is validated, and how sensitive it is.

Each field's `annotation` is a pydantic type used both here (through a cached `TypeAdapter`) and by the
API to build its models, so the rules live in one place. Stored fields are written by the customer;
derived fields (`age_band`, `region`) are computed from stored ones on every read and never stored.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from types import MappingProxyType
from typing import Annotated, Any, Final, TypeAlias

import email_validator
import phonenumbers
import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, TypeAdapter, ValidationError
from pydantic.json_schema import WithJsonSchema

from vault.errors import FieldError, ProfileInvalid, UnknownField

__all__ = [
    "AGE_BANDS", "CATALOGUE", "CHANNELS", "DERIVED_FIELDS", "DIETARY", "INTEREST_TAGS", "LIFE_STAGES",
    "MAX_INTERESTS", "SPECIAL_CATEGORY_DIETARY", "STORED_FIELDS", "FieldSpec", "JSONValue", "Sensitivity",
    "derive", "field_spec", "is_special_category", "validate_field", "validate_values",
]  # fmt: skip

JSONValue: TypeAlias = str | int | list[str]


class Sensitivity(StrEnum):
    """How carefully a field must be handled; drives consent wording and who may ask for it."""

    STANDARD = "standard"
    IDENTIFYING = "identifying"
    # GDPR art. 9: may reveal religion or health, so it needs explicit consent.
    SPECIAL_CATEGORY = "special_category"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One catalogue entry: what the field is called, what it holds and how it is validated."""

    name: str
    title: str
    description: str
    annotation: Any
    sensitivity: Sensitivity
    derived_from: tuple[str, ...] = ()

    @property
    def derived(self) -> bool:
        """True when the value is computed on read from other fields rather than stored."""
        return bool(self.derived_from)


LIFE_STAGES: Final[tuple[str, ...]] = (
    "student", "young_professional", "couple", "family_young_children", "family_teenagers", "empty_nester",
    "retired",
)  # fmt: skip
DIETARY: Final[tuple[str, ...]] = (
    "vegetarian", "vegan", "pescatarian", "halal", "kosher", "gluten_free", "lactose_free", "nut_allergy",
)  # fmt: skip
# Halal and kosher may reveal religion; the intolerances and allergy reveal health.
SPECIAL_CATEGORY_DIETARY: Final[frozenset[str]] = frozenset(
    {"halal", "kosher", "gluten_free", "lactose_free", "nut_allergy"}
)
INTEREST_TAGS: Final[tuple[str, ...]] = (
    "cooking", "baking", "fitness", "running", "cycling", "yoga", "travel", "camping", "gardening", "diy",
    "fashion", "beauty", "music", "film", "books", "gaming", "technology", "photography", "art", "crafts",
    "pets", "parenting", "wine", "coffee", "tea", "sustainability", "football", "tennis", "golf", "swimming",
    "hiking", "home_decor", "cars", "personal_finance", "volunteering", "theatre", "podcasts", "board_games",
    "skincare", "organic_food",
)  # fmt: skip
CHANNELS: Final[tuple[str, ...]] = ("email", "sms", "post", "app")
MAX_INTERESTS: Final = 30
AGE_BANDS: Final[tuple[str, ...]] = ("under_18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_AGE_BAND_FLOORS: Final = (0, 18, 25, 35, 45, 55, 65)  # youngest age in each of AGE_BANDS

_PHONE_EXAMPLE: Final = "+447400123456"  # libphonenumber's own GB mobile example, so it really validates
_EARLIEST_BIRTHDATE: Final = date(1900, 1, 1)
_ISO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TAG_SHAPED: Final = re.compile(r"[a-z0-9_+-]{1,40}")
# Categories a person never means to type: control characters, lone surrogates (they cannot be encoded
# as UTF-8, so storing them would fail later) and line/paragraph separators (they split log lines).
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})


class _ReadableError(ValueError):
    """Raised by our own validators; its message is written for people and never holds the input."""


def _shown(tag: str) -> str:
    # A wrong enum tag may be named, but not something that looks like free text pasted into the list.
    return f" {tag!r}" if _TAG_SHAPED.fullmatch(tag) else ""


def _email(value: str) -> str:
    try:
        # Syntax only: a deliverability check would make validation depend on DNS.
        result = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise _ReadableError(_RULES["email"]) from None
    return result.normalized  # lower-cases the domain, keeps the local part as written


def _phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise _ReadableError(_RULES["phone"]) from None
    if not phonenumbers.is_valid_number(number):
        raise _ReadableError(
            f"phone is not a valid phone number; write it in E.164 form, e.g. {_PHONE_EXAMPLE}"
        )
    # Insisting on the canonical form keeps one spelling per number, which exact-match lookups rely on.
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != value:
        raise _ReadableError(_RULES["phone"])
    return value


def _plain_text(field: str) -> Any:
    def check(value: str) -> str:
        if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in value):
            raise _ReadableError(f"{field} must not contain control characters or line breaks")
        return value

    return Annotated[
        str,
        StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=100),
        AfterValidator(check),
    ]


def _iso_date(value: object) -> object:
    # Pydantic's lax date would also take Unix timestamps and datetimes; only a date or "YYYY-MM-DD" is meant.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise _ReadableError("birthdate is not a real calendar date; write it as YYYY-MM-DD") from None
    raise _ReadableError(_RULES["birthdate"])


def _past_date(value: date) -> date:
    # The real date is acceptable here: a day's skew at midnight cannot make a birthdate plausible or not.
    if value > date.today():
        raise _ReadableError("birthdate cannot be in the future")
    if value < _EARLIEST_BIRTHDATE:
        raise _ReadableError(f"birthdate must be on or after {_EARLIEST_BIRTHDATE.isoformat()}")
    return value


def _collapse_spaces(value: object) -> object:
    return " ".join(value.split()) if isinstance(value, str) else value


def _country(value: str) -> str:
    if pycountry.countries.get(alpha_2=value) is None:
        raise _ReadableError(_RULES["country"])
    return value


def _one_of(field: str, choices: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in choices:
            raise _ReadableError(_RULES[field])
        return value

    schema = {"type": "string", "enum": list(choices)}
    return Annotated[str, Field(strict=True), AfterValidator(check), WithJsonSchema(schema)]


def _tag_list(
    field: str, choices: tuple[str, ...], *, noun: str, hint: str = "", limit: int | None = None
) -> Any:
    hint = hint or f"choose from: {', '.join(choices)}"

    def check(values: list[str]) -> list[str]:
        seen: set[str] = set()
        for value in values:
            if value not in choices:
                raise _ReadableError(f"unknown {noun}{_shown(value)}; {hint}")
            if value in seen:
                raise _ReadableError(f"{field} lists {value!r} twice")
            seen.add(value)
        if limit is not None and len(values) > limit:
            raise _ReadableError(f"{field} holds at most {limit} tags")
        # One order for one set, so equal profiles serialise (and compare) equally.
        return sorted(values, key=choices.index)

    items = {"type": "string", "enum": list(choices)}
    schema: dict[str, Any] = {"type": "array", "items": items, "uniqueItems": True}
    if limit is not None:
        schema["maxItems"] = limit
    return Annotated[
        list[Annotated[str, Field(strict=True)]],
        Field(strict=True),
        AfterValidator(check),
        WithJsonSchema(schema),
    ]


# What each field allows, used whenever pydantic rejects a value before our own validators see it
# (wrong type, length, pattern). None of them repeats the value.
_RULES: Final[Mapping[str, str]] = {
    "email": "email must be an email address such as name@example.com",
    "phone": f"phone must be in E.164 form, e.g. {_PHONE_EXAMPLE}",
    "given_name": "given_name must be text of 1 to 100 characters",
    "family_name": "family_name must be text of 1 to 100 characters",
    "birthdate": "birthdate must be a date written YYYY-MM-DD",
    "postcode": "postcode must be 2 to 10 letters, digits, spaces or hyphens",
    "city": "city must be text of 1 to 100 characters",
    "country": "country must be an ISO 3166-1 alpha-2 code such as GB or FR",
    "household_size": "household_size must be a whole number from 1 to 20",
    "life_stage": f"life_stage must be one of: {', '.join(LIFE_STAGES)}",
    "dietary": f"dietary must be a list of: {', '.join(DIETARY)}",
    "interests": f"interests must be a list of at most {MAX_INTERESTS} tags from the interest catalogue",
    "preferred_channels": f"preferred_channels must be a list of: {', '.join(CHANNELS)}",
}


# fmt: off
_EMAIL: Any = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, max_length=254),
                        AfterValidator(_email), WithJsonSchema({"type": "string", "format": "email"})]
_PHONE: Any = Annotated[str, StringConstraints(strict=True, strip_whitespace=True,
                                               pattern=r"^\+[1-9][0-9]{1,14}$"), AfterValidator(_phone)]
_BIRTHDATE: Any = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_past_date)]
_POSTCODE: Any = Annotated[str, StringConstraints(strict=True, to_upper=True, min_length=2, max_length=10,
                                                  pattern=r"^[A-Za-z0-9 -]+$"),
                           BeforeValidator(_collapse_spaces)]
_COUNTRY: Any = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, to_upper=True,
                                                 pattern=r"^[A-Za-z]{2}$"), AfterValidator(_country)]
_HOUSEHOLD_SIZE: Any = Annotated[int, Field(strict=True, ge=1, le=20)]
_AGE_BAND: Any = Annotated[str, WithJsonSchema({"type": "string", "enum": list(AGE_BANDS)})]
_IDENTIFYING, _STANDARD = Sensitivity.IDENTIFYING, Sensitivity.STANDARD

STORED_FIELDS: Final[Mapping[str, FieldSpec]] = MappingProxyType({spec.name: spec for spec in (
    FieldSpec("email", "Email address", "The email address you can be reached at.", _EMAIL, _IDENTIFYING),
    FieldSpec("phone", "Phone number", "Your phone number, with its country code.", _PHONE, _IDENTIFYING),
    FieldSpec("given_name", "Given name", "Your first name.", _plain_text("given_name"), _IDENTIFYING),
    FieldSpec("family_name", "Family name", "Your surname.", _plain_text("family_name"), _IDENTIFYING),
    FieldSpec("birthdate", "Date of birth", "The day you were born.", _BIRTHDATE, _IDENTIFYING),
    FieldSpec("postcode", "Postcode", "The postcode of your home address.", _POSTCODE, _IDENTIFYING),
    FieldSpec("city", "Town or city", "The town or city you live in.", _plain_text("city"), _IDENTIFYING),
    FieldSpec("country", "Country", "The country you live in.", _COUNTRY, _STANDARD),
    FieldSpec("household_size", "Household size", "How many people live in your home, you included.",
              _HOUSEHOLD_SIZE, _STANDARD),
    FieldSpec("life_stage", "Life stage", "The stage of life that best describes your household.",
              _one_of("life_stage", LIFE_STAGES), _STANDARD),
    FieldSpec("dietary", "Dietary requirements", "Foods you eat or avoid, allergies included.",
              _tag_list("dietary", DIETARY, noun="dietary requirement"), Sensitivity.SPECIAL_CATEGORY),
    FieldSpec("interests", "Interests", "Topics you would like to hear about.",
              _tag_list("interests", INTEREST_TAGS, noun="interest tag", hint="see the interest catalogue",
                        limit=MAX_INTERESTS), _STANDARD),
    FieldSpec("preferred_channels", "Preferred channels", "How you would like companies to contact you.",
              _tag_list("preferred_channels", CHANNELS, noun="channel"), _STANDARD),
)})
DERIVED_FIELDS: Final[Mapping[str, FieldSpec]] = MappingProxyType({spec.name: spec for spec in (
    FieldSpec("age_band", "Age band", "Your age range, worked out from your date of birth.", _AGE_BAND,
              _STANDARD, derived_from=("birthdate",)),
    FieldSpec("region", "Region", "Your country and broad postal area, such as GB-SW.", str,
              _STANDARD, derived_from=("country", "postcode")),
)})
# fmt: on
CATALOGUE: Final[Mapping[str, FieldSpec]] = MappingProxyType({**STORED_FIELDS, **DERIVED_FIELDS})
# Coarse postal area per country: GB postcode areas are one or two letters; US ZIP3 is the sectional centre.
_AREA_PATTERNS: Final = {"GB": re.compile(r"[A-Z]{1,2}"), "US": re.compile(r"[0-9]{3}")}
_ANY_TWO: Final = re.compile(r".{2}")


def field_spec(name: str) -> FieldSpec:
    """The catalogue entry for `name`; raises `UnknownField` listing every known name otherwise."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownField(name, known=list(CATALOGUE)) from None


@cache
def _adapter(name: str) -> TypeAdapter[Any]:
    # Building a TypeAdapter compiles a validator; doing it once per field keeps validation cheap.
    return TypeAdapter(STORED_FIELDS[name].annotation)


def _message(name: str, exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0].get("ctx", {}).get("error")
    # Only our own messages are passed on: another library's ValueError may quote the input.
    return str(error) if isinstance(error, _ReadableError) else _RULES[name]


def validate_field(name: str, value: object) -> JSONValue:
    """Validate one stored field's value and return it normalised and JSON-compatible.

    Raises `UnknownField` for a name not in the catalogue and `ProfileInvalid` (one `FieldError`) for a
    derived field, a null or a value the field does not allow.
    """
    spec = field_spec(name)
    if spec.derived:
        sources = " and ".join(spec.derived_from)
        raise ProfileInvalid([FieldError(name, f"{name} is derived from {sources} and cannot be written")])
    if value is None:
        raise ProfileInvalid([FieldError(name, "must not be null")])
    adapter = _adapter(name)
    try:
        valid = adapter.validate_python(value)
    except ValidationError as exc:
        # `from None`: pydantic's error carries the submitted value, which must not reach tracebacks or logs.
        raise ProfileInvalid([FieldError(name, _message(name, exc))]) from None
    normalised: JSONValue = adapter.dump_python(valid, mode="json")
    return normalised


def validate_values(values: Mapping[str, object]) -> dict[str, JSONValue]:
    """Validate several fields at once, reporting every problem in one `ProfileInvalid`.

    Unknown names are reported as field errors here (not `UnknownField`), so a form shows them all together.
    """
    normalised: dict[str, JSONValue] = {}
    errors: list[FieldError] = []
    for name, value in values.items():
        try:
            normalised[name] = validate_field(name, value)
        except UnknownField:
            errors.append(FieldError(name, f"unknown field; known fields are: {', '.join(CATALOGUE)}"))
        except ProfileInvalid as exc:
            errors.extend(exc.errors)
    if errors:
        raise ProfileInvalid(errors)
    return normalised


def _age_band(birthdate: date, today: date) -> str:
    # Completed years; someone born on 29 February turns a year older on 1 March in common years.
    age = today.year - birthdate.year - ((today.month, today.day) < (birthdate.month, birthdate.day))
    return AGE_BANDS[max(bisect_right(_AGE_BAND_FLOORS, age) - 1, 0)]


def _region(country: str, postcode: str) -> str | None:
    area = _AREA_PATTERNS.get(country, _ANY_TWO).match(postcode.replace(" ", ""))
    # A postcode that does not fit its country's shape gives no region rather than a misleading one.
    return f"{country}-{area.group()}" if area else None


def derive(stored: Mapping[str, JSONValue], *, today: date) -> dict[str, JSONValue]:
    """Compute the derived fields from normalised stored values, each only when all its inputs are present.

    Called on every read with the reader's clock; derived values are never stored.
    """
    derived: dict[str, JSONValue] = {}
    birthdate = stored.get("birthdate")
    if isinstance(birthdate, str):
        derived["age_band"] = _age_band(date.fromisoformat(birthdate), today)
    country, postcode = stored.get("country"), stored.get("postcode")
    if isinstance(country, str) and isinstance(postcode, str) and (region := _region(country, postcode)):
        derived["region"] = region
    return derived


def is_special_category(name: str, value: JSONValue) -> bool:
    """True when this value of the field is GDPR art. 9 special-category data (religion or health).

    Only some dietary requirements are: "vegan" reveals neither, "halal" or "nut_allergy" do.
    Raises `UnknownField` for a name not in the catalogue.
    """
    field_spec(name)
    return name == "dietary" and isinstance(value, list) and not SPECIAL_CATEGORY_DIETARY.isdisjoint(value)
