"""Replay an audit log's grant events in order and find every `profile.read` no live grant covered.

A read is covered when, at its place in the log, its grant had been created for the same brand and
subject, was not revoked, expired or suspended (without a later resume), had not reached its
`expires_at` (as last set by `grant.created`, `grant.amended` or `grant.renewed`) at the read's `at`,
granted every field read, and granted them for the read's purpose (a grant of several purposes says
which fields go with which: `purposes`; one of a single purpose grants all its fields for it).
Revocation and expiry are final.

Entries are RFC 8785 JSON objects with `v` (1) and `kind`. Kinds, or versions, this code does not know
are counted and skipped: the log grows new ones. A known kind missing what it must carry is a
violation too (`malformed_entry`), since the auditor cannot account for it.

`check_reads` is the pure function over (index, entry) pairs; `Replay` is the same, fed one entry at
a time, so a verifier can replay while it downloads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["ReadViolation", "Replay", "ReplayReport", "check_reads"]

_INERT_KINDS = frozenset(
    {
        "offer.published",
        "offer.withdrawn",
        "offer.listed",
        "offer.unlisted",
        "token_family.revoked",
        "account.deleted",
        "key.rotated",
        "profile.read_refused",  # a read refused (its purpose not granted): nothing was served
        "preferences.changed",  # the customer set their preferences: a notice to a live grant's brand
        "preferences.read",  # a brand read the preferences (no profile field) under a grant
        "contact.reported",  # a brand reported a contact it made with the customer
        "feedback.given",  # the customer rated the brand
        "intent.published",  # a customer's intent (no customer, no content)
        "intent.withdrawn",
        "intent.answered",  # a brand answered an intent with an offer
        "custody.changed",  # the customer moved the key of their profile (self-custody or back)
        "grant.sealed",  # the customer's browser sealed a grant's fields to its brand
        "grant.seal_deleted",  # a sealed copy was deleted (the grant ended, or custody returned)
    }
)
_GRANT_KINDS = frozenset(
    {
        "grant.created",
        "grant.amended",
        "grant.renewed",
        "grant.revoked",
        "grant.expired",
        "grant.suspended",
        "grant.resumed",
    }
)
_KNOWN_KINDS = _INERT_KINDS | _GRANT_KINDS | {"profile.read"}


@dataclass(frozen=True, slots=True)
class ReadViolation:
    """A read at `index` that no live grant covered, or a known entry too malformed to account for.

    `codes` name each failed condition (`unknown_grant`, `wrong_brand`, `wrong_subject`,
    `grant_revoked`, `grant_expired`, `grant_suspended`, `fields_not_granted`, `purpose_mismatch` (a
    purpose the grant does not cover), `fields_not_for_purpose` (granted, but for another purpose),
    `malformed_entry`); `reason` says the same for people.
    """

    index: int
    at: str | None
    grant: str | None
    brand: str | None
    fields: tuple[str, ...]
    codes: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What a replay found: entries and reads seen, entries by kind, and the violations in log order."""

    entries: int
    reads: int
    kinds: dict[str, int]
    unknown: dict[str, int]  # kinds (or entry versions) counted but not interpreted
    violations: list[ReadViolation]


@dataclass(slots=True)
class _Grant:
    brand: str
    subject: str
    fields: frozenset[str]
    purposes: dict[str, frozenset[str]]  # which fields each purpose covers
    expires: str  # as the log wrote it
    expires_at: datetime
    ended: tuple[str, int] | None = None  # ("revoked" or "expired", entry index): final
    suspended: int | None = None  # the entry that suspended it, until one resumes it


class _Malformed(Exception):
    pass


class Replay:
    """A replay in progress: the grants as of the entries applied so far, in log order."""

    def __init__(self) -> None:
        self._grants: dict[str, _Grant] = {}
        self._kinds: Counter[str] = Counter()
        self._unknown: Counter[str] = Counter()
        self._violations: list[ReadViolation] = []
        self._entries = 0

    def apply_bytes(self, index: int, data: bytes) -> None:
        """Apply the entry whose exact bytes (JSON) are `data`."""
        try:
            entry = json.loads(data)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            self._entries += 1
            self._malformed(index, {}, "the entry is not a JSON object")
            return
        self.apply(index, entry)

    def apply(self, index: int, entry: Mapping[str, object]) -> None:
        """Apply the entry at `index`, parsed; entries must come in log order."""
        self._entries += 1
        kind = entry.get("kind")
        if not isinstance(kind, str):
            self._malformed(index, entry, "it has no 'kind'")
            return
        self._kinds[kind] += 1
        if kind not in _KNOWN_KINDS or entry.get("v") != 1:
            self._unknown[kind if kind not in _KNOWN_KINDS else f"{kind} v{entry.get('v')}"] += 1
            return
        try:
            if kind == "profile.read":
                self._read(index, entry)
            elif kind in _GRANT_KINDS:
                self._grant_event(index, kind, entry)
        except _Malformed as exc:
            self._malformed(index, entry, f"this {kind} entry {exc}")

    def report(self) -> ReplayReport:
        """What the entries applied so far show."""
        return ReplayReport(
            entries=self._entries,
            reads=self._kinds["profile.read"],
            kinds=dict(self._kinds),
            unknown=dict(self._unknown),
            violations=list(self._violations),
        )

    def _grant_event(self, index: int, kind: str, entry: Mapping[str, object]) -> None:
        grant_id = _text(entry, "grant")
        if kind == "grant.created":
            fields = _fields(entry)
            self._grants[grant_id] = _Grant(
                brand=_text(entry, "brand"),
                subject=_text(entry, "subject"),
                fields=frozenset(fields),
                purposes=_purposes(entry, _text(entry, "purpose"), fields),
                expires=_text(entry, "expires_at"),
                expires_at=_time(entry, "expires_at"),
            )
            return
        grant = self._grants.get(grant_id)
        if grant is None:  # an event about a grant never created covers no read: nothing to track
            return
        if kind in ("grant.amended", "grant.renewed"):  # a renewal also carries the grant's terms
            if "fields" in entry:
                fields = _fields(entry)
                grant.fields = frozenset(fields)
                if "purposes" in entry or len(grant.purposes) == 1:
                    grant.purposes = _purposes(entry, next(iter(grant.purposes)), fields)
            if "expires_at" in entry:
                grant.expires, grant.expires_at = _text(entry, "expires_at"), _time(entry, "expires_at")
        elif kind == "grant.suspended":
            grant.suspended = index
        elif kind == "grant.resumed":
            grant.suspended = None
        elif grant.ended is None:  # revoked or expired: the first end is the one that counts
            grant.ended = (kind.removeprefix("grant."), index)

    def _read(self, index: int, entry: Mapping[str, object]) -> None:
        grant_id, brand, fields = _text(entry, "grant"), _text(entry, "brand"), _fields(entry)
        read = _Read(brand, _text(entry, "subject"), fields, _text(entry, "purpose"), _time(entry, "at"))
        grant = self._grants.get(grant_id)
        failed = (
            [("unknown_grant", "the grant was never created")] if grant is None else _uncovered(read, grant)
        )
        if failed:
            self._violations.append(
                ReadViolation(
                    index=index,
                    at=_text(entry, "at"),
                    grant=grant_id,
                    brand=brand,
                    fields=tuple(fields),
                    codes=tuple(code for code, _ in failed),
                    reason="; ".join(reason for _, reason in failed),
                )
            )

    def _malformed(self, index: int, entry: Mapping[str, object], reason: str) -> None:
        def optional(key: str) -> str | None:
            value = entry.get(key)
            return value if isinstance(value, str) else None

        self._violations.append(
            ReadViolation(
                index=index,
                at=optional("at"),
                grant=optional("grant"),
                brand=optional("brand"),
                fields=(),
                codes=("malformed_entry",),
                reason=f"malformed entry: {reason}",
            )
        )


@dataclass(frozen=True, slots=True)
class _Read:
    brand: str
    subject: str
    fields: list[str]
    purpose: str
    at: datetime


def _uncovered(read: _Read, grant: _Grant) -> list[tuple[str, str]]:
    """Each (code, reason) for which `grant`, as it stands, does not cover `read`."""
    failed: list[tuple[str, str]] = []
    if read.brand != grant.brand:
        failed.append(("wrong_brand", f"the grant is brand {grant.brand}'s"))
    if read.subject != grant.subject:
        failed.append(("wrong_subject", f"the grant is for another subject, {grant.subject}"))
    if grant.ended is not None:
        how, index = grant.ended
        failed.append((f"grant_{how}", f"the grant was {how} at entry {index}"))
    elif read.at >= grant.expires_at:
        failed.append(("grant_expired", f"the grant had expired at {grant.expires}"))
    if grant.suspended is not None:
        failed.append(("grant_suspended", f"the grant was suspended at entry {grant.suspended}, not resumed"))
    extra = sorted(set(read.fields) - grant.fields)
    if extra:
        failed.append(("fields_not_granted", f"fields not granted: {', '.join(extra)}"))
    covered = grant.purposes.get(read.purpose)
    if covered is None:
        granted = ", ".join(repr(p) for p in grant.purposes)
        failed.append(("purpose_mismatch", f"purpose {read.purpose!r}, granted for {granted}"))
    elif stray := sorted(set(read.fields) - covered - set(extra)):
        failed.append(("fields_not_for_purpose", f"not granted for {read.purpose!r}: {', '.join(stray)}"))
    return failed


def check_reads(entries: Iterable[tuple[int, Mapping[str, object]]]) -> ReplayReport:
    """Replay (index, parsed entry) pairs in log order and report the reads no live grant covered."""
    replay = Replay()
    for index, entry in entries:
        replay.apply(index, entry)
    return replay.report()


def _text(entry: Mapping[str, object], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"has no string {key!r}")
    return value


def _fields(entry: Mapping[str, object]) -> list[str]:
    value = entry.get("fields")
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise _Malformed("has no 'fields' list of names")
    return value


def _purposes(entry: Mapping[str, object], purpose: str, fields: list[str]) -> dict[str, frozenset[str]]:
    """Which fields each purpose covers: the entry's `purposes`, or its one purpose for all `fields`."""
    value = entry.get("purposes")
    if value is None:
        return {purpose: frozenset(fields)}
    if not isinstance(value, dict) or not all(
        isinstance(names, list) and all(isinstance(name, str) for name in names) for names in value.values()
    ):
        raise _Malformed("has a 'purposes' that is not a map of purposes to field names")
    return {str(slug): frozenset(names) for slug, names in value.items()}


def _time(entry: Mapping[str, object], key: str) -> datetime:
    """An RFC 3339 instant; one without a UTC offset cannot be ordered, so it is malformed."""
    text = _text(entry, key)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise _Malformed(f"has an {key!r} that is not an RFC 3339 time: {text!r}") from None
    if instant.utcoffset() is None:
        raise _Malformed(f"has an {key!r} without a UTC offset: {text!r}")
    return instant
