"""What a deletion receipt says: the evidence of an account's erasure, handed to the person who asked.

A deletion receipt is the payload of a JWS (`typ` `deletion-receipt+jwt`, signed with the broker's
receipt key, as consent receipts are), format `version` `consentry-deletion-receipt/1`:

- `receipt_id`, `iss` (the broker), `iat`, `issued_at`;
- `event` `account-deleted`, `event_time` and `event_by` (the customer), as its audit entry has them;
- `destroyed`: what is gone, and how (the profile's data key and ciphertexts: crypto-shredded; a vault
  in self-custody; the sealed secrets; the email's blind index; sessions; second factors; the security
  activity);
- `grants`: every grant the account had, each with its brand, the customer's pairwise `subject` there
  (the name the brand knows them by, to hold it to its duty), whether this deletion ended it, when it
  ended, the brand's deletion duty (its due date and whether the brand attested it), and the value it
  owed for the grant as the grant's ending left it (`value`, in the states the brand sees: owed,
  overdue, cancelled...);
- `stays`: what is kept, and why (value owed, brands' deletion duties, the audit log, consent receipts);
- `audit`: the log's origin and the `index` and `leaf_hash` of the `account.deleted` entry.

It names no email, no profile value, and no account id. It does list every brand the person dealt
with, with the pairwise subject each knows them by: that is what lets them hold each brand to its
duty, and it is theirs to show (a brand shown the whole receipt learns of the others). The broker
keeps it only for the hour its person may download it (`DELETION_KEPT`); its own records still hold
the grants, under the former account's id, which no longer leads to anything personal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from broker.accounts.models import Brand
from broker.audit.entries import rfc3339
from broker.consent.models import Grant
from broker.value.amounts import from_minor
from broker.value.models import Obligation

__all__ = ["DELETION_FORMAT", "DELETION_KEPT", "DELETION_TYPE", "MailOutcome", "deletion_terms"]

DELETION_FORMAT: Final = "consentry-deletion-receipt/1"
DELETION_TYPE: Final = "deletion-receipt+jwt"
# How long the broker keeps a deletion receipt for its person to download (the portal's goodbye page
# links to it); later deletions, and a download past it, delete it.
DELETION_KEPT: Final = timedelta(hours=1)

DESTROYED: Final = (
    {"what": "profile", "how": "crypto-shredded: its data key destroyed and every ciphertext deleted; "
     "backups hold ciphertexts nothing can open any more"},
    {"what": "sealed secrets", "how": "deleted with the data key: contact preferences, redemption codes, "
     "dispute texts, passkey names, the authenticator app's secret"},
    {"what": "email address", "how": "deleted: its blind index, the sign-in throttle and pending codes"},
    {"what": "sessions", "how": "ended at once and deleted"},
    {"what": "second factors", "how": "deleted: passkeys, authenticator app, recovery codes"},
    {"what": "security activity", "how": "deleted"},
)  # fmt: skip
HELD: Final = {
    "what": "self-custody vault",
    "how": "deleted: the ciphertexts your key sealed and every wrapped copy of that key",
}
STAYS: Final = (
    {"what": "value owed to you", "why": "each grant's `value` says what became of it, as for any grant "
     "ending: what was owed stays owed, on the brand's record as owed to a deleted account, when the "
     "brand read data under the grant, and is cancelled when it never did; a brand that does not "
     "deliver still loses access to its other grants"},
    {"what": "brands' deletion duties", "why": "each brand must still delete what it received by the "
     "date in `grants`, and attest it; auditors see the overdue ones"},
    {"what": "audit log", "why": "append-only and public to auditors: its entries name brands' pairwise "
     "subjects, never you, and no longer link to your account"},
    {"what": "consent receipts", "why": "they are the brands' proof of your consent too; they name only "
     "your pairwise subject at each brand"},
)  # fmt: skip


class MailOutcome(StrEnum):
    """What became of the receipt's mail to the account's address, at the deletion: `sent` (the mail
    server took it), `not_sent` (it did not: download it), `no_confirmed_address` (never confirmed)."""

    SENT = "sent"
    NOT_SENT = "not_sent"
    NO_CONFIRMED_ADDRESS = "no_confirmed_address"


def deletion_terms(
    *,
    receipt_id: str,
    issuer: str,
    grants: Sequence[tuple[Grant, Brand, str, bool]],
    held: bool,
    value: Mapping[UUID, Sequence[Obligation]],
    now: datetime,
) -> dict[str, Any]:
    """The receipt before its audit entry is appended: `grants` are (grant as it ended, its brand, the
    customer's pairwise subject there, whether this deletion ended it); `value`, each grant's
    obligations as its ending settled them, in the states brands see at `now` (owed, overdue...)."""
    return {
        "version": DELETION_FORMAT,
        "receipt_id": receipt_id,
        "iss": issuer,
        "event": "account-deleted",
        "destroyed": [*DESTROYED, *([HELD] if held else [])],
        "grants": [
            {
                "grant_id": str(grant.id),
                "brand": {"id": str(brand.id), "name": brand.name, "client_id": brand.client_id},
                "subject": subject,
                "ended_by_this_deletion": ended_now,
                "status": grant.status.value,
                "ended_at": rfc3339(grant.status_changed_at),
                "deletion": _duty(grant),
                "value": [_owed(obligation, now) for obligation in value.get(grant.id, ())],
            }
            for grant, brand, subject, ended_now in grants
        ],
        "stays": list(STAYS),
    }


def _owed(obligation: Obligation, now: datetime) -> dict[str, Any]:
    """One value the brand owed for the grant, as the grant's ending left it, in the state the brand's
    own view of it shows (`owed`, `overdue`, `cancelled`, ...)."""
    return {
        "obligation_id": str(obligation.id),
        "kind": obligation.kind,
        "amount": from_minor(obligation.amount_minor),
        "currency": obligation.currency,
        "state": "overdue" if obligation.overdue(now) else obligation.status.value,
        "due_at": rfc3339(obligation.due_at),
    }


def _duty(grant: Grant) -> dict[str, Any]:
    """The brand's duty to delete what the grant gave it: by when, and whether it said it did."""
    due: datetime | None = grant.deletion_due_at
    return {
        "due_at": None if due is None else rfc3339(due),
        "attested_at": None if grant.deletion_attested_at is None else rfc3339(grant.deletion_attested_at),
        "outcome": grant.deletion_outcome,
        "status": "attested" if grant.deletion_attested_at is not None else "due",
    }
