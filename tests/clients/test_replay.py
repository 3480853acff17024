"""Replaying the log's grant events: a profile read passes only under a live grant that covers its brand,
subject, fields and purpose at that point in the log; unknown kinds are counted, not fatal."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest
import rfc8785

from clients.auditor import Replay, ReplayReport, check_reads

GRANT = "5b0f7a7e-6c1e-4c52-9d55-8a0d8f1e2b01"
BRAND = "0c8f4a4e-3d8b-4a9e-9f0a-1f6f1c6e7d21"
OTHER_BRAND = "9a9a9a9a-3d8b-4a9e-9f0a-1f6f1c6e7d21"
SUBJECT = "ab" * 16

Entry = dict[str, Any]


def entry(kind: str, **fields: object) -> Entry:
    return {"v": 1, "kind": kind, "at": "2026-11-23T10:00:00.000000Z", "actor": "broker"} | fields


def created(**changes: object) -> Entry:
    fields: dict[str, object] = {
        "brand": BRAND,
        "subject": SUBJECT,
        "grant": GRANT,
        "offer": "7d3c1e9a-1111-4c52-9d55-8a0d8f1e2b01",
        "fields": ["email", "dietary"],
        "purpose": "newsletter",
        "expires_at": "2027-01-01T00:00:00.000000Z",
    }
    return entry("grant.created", **(fields | changes))


def event(kind: str, at: str = "2026-11-23T11:00:00.000000Z") -> Entry:
    return entry(f"grant.{kind}", at=at, brand=BRAND, subject=SUBJECT, grant=GRANT)


def read(at: str = "2026-11-23T12:00:00.000000Z", **changes: object) -> Entry:
    fields: dict[str, object] = {
        "brand": BRAND,
        "subject": SUBJECT,
        "grant": GRANT,
        "fields": ["email"],
        "purpose": "newsletter",
        "request_id": "req-1",
    }
    return entry("profile.read", at=at, **(fields | changes))


def replay(*entries: Mapping[str, object]) -> ReplayReport:
    return check_reads(enumerate(entries))


def codes(report: ReplayReport) -> list[tuple[int, tuple[str, ...]]]:
    return [(v.index, v.codes) for v in report.violations]


def test_reads_under_a_live_grant_covering_them_pass() -> None:
    report = replay(created(), read(), read(fields=["email", "dietary"]), read(fields=[]))
    assert report.violations == []
    assert (report.entries, report.reads) == (4, 3)
    assert report.kinds == {"grant.created": 1, "profile.read": 3}


@pytest.mark.parametrize(
    ("entries", "code", "reason"),
    [
        ([read()], "unknown_grant", "the grant was never created"),
        ([created(), read(brand=OTHER_BRAND)], "wrong_brand", f"the grant is brand {BRAND}'s"),
        ([created(), read(subject="cd" * 16)], "wrong_subject", f"another subject, {SUBJECT}"),
        ([created(), event("revoked"), read()], "grant_revoked", "the grant was revoked at entry 1"),
        ([created(), event("expired"), read()], "grant_expired", "the grant was expired at entry 1"),
        (
            [created(), event("suspended"), read()],
            "grant_suspended",
            "the grant was suspended at entry 1, not resumed",
        ),
        (
            [created(), read("2027-01-01T00:00:00.000000Z")],
            "grant_expired",
            "the grant had expired at 2027-01-01T00:00:00.000000Z",
        ),
        ([created(), read(fields=["email", "phone"])], "fields_not_granted", "fields not granted: phone"),
        ([created(), read(purpose="ads")], "purpose_mismatch", "purpose 'ads', granted for 'newsletter'"),
    ],
)
def test_each_uncovered_read_is_reported_with_its_reason(
    entries: list[Entry], code: str, reason: str
) -> None:
    report = replay(*entries)
    [violation] = report.violations
    assert violation.index == len(entries) - 1
    assert violation.codes == (code,)
    assert reason in violation.reason
    assert (violation.grant, violation.at) == (GRANT, entries[-1]["at"])


def test_a_read_an_instant_before_expiry_passes() -> None:
    assert replay(created(), read("2026-12-31T23:59:59.999999Z")).violations == []


def test_a_read_failing_several_conditions_names_them_all() -> None:
    report = replay(created(), event("revoked"), read(brand=OTHER_BRAND, fields=["phone"], purpose="ads"))
    assert codes(report) == [(2, ("wrong_brand", "grant_revoked", "fields_not_granted", "purpose_mismatch"))]


def test_a_read_before_the_revocation_passes_and_one_after_fails() -> None:
    report = replay(created(), read(), event("revoked"), read())
    assert codes(report) == [(3, ("grant_revoked",))]


def test_a_resumed_grant_covers_reads_again() -> None:
    report = replay(created(), event("suspended"), read(), event("resumed"), read())
    assert codes(report) == [(2, ("grant_suspended",))]


def test_revocation_is_final_even_after_a_resume() -> None:
    report = replay(created(), event("revoked"), event("resumed"), read())
    assert codes(report) == [(3, ("grant_revoked",))]


def test_an_amendment_changes_the_fields_and_expiry_from_then_on() -> None:
    amended = entry(
        "grant.amended",
        brand=BRAND,
        subject=SUBJECT,
        grant=GRANT,
        fields=["email", "phone"],
        expires_at="2026-12-01T00:00:00.000000Z",
    )
    report = replay(
        created(),
        read(fields=["dietary"]),
        amended,
        read(fields=["phone"]),
        read(fields=["dietary"]),
        read("2026-12-01T00:00:00.000000Z"),
    )
    assert codes(report) == [(4, ("fields_not_granted",)), (5, ("grant_expired",))]


def test_a_renewal_moves_the_expiry_so_later_reads_are_covered() -> None:
    renewed = entry(
        "grant.renewed",
        brand=BRAND,
        subject=SUBJECT,
        grant=GRANT,
        fields=["email", "dietary"],
        purpose="newsletter",
        expires_at="2027-06-01T00:00:00.000000Z",
    )
    report = replay(
        created(), read("2027-01-01T00:00:00.000000Z"), renewed, read("2027-03-01T00:00:00.000000Z")
    )
    assert codes(report) == [(1, ("grant_expired",))]
    assert report.unknown == {}


def test_expiry_compares_instants_not_strings() -> None:
    expires_at = "2026-12-31T23:00:00-01:00"  # midnight UTC, which sorts before 23:30Z as a string
    report = replay(
        created(expires_at=expires_at), read("2026-12-31T23:30:00Z"), read("2027-01-01T00:00:00Z")
    )
    assert codes(report) == [(2, ("grant_expired",))]


def test_unknown_kinds_and_versions_are_counted_and_skipped() -> None:
    report = replay(
        created(),
        entry("value.promised", grant=GRANT),
        entry("value.promised", grant=GRANT),
        read() | {"v": 2, "purpose": "ads"},
        entry("offer.published", brand=BRAND, offer="o", fields=["email"], purpose="newsletter"),
        read(),
    )
    assert report.violations == []
    assert report.unknown == {"value.promised": 2, "profile.read v2": 1}
    assert report.kinds["value.promised"] == 2
    assert report.reads == 2


def test_events_about_unknown_grants_are_ignored() -> None:
    assert replay(event("revoked"), event("resumed")).violations == []


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (read(grant=7), "has no string 'grant'"),
        (read(fields="email"), "has no 'fields' list of names"),
        (read(at="yesterday"), "not an RFC 3339 time"),
        (read(at="2026-11-23T12:00:00"), "without a UTC offset"),
        (created(purpose=None), "has no string 'purpose'"),
        ({"v": 1}, "it has no 'kind'"),
    ],
)
def test_a_known_entry_missing_what_it_must_carry_is_a_violation(bad: Entry, reason: str) -> None:
    report = replay(bad)
    [violation] = report.violations
    assert violation.codes == ("malformed_entry",)
    assert reason in violation.reason


def test_entries_are_replayed_from_their_exact_bytes() -> None:
    streaming = Replay()
    for index, data in enumerate([rfc8785.dumps(created()), b"\xff not json", b"[1]", rfc8785.dumps(read())]):
        streaming.apply_bytes(index, data)
    report = streaming.report()
    assert report.entries == 4
    assert codes(report) == [(1, ("malformed_entry",)), (2, ("malformed_entry",))]
    assert "not a JSON object" in report.violations[0].reason


def test_check_reads_is_pure_over_index_entry_pairs() -> None:
    pairs: Iterable[tuple[int, Mapping[str, object]]] = [(10, created()), (11, read(purpose="ads"))]
    first, second = check_reads(pairs), check_reads(pairs)
    assert first == second
    assert codes(first) == [(11, ("purpose_mismatch",))]


def test_a_grant_of_several_purposes_covers_each_read_only_with_that_purposes_fields() -> None:
    several = {"newsletter": ["email"], "research": ["dietary"]}
    report = replay(
        created(purposes=several),
        read(fields=["email"], purpose="newsletter"),
        read(fields=["dietary"], purpose="research"),
        read(fields=["dietary"], purpose="newsletter"),  # granted, but for research only
        read(fields=["email"], purpose="marketing"),  # a purpose never agreed to
        entry("profile.read_refused", grant=GRANT, brand=BRAND, purpose="marketing"),
    )
    assert codes(report) == [(3, ("fields_not_for_purpose",)), (4, ("purpose_mismatch",))]
    assert report.unknown == {}, "a refused read is a known kind"


def test_narrowing_a_grant_of_several_purposes_follows_its_purposes() -> None:
    amended = entry("grant.amended", grant=GRANT, brand=BRAND, subject=SUBJECT, fields=["email"],
                    purpose="newsletter", purposes={"newsletter": ["email"]},
                    expires_at="2027-01-01T00:00:00.000000Z")  # fmt: skip
    report = replay(
        created(purposes={"newsletter": ["email"], "research": ["dietary"]}),
        amended,
        read(fields=["dietary"], purpose="research"),
    )
    assert codes(report) == [(2, ("fields_not_granted", "purpose_mismatch"))]


def test_a_purposes_map_that_is_not_one_is_malformed() -> None:
    report = replay(created(purposes={"newsletter": "email"}))
    assert codes(report) == [(0, ("malformed_entry",))]
