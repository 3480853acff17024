"""Offers: which profile fields a brand asks for, why, for how long, and what it gives back.

An offer version never changes. Revising publishes version n+1 in the same lineage and supersedes the
active one; grants keep the version the customer agreed to. Withdrawing ends the lineage: no new
authorizations, while existing grants run their course.

    active ──revise──▶ superseded     (version n+1 becomes the active one)
      └─────withdraw──▶ withdrawn     (the lineage's end; its older versions stay superseded)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Self
from uuid import UUID, uuid4

import pycountry
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic.functional_serializers import PlainSerializer
from pydantic.functional_validators import AfterValidator, BeforeValidator
from pydantic.json_schema import WithJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select, update

from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.models import Offer, OfferStatus
from broker.consent.purposes import PURPOSES, describe_purpose
from broker.errors import Conflict, NotFound, OfferSuperseded, OfferWithdrawn, ValidationFailed
from broker.oauth.clients import PROFILE_SCOPE_PREFIX
from broker.oauth.models import Brand
from broker.pagination import Page, page
from vault.fields import CATALOGUE

__all__ = [
    "DeclaredValue", "Due", "OfferDraft", "OfferPage", "OfferPublic", "Offers", "field_scope", "scope_fields",
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


class _OfferFields(BaseModel):
    """What a brand writes, shared by the request body and the public shape."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    title: _Text = Field(max_length=120)
    description: _Text = Field(max_length=2000)
    required_fields: _FieldNames
    """Catalogue fields, stored or derived, that the customer must share to accept."""
    optional_fields: _FieldNames = Field(default_factory=list)
    """Catalogue fields the customer may choose to share."""
    purpose: _Purpose
    """A purpose slug; each stands for a W3C DPV purpose (see purpose_iri)."""
    purpose_explanation: _Text = Field(max_length=1000)
    """Why the brand needs the data, in plain words."""
    grant_duration_days: int = Field(strict=True, ge=1, le=366)
    """How long a grant lasts: at most 12 months, then the customer is asked again."""
    retention_days: int = Field(strict=True, ge=0, le=3650)
    """How long the brand keeps the data after the grant ends."""
    recipients: Annotated[list[Annotated[_Text, Field(max_length=200)]], AfterValidator(_distinct)] = Field(
        max_length=20
    )
    """Third parties the data is shared with; empty means none."""
    value: DeclaredValue


class OfferDraft(_OfferFields):
    """An offer as a brand writes it: the body of publishing, and of revising, an offer."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _some_fields_once(self) -> Self:
        both = sorted(set(self.required_fields) & set(self.optional_fields))
        problems: _Problems = []
        if both:
            problems.append((("optional_fields",), f"{', '.join(both)} already required; list a field once"))
        if not self.required_fields and not self.optional_fields:
            problems.append((("required_fields",), "an offer asks for at least one field"))
        _reject(self, problems)
        return self


class OfferPublic(_OfferFields):
    """One offer version as the API shows it."""

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
            }
        )


class OfferPage(BaseModel):
    """A page of offers, newest first; pass `next_cursor` back as `cursor` for the next page."""

    items: list[OfferPublic]
    next_cursor: str | None


def field_scope(name: str) -> str:
    """The OAuth scope for one catalogue field: `profile:<name>`."""
    return PROFILE_SCOPE_PREFIX + name


def scope_fields(scope: str) -> list[str]:
    """The field names in a space-separated scope string, each once, in order.

    Raises `ValidationFailed` (pointer `/scope`) unless every scope is `profile:<catalogue field>`.
    """
    names = [item.removeprefix(PROFILE_SCOPE_PREFIX) for item in scope.split()]
    if wrong := [s for s, n in zip(scope.split(), names, strict=True) if s == n or n not in CATALOGUE]:
        detail = f"unknown scope {wrong[0][:64]!r}; ask for profile:<field>, the fields being: "
        detail += ", ".join(CATALOGUE)
        raise ValidationFailed(detail, errors=[{"pointer": "/scope", "detail": detail}])
    return list(dict.fromkeys(names))


def _columns(draft: OfferDraft) -> dict[str, Any]:
    # JSON mode: the amount is stored as its exact decimal string, never a float.
    value = draft.value.model_dump(mode="json", exclude_none=True)
    return {**draft.model_dump(mode="json", exclude={"value"}), "value": value}


def _withdrawn(offer: Offer, offer_id: UUID, advice: str) -> OfferWithdrawn:
    on = (offer.withdrawn_at or offer.created_at).date().isoformat()
    return OfferWithdrawn(f"offer '{offer_id}' was withdrawn on {on}; {advice}")


@dataclass(frozen=True, slots=True)
class Offers:
    """Offer operations over a session the caller commits, each recorded in the audit log."""

    clock: Callable[[], datetime]
    audit: AuditLog

    def create(self, session: Session, brand: Brand, draft: OfferDraft) -> Offer:
        """Publish version 1 of a new offer; its id is also its lineage id."""
        offer_id = uuid4()
        return self._add(session, brand, draft, id=offer_id, lineage_id=offer_id)

    def get(self, session: Session, brand: Brand, offer_id: UUID) -> Offer:
        """One of this brand's offer versions; another brand's or an unknown id is NotFound alike."""
        return self._owned(session, brand.id, offer_id)

    def list(
        self,
        session: Session,
        brand: Brand,
        *,
        status: OfferStatus | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Offer]:
        """This brand's offer versions, optionally of one status, newest first, keyset-paginated."""
        query = select(Offer).where(Offer.brand_id == brand.id)
        if status is not None:
            query = query.where(Offer.status == status)
        return page(session, query, Offer.created_at, Offer.id, cursor=cursor, limit=limit)

    def revise(self, session: Session, brand: Brand, offer_id: UUID, draft: OfferDraft) -> Offer:
        """Publish `draft` as version n+1 and supersede version n, which `offer_id` must name.

        Conflict `offer-withdrawn` for a withdrawn offer, `offer-superseded` (naming the latest) for old ones.
        """
        offer = self._owned(session, brand.id, offer_id)
        latest = self._latest(session, offer.lineage_id)
        if latest.status == OfferStatus.WITHDRAWN:
            raise _withdrawn(latest, offer_id, "publish a new offer instead")
        if latest.id != offer.id:
            raise OfferSuperseded(
                f"offer '{offer_id}' is version {offer.version}, replaced by version {latest.version}; "
                f"revise the latest version '{latest.id}'",
                latest_id=str(latest.id),
            )
        self._retire(session, latest, OfferStatus.SUPERSEDED)
        return self._add(
            session,
            brand,
            draft,
            previous=latest.id,
            lineage_id=latest.lineage_id,
            version=latest.version + 1,
        )

    def withdraw(self, session: Session, brand: Brand, offer_id: UUID) -> Offer:
        """Withdraw the offer (any of its version ids); returns its withdrawn version. Idempotent."""
        latest = self._latest(session, self._owned(session, brand.id, offer_id).lineage_id)
        if latest.status != OfferStatus.WITHDRAWN:
            self._retire(session, latest, OfferStatus.WITHDRAWN)
            self.audit.record(
                session, Kind.OFFER_WITHDRAWN, actor=Actor.BRAND, brand_id=brand.id, offer=latest.id
            )
        return latest

    def current_for_authorization(self, session: Session, brand_id: UUID, offer_id: UUID) -> Offer:
        """The newest active version of the offer any of whose version ids is given, for a new authorization.

        Withdrawn is Conflict `offer-withdrawn`; an unknown id or another brand's offer is NotFound.
        """
        latest = self._latest(session, self._owned(session, brand_id, offer_id).lineage_id)
        if latest.status != OfferStatus.ACTIVE:
            raise _withdrawn(latest, offer_id, "ask the brand for a current offer")
        return latest

    def latest(self, session: Session, offer: Offer) -> Offer:
        """The newest version of `offer`'s lineage (itself when it is the newest)."""
        return self._latest(session, offer.lineage_id)

    def _owned(self, session: Session, brand_id: UUID, offer_id: UUID) -> Offer:
        offer = session.get(Offer, offer_id)
        if offer is None or offer.brand_id != brand_id:  # never reveal that another brand's offer exists
            raise NotFound(f"offer '{offer_id}' not found")
        return offer

    def _latest(self, session: Session, lineage_id: UUID) -> Offer:
        query = select(Offer).where(Offer.lineage_id == lineage_id).order_by(col(Offer.version).desc())
        latest = session.exec(query.limit(1)).first()
        assert latest is not None  # the lineage holds at least the version that led here
        return latest

    def _add(
        self,
        session: Session,
        brand: Brand,
        draft: OfferDraft,
        *,
        previous: UUID | None = None,
        **lineage: Any,
    ) -> Offer:
        offer = Offer(brand_id=brand.id, created_at=self.clock(), **lineage, **_columns(draft))
        session.add(offer)
        session.flush()
        self.audit.record(
            session,
            Kind.OFFER_PUBLISHED,
            actor=Actor.BRAND,
            brand_id=brand.id,
            offer=offer.id,
            fields=[*offer.required_fields, *offer.optional_fields],
            purpose=offer.purpose,
            supersedes=previous,
        )
        return offer

    def _retire(self, session: Session, offer: Offer, status: OfferStatus) -> None:
        # Compare-and-set: of two concurrent revisions (or a revision and a withdrawal) of one active
        # version, the second finds it no longer active and stops instead of forking the lineage.
        withdrawn_at = self.clock() if status == OfferStatus.WITHDRAWN else None
        result = session.exec(
            update(Offer)
            .where(col(Offer.id) == offer.id, col(Offer.status) == OfferStatus.ACTIVE)
            .values(status=status, withdrawn_at=withdrawn_at)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise Conflict(f"offer '{offer.id}' was changed at the same time; fetch it again and retry")
        # The row already holds these values: record them on the object without another UPDATE.
        set_committed_value(offer, "status", status)
        set_committed_value(offer, "withdrawn_at", withdrawn_at)
