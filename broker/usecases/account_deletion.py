"""Deleting a customer's account for good (`DELETE /v1/me`, the portal's account page).

In one transaction, in this order: every live grant is revoked (its tokens die; each has its receipt,
notice and webhook, and what it owes is settled as for any grant ending), the deletion is logged, the
customer's audit entries are unlinked from them (the entries stay, naming brands' pairwise subjects
only), the vault is shredded (profile ciphertexts, secrets, the data key: backups become unreadable),
and the account's own rows go (sessions, the email's blind index and its failed-login counter),
leaving a bare tombstone. The person leaves with a signed deletion receipt (`broker.receipts.deletion`):
what was destroyed, the grants it ended with their pairwise subjects and the brands' deletion duties,
what stays and why, and the `account.deleted` entry it names.

The receipt also goes by mail to the account's address, if it was confirmed (an unconfirmed one may be
someone else's, and the receipt lists brands). Not through the outbox: a queued message is sealed
under the data key this deletion destroys, and its retries would keep the address for hours after the
person asked for it to go. So `delete` reads the address before the shred and keeps it in memory only;
once the caller has committed, `hand_over` proves the receipt, commits that, and makes one attempt to
send it with no transaction open, whose outcome the answer reports (`MailOutcome`): a failed send (or
an address that could not be read) never undoes or blocks the deletion, and the receipt is still in
the answer and downloadable for its hour.

What others are owed or must do is not the customer's to erase: grants, value obligations and receipts
stay (no foreign key to the customer), shown as of a deleted account.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from uuid import UUID, uuid4

from sqlmodel import Session, col, select

from broker.accounts.models import Customer
from broker.accounts.service import Accounts
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantStatus
from broker.mail.delivery import Attachment, MailDelivery, Outgoing
from broker.mail.outbox import Mail
from broker.receipts.deletion import MailOutcome, deletion_terms
from broker.receipts.schemas import DeletionReceiptPublic
from broker.receipts.service import Receipts
from broker.value.models import Obligation
from vault.errors import VaultError
from vault.profile import Vault

__all__ = ["RECEIPT_FILE", "AccountDeletion", "Deleted", "receipt_file", "receipt_path"]

log = logging.getLogger(__name__)

RECEIPT_FILE = "consentry-deletion-receipt.json"  # the download's and the attachment's name


def receipt_path(receipt_id: UUID) -> str:
    """Where a deletion receipt can be downloaded for its hour, without an account (the portal's
    goodbye page links to it): its random id is the only key."""
    return f"/portal/deleted/{receipt_id}/receipt"


@dataclass(frozen=True, slots=True)
class Deleted:
    """A deletion done, not yet committed: its receipt's id, whether the address was confirmed, and
    that address (None if it could not be read), held in this object only: never stored again, never
    in a repr or a log."""

    receipt_id: UUID
    confirmed: bool
    address: str | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    """Accounts, grants, the audit log and the vault, each doing its part of one deletion."""

    accounts: Accounts
    grants: Grants
    audit: AuditLog
    vault: Vault
    receipts: Receipts
    issuer: str
    mail: Mail
    delivery: MailDelivery

    def delete(self, session: Session, customer: Customer) -> Deleted:
        """Delete the account for good (see the module docstring); returns its deletion receipt's id
        (`broker.receipts.deletion`), signed in the same commit, and the address to mail it to: once
        the caller commits, `hand_over` proves it and sends it."""
        customer_id = customer.id
        held = self.vault.is_held(session, customer_id)
        confirmed, address = customer.email_verified_at is not None, None
        if confirmed:
            try:
                email = self.vault.read_stored(session, customer_id, ["email"]).get("email")
            except VaultError as exc:  # nothing may stand in the way of the erasure: no mail, then
                log.warning(
                    "an address to mail a deletion receipt to was unreadable (%s)", type(exc).__name__
                )
            else:
                address = email if isinstance(email, str) else None
        now = self.grants.clock()
        mine = (
            select(Grant)
            .where(col(Grant.customer_id) == customer_id)
            .order_by(col(Grant.created_at), col(Grant.id))
        )
        live = {
            g.id
            for g in session.exec(mine)
            if effective_status(g, now) in (GrantStatus.ACTIVE, GrantStatus.SUSPENDED)
        }
        self.grants.revoke_all_for_customer(session, customer_id)
        ended = [
            (
                grant,
                brand,
                self.audit.subject(brand.id, customer_id),
                grant.id in live and grant.status is GrantStatus.REVOKED,
            )
            for grant, brand in self.grants.with_brands(session, list(session.exec(mine)))
        ]
        value: dict[UUID, list[Obligation]] = {}
        owed = select(Obligation).where(col(Obligation.customer_id) == customer_id)
        for obligation in session.exec(owed.order_by(col(Obligation.period), col(Obligation.id))):
            value.setdefault(obligation.grant_id, []).append(obligation)
        terms = deletion_terms(
            receipt_id=str(uuid4()), issuer=self.issuer, grants=ended, held=held, value=value, now=now
        )
        self.receipts.forget_deletions(session)  # others' receipts kept past their hour go now
        entry = self.audit.record(session, Kind.ACCOUNT_DELETED, actor=Actor.CUSTOMER)
        receipt_id = self.receipts.deletion(session, terms, entry)
        self.audit.forget_customer(session, customer_id)
        self.vault.shred(session, customer_id)
        self.accounts.remove(session, customer)
        return Deleted(receipt_id, confirmed, address)

    def hand_over(self, session: Session, deleted: Deleted) -> DeletionReceiptPublic:
        """The committed deletion's receipt, proven against the current checkpoint and committed (the
        proof may sign a new checkpoint); then, with no transaction open, so no writer waits on the
        mail server, one attempt to mail it. `mail` in the answer says what became of it. Raises only
        if the proof or its commit failed; the mail never raises."""
        bundle = self.receipts.deletion_bundle(session, deleted.receipt_id)
        session.commit()
        return bundle.model_copy(update={"mail": self._mail(bundle, deleted)})

    def _mail(self, bundle: DeletionReceiptPublic, deleted: Deleted) -> MailOutcome:
        if not deleted.confirmed:
            return MailOutcome.NO_CONFIRMED_ADDRESS
        if deleted.address is None:
            return MailOutcome.NOT_SENT
        try:
            message = self._message(bundle, deleted.address)
        except Exception:  # a bad template must not cost the person the receipt in the answer
            log.exception("a deletion receipt's mail could not be written")
            return MailOutcome.NOT_SENT
        refused = self.delivery.send(message)
        if refused is not None:
            log.warning("a deletion receipt was not mailed: %s", refused)
            return MailOutcome.NOT_SENT
        return MailOutcome.SENT

    def _message(self, bundle: DeletionReceiptPublic, address: str) -> Outgoing:
        grants = bundle.receipt.get("grants") or []
        context = {
            "at": f"{bundle.issued_at:%Y-%m-%d %H:%M} UTC",
            "grants": len(grants),
            "ended": sum(1 for grant in grants if grant.get("ended_by_this_deletion")),
        }
        rendered = self.mail.render("deletion_receipt", context)
        return Outgoing(
            message_id=uuid4(),
            to=address,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            created_at=self.grants.clock(),
            attachments=(Attachment(RECEIPT_FILE, receipt_file(bundle)),),
        )


def receipt_file(bundle: DeletionReceiptPublic) -> bytes:
    """The receipt as the file the person keeps (the download, the attachment): the bundle, without
    the answer's note on the mail."""
    return bundle.model_dump_json(indent=2, exclude={"mail"}).encode()
