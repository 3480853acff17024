"""Contacts brands report making with customers, checked against the customer's preferences.

A brand reports each contact under the grant it holds (`POST /v1/grants/{id}/contacts`): the channel,
when, for which purpose, and which of the avoidable topics it was about. The broker judges it
against the preferences in force at that moment (`Preferences.in_force`) and keeps the codes of what
it broke:

- `channel`: a channel the customer ruled out (or every channel: no contact at all);
- `quiet_hours`: inside the customer's quiet hours, in their time zone;
- `over_cap`: past the customer's monthly cap for this brand (contacts of the brand with the customer
  in the same calendar month, in the customer's time zone or UTC, this one included);
- `topic`: about a topic the customer ruled out;
- `after_end`: made after the grant ended (revoked or expired). Nothing else is judged then: the brand
  may no longer read the preferences, and its report must not tell it what they are.

A contact is reported for a grant the brand holds, made no earlier than the grant and no later than
now (with 5 minutes of clock skew), and at most `REPORT_WINDOW` ago: what a brand reports months
later cannot be judged fairly, nor trusted. Each report is a `contact.reported` audit entry (brand,
subject, grant; never what was broken). The customer sees every report, the breaking ones flagged;
auditors see the counts per brand (`contact_report`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Final
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func
from sqlmodel import Session, col, select

from broker.accounts.brands import brand_names
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import effective_status
from broker.consent.models import Grant, GrantStatus
from broker.consent.purposes import PURPOSES
from broker.errors import ValidationFailed
from broker.pagination import Page, page
from broker.voice.models import ContactReport
from broker.voice.preferences import (
    AvoidableTopic,
    ContactChannel,
    Preferences,
    PreferencesPublic,
    QuietHours,
    lock_customer,
)

__all__ = [
    "BREACH_WORDS",
    "REPORT_WINDOW",
    "BrandContacts",
    "Breach",
    "ContactIn",
    "ContactReportSummary",
    "Contacts",
    "summary",
]

REPORT_WINDOW: Final = timedelta(days=30)
CLOCK_SKEW: Final = timedelta(minutes=5)


class Breach(StrEnum):
    """What a contact broke of the customer's preferences."""

    CHANNEL = "channel"
    QUIET_HOURS = "quiet_hours"
    OVER_CAP = "over_cap"
    TOPIC = "topic"
    AFTER_END = "after_end"  # made after the grant ended: no preference is judged, it is the breach


BREACH_WORDS: Final = {
    Breach.CHANNEL: "by a way you ruled out",
    Breach.QUIET_HOURS: "during your quiet hours",
    Breach.OVER_CAP: "beyond the number of contacts a month you allow",
    Breach.TOPIC: "about a topic you asked never to hear about",
    Breach.AFTER_END: "after you stopped sharing with them",
}


class ContactIn(BaseModel):
    """A contact the brand made with the customer of a grant."""

    model_config = {"extra": "forbid"}

    channel: ContactChannel
    contacted_at: datetime = Field(description="when, RFC 3339 with a time zone")
    purpose: str = Field(max_length=64, description="why, one of the broker's purposes (e.g. marketing)")
    topics: list[AvoidableTopic] = Field(
        default_factory=list,
        max_length=len(AvoidableTopic),
        json_schema_extra={"uniqueItems": True},
        description="which of the avoidable topics it was about (none: leave it empty)",
    )

    @field_validator("topics")
    @classmethod
    def _once(cls, topics: list[AvoidableTopic]) -> list[AvoidableTopic]:
        if len(set(topics)) != len(topics):
            raise ValueError("name each topic once")
        return topics


@dataclass(frozen=True, slots=True)
class Contacts:
    """Record and judge contacts; list them for the customer and count them for auditors."""

    clock: Callable[[], datetime]
    preferences: Preferences
    audit: AuditLog

    def report(self, session: Session, grant: Grant, contact: ContactIn) -> ContactReport:
        """Record a contact the grant's brand made (the caller checked the brand owns the grant)."""
        now = self.clock()
        at = contact.contacted_at
        if at.tzinfo is None:
            raise ValidationFailed.at(
                "/contacted_at", "give contacted_at with a time zone, e.g. 2026-12-01T18:30:00Z"
            )
        if contact.purpose not in PURPOSES:
            raise ValidationFailed.at("/purpose", f"purpose: one of {', '.join(PURPOSES)}")
        if at > now + CLOCK_SKEW:
            raise ValidationFailed.at(
                "/contacted_at", "contacted_at is in the future: report a contact once made"
            )
        if at < grant.created_at:
            raise ValidationFailed.at(
                "/contacted_at", "contacted_at is before the grant began: report contacts under it"
            )
        if at < now - REPORT_WINDOW:
            raise ValidationFailed.at(
                "/contacted_at", f"report a contact within {REPORT_WINDOW.days} days of making it"
            )
        lock_customer(session, grant.customer_id)  # one report at a time counts the month
        ended = _ended_at(grant, now)
        if ended is not None and at >= ended:
            wanted, broken = None, [Breach.AFTER_END]
        else:
            wanted = self.preferences.in_force(session, grant.customer_id, at)
            earlier = self._in_month(session, grant, at, wanted.quiet_hours)
            broken = breaches(wanted, contact, at, earlier)
        row = ContactReport(
            grant_id=grant.id,
            brand_id=grant.brand_id,
            customer_id=grant.customer_id,
            channel=contact.channel.value,
            purpose=contact.purpose,
            contacted_at=at,
            reported_at=now,
            breaches=[b.value for b in broken],
            flagged=bool(broken),
            preferences_version=wanted.version if wanted is not None else -1,
        )
        session.add(row)
        self.audit.record(
            session,
            Kind.CONTACT_REPORTED,
            actor=Actor.BRAND,
            customer_id=grant.customer_id,
            brand_id=grant.brand_id,
            grant=grant.id,
        )
        session.flush()
        return row

    def _in_month(self, session: Session, grant: Grant, at: datetime, quiet: QuietHours | None) -> int:
        """The brand's contacts with the customer reported before, in the calendar month of `at`."""
        zone = ZoneInfo(quiet.time_zone) if quiet else ZoneInfo("UTC")
        local = at.astimezone(zone)
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        query = select(func.count()).where(
            col(ContactReport.brand_id) == grant.brand_id,
            col(ContactReport.customer_id) == grant.customer_id,
            col(ContactReport.contacted_at) >= start,
            col(ContactReport.contacted_at) < end,
        )
        return int(session.exec(query).one())

    def for_customer(
        self, session: Session, customer_id: UUID, *, cursor: str | None, limit: int, flagged: bool = False
    ) -> Page[ContactReport]:
        """The customer's reported contacts, most recent first (only the breaking ones if `flagged`)."""
        query = select(ContactReport).where(col(ContactReport.customer_id) == customer_id)
        if flagged:
            query = query.where(col(ContactReport.flagged))
        return page(session, query, ContactReport.contacted_at, ContactReport.id, cursor=cursor, limit=limit)

    def for_grant(self, session: Session, grant_id: UUID, limit: int = 50) -> Sequence[ContactReport]:
        """A grant's latest reported contacts, most recent first."""
        query = (
            select(ContactReport)
            .where(col(ContactReport.grant_id) == grant_id)
            .order_by(col(ContactReport.contacted_at).desc(), col(ContactReport.id).desc())
            .limit(limit)
        )
        return session.exec(query).all()


class BrandContacts(BaseModel):
    """One brand's reported contacts, and how many broke what (a contact may break several)."""

    brand_id: UUID
    brand: str
    reported: int
    breaking: int = Field(description="contacts that broke at least one preference")
    channel: int
    quiet_hours: int
    over_cap: int
    topic: int


class ContactReportSummary(BaseModel):
    """Per brand, the contacts reported since `since` and those that broke the customers' preferences.
    No customer is named."""

    as_of: datetime
    since: datetime
    brands: list[BrandContacts]


def summary(session: Session, now: datetime, since: datetime) -> ContactReportSummary:
    """The auditors' counts, brand by brand (by name), of contacts made since `since`."""
    rows = session.exec(
        select(ContactReport.brand_id, ContactReport.breaches).where(col(ContactReport.contacted_at) >= since)
    ).all()
    counts: dict[UUID, dict[str, int]] = {}
    for brand_id, broken in rows:
        tally = counts.setdefault(brand_id, {"reported": 0, "breaking": 0, **dict.fromkeys(Breach, 0)})
        tally["reported"] += 1
        tally["breaking"] += bool(broken)
        for code in broken:
            tally[code] += 1
    names = brand_names(session, list(counts))
    brands = [BrandContacts(brand_id=b, brand=names.get(b, ""), **c) for b, c in counts.items()]
    return ContactReportSummary(
        as_of=now, since=since, brands=sorted(brands, key=lambda b: (b.brand, str(b.brand_id)))
    )


def breaches(
    wanted: PreferencesPublic, contact: ContactIn, at: datetime, earlier_this_month: int
) -> list[Breach]:
    """What of `wanted` a contact at `at` breaks, given the brand's contacts earlier that month."""
    found = []
    if contact.channel not in wanted.channels:
        found.append(Breach.CHANNEL)
    if wanted.quiet_hours is not None and _quiet(wanted.quiet_hours, at):
        found.append(Breach.QUIET_HOURS)
    cap = wanted.max_contacts_per_month
    if cap is not None and earlier_this_month + 1 > cap:
        found.append(Breach.OVER_CAP)
    if set(contact.topics) & set(wanted.avoid_topics):
        found.append(Breach.TOPIC)
    return found


def _ended_at(grant: Grant, now: datetime) -> datetime | None:
    """When the grant ended, or None while the brand still holds it."""
    status = effective_status(grant, now)
    if status is GrantStatus.EXPIRED:
        return grant.expires_at
    return grant.status_changed_at if status is GrantStatus.REVOKED else None


def _quiet(hours: QuietHours, at: datetime) -> bool:
    """Whether `at` falls in the quiet hours (start included, end not; across midnight if start > end)."""
    local = at.astimezone(ZoneInfo(hours.time_zone)).time()
    start, end = time.fromisoformat(hours.start), time.fromisoformat(hours.end)
    return start <= local < end if start < end else local >= start or local < end
