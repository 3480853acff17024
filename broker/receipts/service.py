"""Issuing and reading consent receipts.

`Receipts` is a notice subscriber: for grant.created, grant.amended, grant.renewed, grant.revoked,
grant.expired, an auditor's dispute.decided and the brand's grant.end_acknowledged it takes the
terms as they stand, and once the transaction's audit entries are appended (inside the same commit,
`QueuedEntry.when_appended`) it names the matching entry's index and leaf hash, signs the receipt
with the broker's current Ed25519 key and adds the row. The receipt and its audit entry commit
together or not at all; suspensions and resumptions change no consent and get no receipt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from joserfc import jws
from sqlmodel import Session, col, delete, select
from sqlmodel.sql.expression import SelectOfScalar

from broker.accounts.models import Auditor, Brand
from broker.audit.log import QueuedEntry
from broker.consent.access_log import AccessLog, decode_index_cursor, encode_index_cursor
from broker.consent.grants import Grants
from broker.consent.models import EndAcknowledgement, Grant, Offer
from broker.consent.notices import Notice, NoticeType
from broker.errors import NotFound
from broker.oauth.signing import SigningKeys
from broker.pagination import Page
from broker.receipts.deletion import DELETION_KEPT, DELETION_TYPE
from broker.receipts.document import (
    RECEIPT_TYPE,
    acknowledgement,
    complete,
    decision,
    event_of,
    receipt_terms,
)
from broker.receipts.models import DeletionReceipt, Receipt
from broker.receipts.schemas import DeletionReceiptPublic, ReceiptPage, ReceiptPublic
from broker.value.models import Escalation
from broker.voice.preferences import Preferences

__all__ = ["Receipts"]


@dataclass(frozen=True, slots=True)
class Receipts:
    """Issue receipts (as a notice subscriber) and show them, as bundles, to their customer and brand."""

    clock: Callable[[], datetime]
    issuer: str
    signing: SigningKeys
    grants: Grants
    access_log: AccessLog
    preferences: Preferences

    def notice(self, session: Session, notice: Notice) -> None:
        """Prepare the receipt a consent event calls for; it is signed when its entry is appended."""
        if notice.entry is None:
            return
        grant = session.get(Grant, notice.grant_id)
        assert grant is not None, "a grant notice names a grant"
        event = event_of(notice, grant)
        if event is None:
            return
        offer, brand = session.get(Offer, grant.offer_id), session.get(Brand, grant.brand_id)
        assert offer is not None and brand is not None
        escalation = self._decided(session, notice)
        acknowledged = (
            session.get(EndAcknowledgement, grant.id)
            if notice.type is NoticeType.GRANT_END_ACKNOWLEDGED
            else None
        )
        receipt_id = (
            escalation.receipt_id
            if escalation is not None
            else acknowledged.receipt_id
            if acknowledged is not None
            else uuid4()
        )
        assert receipt_id is not None, "a decided escalation names its receipt"
        # The terms now: a later change in this transaction has its own notice, entry and receipt.
        terms = receipt_terms(
            receipt_id=receipt_id, issuer=self.issuer, event=event, grant=grant, offer=offer, brand=brand
        )
        if escalation is not None:
            auditor = session.get(Auditor, escalation.decided_by)
            assert auditor is not None, "auditors are never deleted, only revoked"
            terms["decision"] = decision(escalation, auditor)
        if acknowledged is not None:
            terms["acknowledgement"] = acknowledgement(acknowledged, grant)
        preferences = self.preferences.for_receipt(session, grant.customer_id)
        if preferences is not None:  # the customer's preferences in force, bound by their digest
            terms["preferences"] = preferences

        def issue(session: Session, entry: QueuedEntry) -> None:
            now = self.clock()
            token, key = self._signed(terms, entry, now, RECEIPT_TYPE)
            assert entry.index is not None
            session.add(
                Receipt(
                    id=receipt_id,
                    customer_id=grant.customer_id,
                    grant_id=grant.id,
                    brand_id=grant.brand_id,
                    event=event.name,
                    audit_index=entry.index,
                    issued_at=now,
                    jws=token,
                    signing_key=key,
                )
            )

        notice.entry.when_appended(issue)

    def _signed(
        self, terms: Mapping[str, Any], entry: QueuedEntry, now: datetime, typ: str
    ) -> tuple[str, dict[str, Any]]:
        """The receipt of `terms` completed with its appended `entry` (`complete`), signed as `typ`,
        and the public key that signed it."""
        claims = complete(terms, entry=entry, log_origin=self.access_log.checkpoints.origin, issued_at=now)
        token = self.signing.sign(claims, typ=typ)
        key = self.signing.public_key(str(jws.extract_compact(token.encode()).headers()["kid"]))
        assert key is not None, "the key that just signed is published"
        return token, key

    def deletion(self, session: Session, terms: dict[str, Any], entry: QueuedEntry) -> UUID:
        """Sign and keep an account's deletion receipt (`broker.receipts.deletion`) once its
        `account.deleted` entry is appended, in the same commit; its id, to hand to the person."""
        receipt_id = UUID(str(terms["receipt_id"]))

        def issue(session: Session, appended: QueuedEntry) -> None:
            now = self.clock()
            token, key = self._signed(terms, appended, now, DELETION_TYPE)
            assert appended.index is not None
            session.add(
                DeletionReceipt(
                    id=receipt_id, audit_index=appended.index, issued_at=now, jws=token, signing_key=key
                )
            )

        entry.when_appended(issue)
        return receipt_id

    def forget_deletions(self, session: Session) -> int:
        """Delete the deletion receipts past the hour they can be downloaded in (`DELETION_KEPT`): the
        person has theirs; the broker keeps no list of who dealt with which brands. How many went."""
        old = col(DeletionReceipt.issued_at) < self.clock() - DELETION_KEPT
        return int(session.exec(delete(DeletionReceipt).where(old)).rowcount or 0)

    def deletion_bundle(self, session: Session, receipt_id: UUID) -> DeletionReceiptPublic:
        """A deletion receipt with its entry proven against the current checkpoint (signed now, if the
        log grew since the last): call it once the deletion is committed."""
        receipt = session.get(DeletionReceipt, receipt_id)
        if receipt is None:
            raise NotFound(f"no deletion receipt {receipt_id}")
        proven = self.access_log.proven(session, [receipt.audit_index])
        (entry,) = proven.items
        return DeletionReceiptPublic(
            id=receipt.id,
            event="account-deleted",
            issued_at=receipt.issued_at,
            receipt=_payload(receipt.jws),
            jws=receipt.jws,
            signing_key=receipt.signing_key,
            audit_entry=entry,
            checkpoint=proven.checkpoint,
            verifier_key=proven.verifier_key,
            tree_size=proven.tree_size,
        )

    @staticmethod
    def _decided(session: Session, notice: Notice) -> Escalation | None:
        """The escalation a `dispute.decided` notice reports; None for any other notice."""
        if notice.type is not NoticeType.DISPUTE_DECIDED:
            return None
        escalation = session.get(Escalation, UUID(str(notice.data["escalation"])))
        assert escalation is not None, "a decision names its escalation"
        return escalation

    def for_customer(
        self, session: Session, customer_id: UUID, *, cursor: str | None, limit: int, grant_id: UUID | None
    ) -> ReceiptPage:
        """The customer's receipts, newest first; only one grant's with `grant_id`."""
        query = select(Receipt).where(Receipt.customer_id == customer_id)
        if grant_id is not None:
            query = query.where(Receipt.grant_id == grant_id)
        return self._bundles(session, _page(session, query, cursor, limit), owner=customer_id)

    def everything_for(self, session: Session, customer_id: UUID) -> list[dict[str, Any]]:
        """Every receipt of the customer, oldest first, as issued (for their export): the JWS, the key
        that signed it and its audit index; proofs are a request away (`/v1/me/receipts/{id}`)."""
        query = select(Receipt).where(Receipt.customer_id == customer_id).order_by(col(Receipt.audit_index))
        return [
            {
                "id": str(r.id),
                "grant_id": str(r.grant_id),
                "event": r.event,
                "issued_at": r.issued_at.isoformat(),
                "audit_index": r.audit_index,
                "jws": r.jws,
                "signing_key": r.signing_key,
            }
            for r in session.exec(query)
        ]

    def one_for_customer(self, session: Session, customer_id: UUID, receipt_id: UUID) -> ReceiptPublic:
        """One of the customer's receipts; anyone else's, like an unknown id, is 404."""
        receipt = session.get(Receipt, receipt_id)
        if receipt is None or receipt.customer_id != customer_id:
            raise NotFound(f"receipt '{receipt_id}' not found; list yours at /v1/me/receipts")
        return self._bundles(session, Page(items=[receipt], next_cursor=None), owner=customer_id).items[0]

    def one(self, session: Session, receipt_id: UUID) -> ReceiptPublic | None:
        """One receipt as a bundle, whoever it is for (the caller checks who may see it); None if absent."""
        receipt = session.get(Receipt, receipt_id)
        if receipt is None:
            return None
        return self._bundles(session, Page(items=[receipt], next_cursor=None)).items[0]

    def for_brand_grant(
        self, session: Session, brand_id: UUID, grant_id: UUID, *, cursor: str | None, limit: int
    ) -> ReceiptPage:
        """The receipts of one of the brand's grants, newest first; another brand's grant is 404."""
        self.grants.for_brand(session, brand_id, grant_id)
        query = select(Receipt).where(Receipt.grant_id == grant_id, Receipt.brand_id == brand_id)
        return self._bundles(session, _page(session, query, cursor, limit))

    def _bundles(self, session: Session, receipts: Page[Receipt], owner: UUID | None = None) -> ReceiptPage:
        """Each receipt with its audit entry, proven against one current checkpoint; for their `owner`,
        with the preferences the receipt binds, opened from their vault."""
        proven = self.access_log.proven(session, [r.audit_index for r in receipts.items])
        entries = {item.index: item for item in proven.items}
        return ReceiptPage(
            items=[
                ReceiptPublic(
                    id=r.id,
                    grant_id=r.grant_id,
                    event=r.event,
                    issued_at=r.issued_at,
                    receipt=_payload(r.jws),
                    jws=r.jws,
                    signing_key=r.signing_key,
                    audit_entry=entries[r.audit_index],
                    checkpoint=proven.checkpoint,
                    verifier_key=proven.verifier_key,
                    tree_size=proven.tree_size,
                    **self._bound(session, owner, r),
                )
                for r in receipts.items
            ],
            next_cursor=receipts.next_cursor,
        )

    def _bound(self, session: Session, owner: UUID | None, receipt: Receipt) -> dict[str, Any]:
        """The preferences a receipt binds and their salt, for its owner while their vault lasts."""
        bound = _payload(receipt.jws).get("preferences")
        if owner is None or not isinstance(bound, dict):
            return {}
        found = self.preferences.version(session, owner, int(bound.get("version", 0)))
        return {} if found is None else {"preferences": found.record, "preferences_salt": found.salt}


def _page(session: Session, query: SelectOfScalar[Receipt], cursor: str | None, limit: int) -> Page[Receipt]:
    """Newest first in the log's order (the index of each receipt's entry, which never ties), keyset
    paged with the access log's cursors."""
    if cursor is not None:
        query = query.where(col(Receipt.audit_index) < decode_index_cursor(cursor))
    rows = list(session.exec(query.order_by(col(Receipt.audit_index).desc()).limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    return Page(items=rows, next_cursor=encode_index_cursor(rows[-1].audit_index) if more else None)


def _payload(token: str) -> dict[str, Any]:
    """The payload of a JWS we signed and stored ourselves (no need to verify our own row)."""
    payload: dict[str, Any] = json.loads(jws.extract_compact(token.encode()).payload)
    return payload
