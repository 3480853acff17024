"""What the portal's pages show, built from the services: the dashboard and a grant's detail.

The access log shown with a grant is checked here the way a customer's own tool would: the page's
checkpoint must verify with the log's key, each entry must hash to its leaf and its inclusion proof
must lead to the checkpoint's root; only then does it get its "verified" badge.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.consent.access_log import AccessLogPage, LoggedEntry
from broker.consent.models import GrantFacts, GrantStatus, Offer
from broker.consent.purposes import PURPOSES, describe_purpose, granted_purposes, offered_purposes
from broker.consent.renewal import RenewalState
from broker.consent.retention import DeletionState
from broker.runtime import Runtime
from broker.usecases.consent_decision import shown_value
from clients.auditor.tlog import (
    NoteError,
    leaf_hash,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    verify_inclusion,
)
from vault.fields import CATALOGUE, JSONValue

EXPIRING_SOON = timedelta(days=14)

_KIND_LABELS = {
    "profile.read": "read your data",
    "profile.read_refused": "tried to read your data, refused",
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
    "grant.renewed": "you renewed",
    "deletion.attested": "they attested deleting your data",
    "deletion.overdue": "their deletion of your data is overdue",
    "value.answer_rejected": "you did not accept their answer",
    "dispute.escalated": "the dispute went to an auditor",
    "dispute.shared": "you let the auditors see the dispute",
    "dispute.declined": "you kept the dispute from the auditors",
    "dispute.file_read": "an auditor read the dispute file",
    "dispute.decided": "an auditor decided the dispute",
    "grant.end_acknowledged": "they confirmed they stopped using your data",
}


# Receipts that record no consent event of the customer's, as the grant page names them.
_RECEIPT_LABELS = {
    "dispute-decided": "an auditor's decision",
    "end-acknowledged": "they confirmed they stopped",
}


def overview(
    session: Session, runtime: Runtime, customer_id: UUID, *, older: str | None = None
) -> dict[str, Any]:
    """The dashboard: a page of grants across brands (the newest, or those older than the cursor
    `older`), value status and last access, and value totals."""
    dashboard = runtime.grant_views.dashboard(session, customer_id, cursor=older)
    now = dashboard.now
    rows = []
    for row in dashboard.rows:
        grant = row.view.grant
        rows.append(
            {
                "id": grant.id,
                "brand": row.view.brand.name,
                "fields": ", ".join(_title(f) for f in grant.fields),
                "purpose": describe_purpose(grant.purpose).label,
                "status": row.view.status.value,
                "expires_at": grant.expires_at.date().isoformat(),
                "expires_in": _expires_in(grant.expires_at, now),
                "expiring_soon": now < grant.expires_at <= now + EXPIRING_SOON,
                "value": _value_summary(row.obligations),
                "last_access": row.last_read,
                "renew": row.view.renewal.prompt,
            }
        )
    return {
        "grants": rows,
        "totals": dashboard.totals,
        "older": dashboard.next_cursor,
        "paged": older is not None,
    }


def grant_detail(
    session: Session, runtime: Runtime, customer_id: UUID, grant_id: UUID, *, before: str | None = None
) -> dict[str, Any]:
    """One grant: the fields shared and their values, its terms, its timeline (what is coming, then
    every logged event about it with its proof badge, a page at a time), its reads per day, its value."""
    detail = runtime.grant_views.detail(
        session, customer_id, grant_id, log_cursor=before, log_limit=TIMELINE_PAGE, read_days=CHART_DAYS
    )
    view, offer, now = detail.view, detail.offer, detail.now
    grant, status, renewal, deletion = view.grant, view.status, view.renewal, view.deletion
    live = status in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
    held = runtime.vault.is_held(session, customer_id)  # the browser alone can show those values
    obligations = detail.obligations
    upcoming = _upcoming(grant, offer, obligations, status, now, renewal, deletion) if before is None else []
    return {
        "grant": grant,
        "brand": view.brand.name,
        "status": status.value,
        "live": live,
        "purpose": _purposes_text(grant, offer),
        "expires_at": grant.expires_at.date().isoformat(),
        "expiring_soon": now < grant.expires_at <= now + EXPIRING_SOON,
        "retention_days": offer.retention_days,
        "duration_days": offer.grant_duration_days,
        "shorten": _shorten_bounds(grant, now) if live else None,
        "ends_at": _when(grant.expires_at),
        "fields": [
            {
                "name": name,
                "title": _title(name),
                "value": "in your custody"
                if held and name not in detail.values
                else _display(detail.values.get(name)),
                "required": name in offer.required_fields,
            }
            for name in grant.fields
        ],
        "timeline": upcoming + _history(detail.log),
        "older": detail.log.next_cursor,
        "paged": before is not None,
        "chart": access_chart(detail.reads, today=now.date()),
        "obligations": obligations,
        "renewal": renewal,
        "deletion": deletion,
        "deletion_due": _when(grant.deletion_due_at) if grant.deletion_due_at else None,
        "acknowledgement": view.acknowledgement,
        "acknowledged": detail.acknowledgement,
        "receipt_labels": _RECEIPT_LABELS,
        "receipts": [
            {"id": r.id, "event": r.event, "issued_at": _when(r.issued_at)} for r in detail.receipts
        ],
    }


TIMELINE_PAGE = 100
CHART_DAYS = 30


def ended_at(grant: GrantFacts, status: GrantStatus) -> datetime | None:
    """When the grant ended (its expiry, or when it was revoked), or None while it is live."""
    if status is GrantStatus.EXPIRED:
        return grant.expires_at
    if status is GrantStatus.REVOKED:
        return grant.status_changed_at
    return None


def _upcoming(
    grant: GrantFacts,
    offer: Offer,
    obligations: list[Any],
    status: GrantStatus,
    now: datetime,
    renewal: RenewalState,
    deletion: DeletionState,
) -> list[dict[str, Any]]:
    """What the terms say comes next, latest first: value due, a reconfirmation, the end of sharing,
    the end of retention."""
    ended = ended_at(grant, status)
    retention = timedelta(days=offer.retention_days)
    milestones: list[tuple[datetime, str]] = []
    if ended is None:
        milestones.append((grant.expires_at, "sharing ends, unless you renew"))
        deleted_by = f"{offer.retention_days} days later, they must have deleted your data"
        milestones.append((grant.expires_at + retention, deleted_by))
        if renewal.reconfirm_by is not None and renewal.reconfirm_by > now:
            milestones.append((renewal.reconfirm_by, "reads stop until you reconfirm, as every 90 days"))
    elif deletion.status == "due" and grant.deletion_due_at is not None:
        milestones.append((grant.deletion_due_at, "they must have deleted your data by now"))
    for o in obligations:
        if o.state == "owed" and o.due_at > now:
            milestones.append((o.due_at, f"value due: {o.description}"))
    return [
        {"at": _when(at), "what": what, "fields": "", "upcoming": True, "read": False}
        for at, what in sorted(milestones, key=lambda m: m[0], reverse=True)
    ]


def _shorten_bounds(grant: GrantFacts, now: datetime) -> dict[str, str] | None:
    """The dates the customer may pick as the new last day of sharing (sharing then stops at the end
    of that day, UTC): from today to the last day that still ends before the current expiry."""
    last = (grant.expires_at - timedelta(microseconds=1)).date() - timedelta(days=1)
    if last < now.date():
        return None
    return {"min": now.date().isoformat(), "max": last.isoformat()}


def access_chart(per_day: list[int], *, today: date) -> dict[str, Any]:
    """Reads per day over the last 30 days (`per_day`, oldest first, today last), as bars for a
    server-drawn SVG."""
    if len(per_day) != CHART_DAYS:
        raise ValueError(f"the chart shows {CHART_DAYS} days, not {len(per_day)}")
    first = today - timedelta(days=CHART_DAYS - 1)
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


def _history(log: AccessLogPage) -> list[dict[str, Any]]:
    """The logged events of one grant, newest first, each checked against the page's checkpoint."""
    checkpoint = _checked_checkpoint(log)
    return [
        {
            "at": _when(item.at),
            "what": _what(item.kind, item.event),
            "fields": ", ".join(_title(f) for f in item.event.get("fields", [])),
            "upcoming": False,
            "read": item.kind == "profile.read",
            "verified": checkpoint is not None and _included(item, *checkpoint),
            "index": item.index,
        }
        for item in log.items
    ]


def _purposes_text(grant: GrantFacts, offer: Offer) -> str:
    """What the grant is for: its one purpose and the brand's explanation, or, for several, each with
    the fields that go with it."""
    granted = granted_purposes(grant.purpose, grant.fields, grant.purpose_fields)
    if len(granted) == 1:
        why = {
            item["purpose"]: item["explanation"]
            for item in offered_purposes(
                offer.purpose, offer.purpose_explanation, grant.fields, offer.purposes
            )
        }
        return f"{describe_purpose(grant.purpose).label}: {why.get(grant.purpose, offer.purpose_explanation)}"
    return "; ".join(
        f"{describe_purpose(slug).label} ({', '.join(_title(f) for f in fields)})"
        for slug, fields in granted.items()
    )


def _what(kind: str, event: dict[str, Any]) -> str:
    """What an entry says happened, and for a read (or a refused one) what it was for."""
    what = _KIND_LABELS.get(kind, kind)
    if kind in ("profile.read", "profile.read_refused") and isinstance(event.get("purpose"), str):
        purpose = PURPOSES.get(event["purpose"])
        what += f", for {(purpose.label if purpose else event['purpose']).lower()}"
    return what


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _checked_checkpoint(log: AccessLogPage) -> tuple[int, bytes] | None:
    """The page's checkpoint (size, root) if its signature verifies with the log's key."""
    try:
        note = open_note(log.checkpoint, [parse_verifier_key(log.verifier_key)])
        checkpoint = parse_checkpoint(note)
    except NoteError:
        return None
    return checkpoint.size, checkpoint.root_hash


def _included(item: LoggedEntry, size: int, root: bytes) -> bool:
    leaf = leaf_hash(base64.b64decode(item.entry))
    proof = [base64.b64decode(node) for node in item.inclusion_proof]
    return leaf == base64.b64decode(item.leaf_hash) and verify_inclusion(leaf, item.index, size, proof, root)


def _expires_in(expires_at: datetime, now: datetime) -> str:
    """How long is left, in words: "in 3 days", "today", or when it ended."""
    if expires_at <= now:
        return "ended"
    days = (expires_at.date() - now.date()).days
    return "today" if days == 0 else "tomorrow" if days == 1 else f"in {days} days"


def _value_summary(counts: dict[str, int]) -> str:
    if not counts:
        return "nothing declared"
    order = ("overdue", "owed", "delivered", "disputed", "confirmed", "cancelled")
    return ", ".join(f"{counts[state]} {state}" for state in order if state in counts)


def _title(name: str) -> str:
    spec = CATALOGUE.get(name)
    return spec.title if spec is not None else name


def _display(value: JSONValue | None) -> str:
    shown = shown_value(value)
    return "not filled in" if shown is None else shown
