"""The customer's preferences: how, when and how often brands may contact them, what about never, and
whether their data may be sold or shared. One record per customer, which every brand with a live
grant must honour, whatever its offer.

The record is sealed in the customer's vault like the profile (the secret `preferences`: AES-GCM
under the customer's data key), so the database holds no plaintext of it and deleting the account
shreds it with the rest. It carries a `version` (0 until first set: the defaults, which ask nothing)
and the time it was last set.

Setting it writes one `preferences.changed` audit entry per live grant (the brand, its pairwise
subject and the grant; never a preference's value) and publishes a `preferences.changed` notice for
each, which tells the brand by webhook. A grant is live here while it is active or suspended: a brand
whose access is suspended for an overdue value may still be contacting the customer, and must still
honour what they asked.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, NamedTuple, Self
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)
from sqlmodel import Session, col, select

from broker.accounts.models import Customer
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import LIVE, effective_status
from broker.consent.models import Grant
from broker.consent.notices import Notice, Notices, NoticeType
from vault.profile import Vault

__all__ = [
    "AVOIDABLE_TOPICS",
    "AvoidableTopic",
    "ContactChannel",
    "Preferences",
    "PreferencesIn",
    "PreferencesPublic",
    "QuietHours",
]

LABEL = "preferences"  # the label of the vault secret that holds them
MAX_CONTACTS_CAP = 100  # a month's cap above this is no cap: say null instead


class ContactChannel(StrEnum):
    """The ways a brand may reach the customer."""

    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    POST = "post"
    PUSH = "push"  # notifications of the brand's app
    IN_APP = "in_app"  # messages inside the brand's app or site, seen when the customer is there


CHANNEL_LABELS: Final = {
    ContactChannel.EMAIL: "Email",
    ContactChannel.SMS: "Text message (SMS)",
    ContactChannel.PHONE: "Phone call",
    ContactChannel.POST: "Post",
    ContactChannel.PUSH: "App notification",
    ContactChannel.IN_APP: "Message inside the brand's app or site",
}


class AvoidableTopic(StrEnum):
    """Topics a customer may rule out, from a small fixed list so that a brand can say which a contact
    was about (and the broker can check it): free text would be neither checkable nor safe to show."""

    ALCOHOL = "alcohol"
    GAMBLING = "gambling"
    TOBACCO = "tobacco"
    WEIGHT_LOSS = "weight_loss"
    PREGNANCY_AND_BABY = "pregnancy_and_baby"
    DATING = "dating"
    CREDIT_AND_LOANS = "credit_and_loans"
    POLITICS = "politics"
    RELIGION = "religion"
    ADULT = "adult"


AVOIDABLE_TOPICS: Final = {
    AvoidableTopic.ALCOHOL: "Alcohol",
    AvoidableTopic.GAMBLING: "Gambling and betting",
    AvoidableTopic.TOBACCO: "Tobacco and vaping",
    AvoidableTopic.WEIGHT_LOSS: "Weight loss and dieting",
    AvoidableTopic.PREGNANCY_AND_BABY: "Pregnancy and baby products",
    AvoidableTopic.DATING: "Dating",
    AvoidableTopic.CREDIT_AND_LOANS: "Credit, loans and debt",
    AvoidableTopic.POLITICS: "Politics and campaigns",
    AvoidableTopic.RELIGION: "Religion",
    AvoidableTopic.ADULT: "Adult content",
}

CLOCK_TIME = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"  # HH:MM, 24-hour


@functools.cache
def _zones() -> frozenset[str]:
    # The IANA zones of the system's database, less the server-relative or placeholder names.
    return frozenset(available_timezones() - {"localtime", "Factory", "posixrules", "posix", "right"})


def _time_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("an IANA time zone such as Europe/London or America/New_York")
    return value


class QuietHours(BaseModel):
    """Hours in which no brand may contact the customer, every day, in their time zone. A window may
    run past midnight (21:00 to 08:00)."""

    model_config = {"extra": "forbid"}

    start: str = Field(description="HH:MM, 24-hour, e.g. 21:30", pattern=CLOCK_TIME)
    end: str = Field(description="HH:MM, 24-hour, e.g. 08:00", pattern=CLOCK_TIME)
    time_zone: Annotated[str, AfterValidator(_time_zone)] = Field(
        description="IANA time zone, e.g. Europe/London", max_length=64
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours must start and end at different times")
        return self


class PreferencesIn(BaseModel):
    """The customer's preferences, as they set them (the whole record: what is left out takes its
    default)."""

    model_config = {"extra": "forbid"}

    channels: list[ContactChannel] = Field(
        default_factory=lambda: list(ContactChannel),
        max_length=len(ContactChannel),
        json_schema_extra={"uniqueItems": True},
        description="the channels brands may use; an empty list means no contact at all",
    )
    quiet_hours: QuietHours | None = Field(default=None, description="null: any time of day")
    max_contacts_per_month: StrictInt | None = Field(
        default=None,
        ge=0,
        le=MAX_CONTACTS_CAP,
        description="contacts each brand may make in a calendar month (0 to 100); null: no cap",
    )
    avoid_topics: list[AvoidableTopic] = Field(
        default_factory=list,
        max_length=len(AvoidableTopic),
        json_schema_extra={"uniqueItems": True},
        description="topics no brand may contact you about",
    )
    do_not_sell_or_share: StrictBool = Field(
        default=False,
        description="no brand may sell your data or share it with anyone else, whatever its offer says",
    )

    @field_validator("channels", "avoid_topics")
    @classmethod
    def _once(cls, items: list[StrEnum]) -> list[StrEnum]:
        if len(set(items)) != len(items):
            raise ValueError("name each one once")
        return items


class PreferencesPublic(PreferencesIn):
    """The preferences as they stand: what the customer set, or the defaults (version 0)."""

    version: int = Field(description="0 until the customer first sets them; then 1, 2, …")
    updated_at: datetime | None = Field(description="when they were last set; null for the defaults")


DEFAULTS: Final = PreferencesPublic(version=0, updated_at=None)


@dataclass(frozen=True, slots=True)
class Preferences:
    """Read and set a customer's preferences."""

    clock: Callable[[], datetime]
    vault: Vault
    audit: AuditLog
    notices: Notices

    def of(self, session: Session, customer_id: UUID) -> PreferencesPublic:
        """The customer's preferences (the defaults until they set any)."""
        sealed = self.vault.secrets(session, customer_id, [LABEL]).get(LABEL)
        return DEFAULTS if sealed is None else _open(sealed).record

    def history(self, session: Session, customer_id: UUID) -> list[PreferencesPublic]:
        """Every version the customer set, oldest first (the last is the one in force)."""
        current = self.of(session, customer_id)
        labels = [f"{LABEL}@{version}" for version in range(1, current.version)]
        sealed = self.vault.secrets(session, customer_id, labels)
        kept = [_open(sealed[label]).record for label in labels if label in sealed]
        return [*kept, current] if current.version else []

    def version(self, session: Session, customer_id: UUID, number: int) -> Sealed | None:
        """Version `number` of the customer's preferences with its salt (0: the defaults, unsalted);
        None if it is not kept (or the account, and its vault, are gone)."""
        if not self.vault.exists(session, customer_id):
            return None
        if number == 0:
            return Sealed(DEFAULTS, "")
        label = f"{LABEL}@{number}"
        sealed = self.vault.secrets(session, customer_id, [label]).get(label)
        return None if sealed is None else _open(sealed)

    def for_receipt(self, session: Session, customer_id: UUID) -> dict[str, object] | None:
        """What a consent receipt says of the preferences in force: their version, when they were set
        and their `digest`, never the preferences themselves (receipts are kept in the clear, and
        outlive the account); None once the account's vault is gone."""
        if not self.vault.exists(session, customer_id):
            return None
        sealed = self.vault.secrets(session, customer_id, [LABEL]).get(LABEL)
        record, salt = Sealed(DEFAULTS, "") if sealed is None else _open(sealed)
        set_at = None if record.updated_at is None else record.updated_at.isoformat()
        return {"version": record.version, "set_at": set_at, "sha256": digest(record, salt)}

    def in_force(self, session: Session, customer_id: UUID, at: datetime) -> PreferencesPublic:
        """The preferences as they stood at `at` (each version is kept, sealed, to judge a contact by
        what the customer asked then)."""
        found = self.of(session, customer_id)
        while found.updated_at is not None and found.updated_at > at:
            label = f"{LABEL}@{found.version - 1}"
            sealed = self.vault.secrets(session, customer_id, [label]).get(label)
            found = DEFAULTS if sealed is None else _open(sealed).record
        return found

    def set(self, session: Session, customer_id: UUID, wanted: PreferencesIn) -> PreferencesPublic:
        """Replace the customer's preferences; every brand with a live grant is told (audit entry,
        notice, webhook) that they changed, not how."""
        now = self.clock()
        lock_customer(session, customer_id)  # two saves at once must not take one version number
        record = PreferencesPublic(
            **wanted.model_dump(), version=self.of(session, customer_id).version + 1, updated_at=now
        )
        sealed = json.dumps({**record.model_dump(mode="json"), "salt": secrets.token_urlsafe(16)})
        self.vault.put_secret(session, customer_id, LABEL, sealed)
        self.vault.put_secret(session, customer_id, f"{LABEL}@{record.version}", sealed)  # for `in_force`
        for grant in live_grants(session, customer_id, now):
            entry = self.audit.record(
                session,
                Kind.PREFERENCES_CHANGED,
                actor=Actor.CUSTOMER,
                customer_id=customer_id,
                brand_id=grant.brand_id,
                grant=grant.id,
            )
            self.notices.publish(
                session,
                Notice(
                    type=NoticeType.PREFERENCES_CHANGED,
                    at=now,
                    actor=Actor.CUSTOMER,
                    grant_id=grant.id,
                    brand_id=grant.brand_id,
                    customer_id=customer_id,
                    data={"version": record.version},
                    entry=entry,
                ),
            )
        return record


class Sealed(NamedTuple):
    """A version of the preferences as the vault keeps it: the record and its random salt."""

    record: PreferencesPublic
    salt: str


def _open(sealed: str) -> Sealed:
    members = json.loads(sealed)
    salt = str(members.pop("salt", ""))
    return Sealed(PreferencesPublic.model_validate(members), salt)


def digest(record: PreferencesPublic, salt: str) -> str:
    """SHA-256 of the record's canonical JSON with its `salt` as one more member (RFC 8785: for these
    members, keys sorted and no spaces), base64url without padding: what a receipt binds. The salt is
    random for each version and kept with it, so nobody without it can try the few possible records
    against a receipt; the customer's copy of the receipt carries it."""
    members = {**record.model_dump(mode="json"), "salt": salt}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def lock_customer(session: Session, customer_id: UUID) -> None:
    """Take the customer's row for writing (PostgreSQL; SQLite's writers are one at a time anyway)."""
    session.exec(select(Customer.id).where(col(Customer.id) == customer_id).with_for_update()).first()


def live_grants(session: Session, customer_id: UUID, now: datetime) -> list[Grant]:
    """The customer's grants whose brands must honour their preferences, oldest first (a grant past
    its end that the lifecycle has not marked yet is not one)."""
    query = (
        select(Grant)
        .where(col(Grant.customer_id) == customer_id, col(Grant.status).in_(LIVE))
        .order_by(col(Grant.created_at), col(Grant.id))
    )
    return [grant for grant in session.exec(query) if effective_status(grant, now) in LIVE]
