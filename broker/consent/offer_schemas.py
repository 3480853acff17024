"""Offers as brands write them and the API shows them: the pydantic shapes and their rules.

A draft is checked whole before anything is stored: catalogue fields each listed once, a known
purpose, plain text, and a declared value whose kind, amount, unit, currency and due date agree.
Each refusal points at the one field to fix. `Amount` and `Currency` are also what a brand delivers
(`broker.value.schemas`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal, Self
from uuid import UUID

import pycountry
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic.functional_serializers import PlainSerializer
from pydantic.functional_validators import AfterValidator, BeforeValidator
from pydantic.json_schema import WithJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

from broker.consent.categories import OfferCategory
from broker.consent.models import Offer, OfferStatus
from broker.consent.purposes import PURPOSES, describe_purpose, offered_purposes
from broker.consent.scopes import field_scope
from vault.fields import CATALOGUE

__all__ = [
    "Amount", "Currency", "DeclaredValue", "Due", "OfferDraft", "OfferPage", "OfferPublic", "PurposeTerms",
    "ValueKind",
]  # fmt: skip

# The same characters the vault refuses in text: control characters, lone surrogates, line separators.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cs", "Zl", "Zp"})
_NAME_SHAPED: Final = re.compile(r"[a-z0-9_]{1,40}")
_MAX_AMOUNT: Final = Decimal(1_000_000)
_AMOUNT_RULE: Final = 'amount must be a number above 0, at most 1000000, with at most 2 decimals, e.g. "9.99"'
_Problems = list[tuple[tuple[str, ...], str]]


def _plain(value: str) -> str:
    if any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in value):
        raise ValueError("must not contain control characters or line breaks")
    return value


def _one_of(noun: str, choices: Collection[str]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in choices:
            shown = f" {value!r}" if _NAME_SHAPED.fullmatch(value) else ""  # never echo free text
            raise ValueError(f"unknown {noun}{shown}; choose from: {', '.join(choices)}")
        return value

    return AfterValidator(check)


def _distinct(values: list[str]) -> list[str]:
    if twice := sorted({value for value in values if values.count(value) > 1}):
        raise ValueError(f"lists {', '.join(map(repr, twice))} more than once")
    return values


def _amount(value: object) -> Decimal:
    # A JSON string or number, kept exact (a float goes through its shortest repr); `true` is not 1.
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError(_AMOUNT_RULE)
        amount = Decimal(str(value))
    except (ArithmeticError, ValueError):
        raise ValueError(_AMOUNT_RULE) from None
    if not (amount.is_finite() and 0 < amount <= _MAX_AMOUNT and amount == amount.quantize(Decimal("0.01"))):
        raise ValueError(_AMOUNT_RULE)
    return amount


def _currency(code: str) -> str:
    code = code.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code) or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError("currency must be an ISO 4217 code such as EUR, GBP or USD")
    return code


def _reject(model: BaseModel, problems: _Problems) -> None:
    # A ValidationError raised inside a validator keeps its locations, so a rule that spans fields
    # still points at the one field to fix (/value/currency), as pydantic's own errors do.
    if problems:
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("offer_rule", msg), loc=loc, input=getattr(model, loc[0])
            )
            for loc, msg in problems
        ]
        raise ValidationError.from_exception_data(type(model).__name__, errors)


_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_plain)]
_FieldNames = Annotated[
    list[
        Annotated[
            str, _one_of("field", CATALOGUE), WithJsonSchema({"type": "string", "enum": list(CATALOGUE)})
        ]
    ],
    AfterValidator(_distinct),
]
_Purpose = Annotated[
    str, _one_of("purpose", PURPOSES), WithJsonSchema({"type": "string", "enum": list(PURPOSES)})
]
_Amount = Annotated[
    Decimal,
    BeforeValidator(_amount),
    PlainSerializer(lambda amount: format(amount, "f"), return_type=str, when_used="json"),  # exact, no float
]
Amount = _Amount  # also what a brand delivers (broker.value)
Currency = Annotated[str, Field(strict=True), AfterValidator(_currency)]
ValueKind = Literal["voucher", "discount", "points", "service", "cash"]


class Due(BaseModel):
    """When the value reaches the customer: before the first read, within some days, or monthly."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    when: Literal["before_first_read", "within_days", "monthly"]
    """monthly recurs while the grant is live."""
    days: int | None = Field(default=None, strict=True, ge=1, le=365)
    """Only for within_days: 1 to 365."""

    @model_validator(mode="after")
    def _days_only_within(self) -> Self:
        if (self.when == "within_days") != (self.days is not None):
            message = f"days belongs only to within_days, not {self.when}"
            if self.days is None:
                message = "within_days needs days: a whole number from 1 to 365"
            _reject(self, [(("days",), message)])
        return self


class DeclaredValue(BaseModel):
    """What the customer gets back for sharing, as the brand declares it."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: ValueKind
    amount: _Amount | None = None
    """Exact decimal (a string in JSON): above 0, at most 1000000, 2 decimals; whole for points."""
    currency: Currency | None = None
    """ISO 4217 code: for voucher, cash and a money discount only."""
    unit: Literal["percent", "money"] | None = None
    """Only for discount."""
    description: _Text = Field(max_length=500)
    """What the customer gets, in plain words."""
    due: Due

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _reject(self, _value_problems(self))
        return self


def _value_problems(value: DeclaredValue) -> _Problems:
    kind, amount, unit, currency = value.kind, value.amount, value.unit, value.currency
    what = f"a {unit} discount" if kind == "discount" else {"service": "a service"}.get(kind, kind)
    money = kind in ("voucher", "cash") or (kind == "discount" and unit == "money")
    bare = kind in ("points", "service") or (kind == "discount" and unit == "percent")
    # fmt: off
    rules = [
        ("amount", kind == "service" and amount is not None, "a service has no amount; describe it instead"),
        ("amount", kind != "service" and amount is None, f'{kind} needs an amount, e.g. "10.00"'),
        ("amount", what == "a percent discount" and (amount or 0) > 100, "a percent discount is at most 100"),
        ("amount", kind == "points" and (amount or 0) % 1 != 0, "points must be a whole number"),
        ("unit", kind == "discount" and unit is None, "a discount needs a unit: percent or money"),
        ("unit", kind != "discount" and unit is not None, f"unit is only for a discount, not {kind}"),
        ("currency", money and currency is None, f"{what} needs an ISO 4217 currency such as EUR"),
        ("currency", bare and currency is not None, f"no currency for {what}; leave currency out"),
    ]
    # fmt: on
    return [((field,), message) for field, broken, message in rules if broken]


class PurposeTerms(BaseModel):
    """One of several purposes of an offer: why, in the brand's words, and which of its fields it uses."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    purpose: _Purpose
    """A purpose slug (a W3C DPV purpose)."""
    explanation: _Text = Field(max_length=1000)
    """Why the brand needs these fields for this purpose, in plain words."""
    fields: Annotated[_FieldNames, Field(min_length=1, max_length=len(CATALOGUE))]
    """The offer's fields this purpose uses (at least one); the customer agrees to each purpose apart."""


class _OfferFields(BaseModel):
    """What a brand writes, shared by the request body and the public shape."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    title: _Text = Field(max_length=120)
    description: _Text = Field(max_length=2000)
    required_fields: _FieldNames
    """Catalogue fields, stored or derived, that the customer must share to accept."""
    optional_fields: _FieldNames = Field(default_factory=list)
    """Catalogue fields the customer may choose to share."""
    grant_duration_days: int = Field(strict=True, ge=1, le=366)
    """How long a grant lasts: at most 12 months, then the customer is asked again."""
    retention_days: int = Field(strict=True, ge=0, le=3650)
    """How long the brand keeps the data after the grant ends."""
    recipients: Annotated[list[Annotated[_Text, Field(max_length=200)]], AfterValidator(_distinct)] = Field(
        max_length=20
    )
    """Third parties the data is shared with; empty means none."""
    value: DeclaredValue
    listed: bool = False
    """Show the offer in the customers' offer directory, where they can compare it and accept it
    without a redirect (a customer-started grant). Unlisted offers are reached only through the brand's
    authorization requests."""
    categories: Annotated[list[OfferCategory], AfterValidator(_distinct)] = Field(
        default_factory=list, max_length=len(OfferCategory)
    )
    """What the offer is about, for the customers' intents: a listed offer in a category lets its brand
    see the intents of that category (a move, a new baby…) and answer them."""


class OfferDraft(_OfferFields):
    """An offer as a brand writes it: the body of publishing, and of revising, an offer. One purpose
    (`purpose`, `purpose_explanation`) for all its fields, or several (`purposes`), each with its own
    explanation and fields, which the customer agrees to one by one."""

    model_config = ConfigDict(extra="forbid")

    purpose: _Purpose | None = None
    """A purpose slug (a W3C DPV purpose, see purpose_iri) for all the fields; or declare purposes."""
    purpose_explanation: Annotated[_Text, Field(max_length=1000)] | None = None
    """Why the brand needs the data, in plain words (with purpose)."""
    purposes: Annotated[list[PurposeTerms], Field(min_length=1, max_length=len(PURPOSES))] | None = None
    """Several purposes, each with its explanation and fields; every field of the offer in at least one.
    The first is the offer's `purpose`."""

    @model_validator(mode="after")
    def _some_fields_once(self) -> Self:
        both = sorted(set(self.required_fields) & set(self.optional_fields))
        problems: _Problems = []
        if both:
            problems.append((("optional_fields",), f"{', '.join(both)} already required; list a field once"))
        if not self.required_fields and not self.optional_fields:
            problems.append((("required_fields",), "an offer asks for at least one field"))
        problems += self._purpose_problems()
        _reject(self, problems)
        if self.purposes:
            self.purpose, self.purpose_explanation = self.purposes[0].purpose, self.purposes[0].explanation
        return self

    def _purpose_problems(self) -> _Problems:
        if not self.purposes:
            missing = [name for name in ("purpose", "purpose_explanation") if getattr(self, name) is None]
            return [((name,), f"{name} is required, unless the offer declares purposes") for name in missing]
        problems: _Problems = []
        if self.purpose is not None or self.purpose_explanation is not None:
            problems.append((("purpose",), "declare purpose and purpose_explanation, or purposes, not both"))
        slugs = [item.purpose for item in self.purposes]
        if twice := sorted({slug for slug in slugs if slugs.count(slug) > 1}):
            problems.append((("purposes",), f"lists {', '.join(twice)} more than once; a purpose once"))
        offered = [*self.required_fields, *self.optional_fields]
        for item in self.purposes:
            if stray := [name for name in item.fields if name not in offered]:
                detail = f"{item.purpose} uses {', '.join(stray)}, which the offer does not ask for"
                problems.append((("purposes",), detail))
        covered = {name for item in self.purposes for name in item.fields}
        if unused := [name for name in offered if name not in covered]:
            problems.append(
                (("purposes",), f"{', '.join(unused)} is in no purpose; say what each field is for")
            )
        return problems


class OfferPublic(_OfferFields):
    """One offer version as the API shows it."""

    purpose: str
    """The first (or only) purpose's slug."""
    purpose_explanation: str
    purposes: list[PurposeTerms]
    """Every purpose with its explanation and fields: one for all the fields unless several were declared."""
    id: UUID
    lineage_id: UUID
    version: int
    status: OfferStatus
    scopes: list[str]
    """The OAuth scopes of all its fields, profile:<field>."""
    purpose_iri: str
    created_at: datetime
    withdrawn_at: datetime | None

    @classmethod
    def from_offer(cls, offer: Offer) -> OfferPublic:
        """The public shape of a stored offer version."""
        fields = [*offer.required_fields, *offer.optional_fields]
        return cls.model_validate(
            {
                **offer.model_dump(exclude={"brand_id"}),
                "scopes": [field_scope(name) for name in fields],
                "purpose_iri": describe_purpose(offer.purpose).iri,
                "purposes": offered_purposes(
                    offer.purpose, offer.purpose_explanation, fields, offer.purposes
                ),
            }
        )


class OfferPage(BaseModel):
    """A page of offers, newest first; pass `next_cursor` back as `cursor` for the next page."""

    items: list[OfferPublic]
    next_cursor: str | None
