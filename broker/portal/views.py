"""What the portal's pages show, built from the services: the dashboard and a grant's detail.

The access log shown with a grant is checked here the way a customer's own tool would: the page's
checkpoint must verify with the log's key, each entry must hash to its leaf and its inclusion proof
must lead to the checkpoint's root; only then does it get its "verified" badge.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.audit.access_log import AccessLogPage, LoggedEntry
from broker.consent.grants import effective_status
from broker.consent.models import Grant, Offer
from broker.consent.purposes import describe_purpose
from broker.runtime import Runtime
from clients.auditor import NoteError, open_note, parse_checkpoint, parse_verifier_key, verify_inclusion
from vault.fields import CATALOGUE

EXPIRING_SOON = timedelta(days=14)
LOG_WINDOW = 200  # the newest entries about the customer that the pages look through

_KIND_LABELS = {
    "profile.read": "read your data",
    "grant.created": "you agreed",
    "grant.amended": "you changed what is shared",
    "grant.revoked": "sharing ended",
    "grant.expired": "sharing expired",
    "grant.suspended": "reads paused: value overdue",
    "grant.resumed": "reads resumed",
    "token_family.revoked": "their access keys were revoked",
    "value.created": "value owed to you",
    "value.delivered": "value delivered",
    "value.confirmed": "you confirmed the value",
    "value.disputed": "you disputed the value",
    "value.dispute_answered": "they answered your dispute",
    "value.dispute_withdrawn": "you withdrew your dispute",
    "value.overdue": "value overdue",
    "value.cancelled": "value cancelled",
}


def overview(session: Session, runtime: Runtime, customer_id: UUID) -> dict[str, Any]:
    """The dashboard: every grant across brands, value status and last access, and value totals."""
    page = runtime.grants.listing(session, owner=("customer_id", customer_id), limit=200)
    last_read: dict[str, datetime] = {}
    for event in runtime.access_log.recent(session, customer_id, limit=LOG_WINDOW):
        if event["kind"] == "profile.read":  # newest first: the first read seen per grant is its last
            last_read.setdefault(event["grant"], datetime.fromisoformat(event["at"]))
    states = runtime.value_views.states_by_grant(session, customer_id)
    now = runtime.clock()
    rows = []
    for grant, brand in runtime.grants.with_brands(session, page.items):
        rows.append(
            {
                "id": grant.id,
                "brand": brand.name,
                "fields": ", ".join(_title(f) for f in grant.fields),
                "purpose": describe_purpose(grant.purpose).label,
                "status": effective_status(grant, now).value,
                "expires_at": grant.expires_at.date().isoformat(),
                "expiring_soon": now < grant.expires_at <= now + EXPIRING_SOON,
                "value": _value_summary(states.get(grant.id, {})),
                "last_access": last_read.get(str(grant.id)),
            }
        )
    return {"grants": rows, "totals": runtime.value_views.totals(session, customer_id)}


def grant_detail(session: Session, runtime: Runtime, customer_id: UUID, grant_id: UUID) -> dict[str, Any]:
    """One grant: the fields shared and their values, terms, its log with badges, its value."""
    grant = runtime.grants.for_customer(session, customer_id, grant_id)
    offer = session.get(Offer, grant.offer_id)
    assert offer is not None
    (pair,) = runtime.grants.with_brands(session, [grant])
    brand = pair[1]
    now = runtime.clock()
    values = runtime.vault.read(session, customer_id, grant.fields)
    log = runtime.access_log.for_customer(session, customer_id, cursor=None, limit=LOG_WINDOW)
    status = effective_status(grant, now)
    purpose = describe_purpose(grant.purpose)
    return {
        "grant": grant,
        "brand": brand.name,
        "status": status.value,
        "live": status.value in ("active", "suspended"),
        "purpose": f"{purpose.label}: {offer.purpose_explanation}",
        "expires_at": grant.expires_at.date().isoformat(),
        "expiring_soon": now < grant.expires_at <= now + EXPIRING_SOON,
        "retention_days": offer.retention_days,
        "fields": [
            {
                "name": name,
                "title": _title(name),
                "value": _display(values.get(name)),
                "required": name in offer.required_fields,
            }
            for name in grant.fields
        ],
        "events": _events(log, grant),
        "chart": access_chart(log, grant, today=now.date()),
        "obligations": runtime.value_views.for_grant_as_customer(session, grant),
    }


CHART_DAYS = 30


def access_chart(log: AccessLogPage, grant: Grant, *, today: date) -> dict[str, Any]:
    """Reads of this grant per day over the last 30 days, as bars for a server-drawn SVG."""
    first = today - timedelta(days=CHART_DAYS - 1)
    per_day = [0] * CHART_DAYS
    for item in log.items:
        day = item.at.date()
        if item.kind == "profile.read" and item.event.get("grant") == str(grant.id) and first <= day <= today:
            per_day[(day - first).days] += 1
    peak, total = max(per_day), sum(per_day)
    width, height = 10, 60  # each day's slot, and the tallest bar, in SVG units
    bars = [
        {"x": i * width + 1, "height": round(height * n / peak) if peak else 0, "count": n,
         "day": (first + timedelta(days=i)).isoformat()}
        for i, n in enumerate(per_day)
    ]  # fmt: skip
    busiest = first + timedelta(days=per_day.index(peak)) if peak else None
    summary = f"{total} read{'s' if total != 1 else ''} in the last {CHART_DAYS} days"
    if busiest is not None:
        summary += f"; most on {busiest.isoformat()} ({peak})"
    return {
        "bars": bars,
        "width": CHART_DAYS * width,
        "height": height,
        "summary": summary,
        "slot": width - 2,
    }


def _events(log: AccessLogPage, grant: Grant) -> list[dict[str, Any]]:
    checkpoint = _checked_checkpoint(log)
    events = []
    for item in log.items:
        if item.event.get("grant") != str(grant.id):
            continue
        events.append(
            {
                "at": item.at.strftime("%Y-%m-%d %H:%M UTC"),
                "what": _KIND_LABELS.get(item.kind, item.kind),
                "fields": ", ".join(_title(f) for f in item.event.get("fields", [])),
                "read": item.kind == "profile.read",
                "verified": checkpoint is not None and _included(item, *checkpoint),
                "index": item.index,
            }
        )
    return events


def _checked_checkpoint(log: AccessLogPage) -> tuple[int, bytes] | None:
    """The page's checkpoint (size, root) if its signature verifies with the log's key."""
    try:
        note = open_note(log.checkpoint, [parse_verifier_key(log.verifier_key)])
        checkpoint = parse_checkpoint(note)
    except NoteError:
        return None
    return checkpoint.size, checkpoint.root_hash


def _included(item: LoggedEntry, size: int, root: bytes) -> bool:
    entry = base64.b64decode(item.entry)
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    proof = [base64.b64decode(node) for node in item.inclusion_proof]
    return leaf == base64.b64decode(item.leaf_hash) and verify_inclusion(leaf, item.index, size, proof, root)


def _value_summary(counts: dict[str, int]) -> str:
    if not counts:
        return "nothing declared"
    order = ("overdue", "owed", "delivered", "disputed", "confirmed", "cancelled")
    return ", ".join(f"{counts[state]} {state}" for state in order if state in counts)


def _title(name: str) -> str:
    spec = CATALOGUE.get(name)
    return spec.title if spec is not None else name


def _display(value: object) -> str:
    if value is None:
        return "not filled in"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
