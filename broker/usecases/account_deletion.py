"""Deleting a customer's account for good (`DELETE /v1/me`, the portal's account page).

In one transaction, in this order: every live grant is revoked (its tokens die; each has its receipt,
notice and webhook, and what it owes is settled as for any grant ending), the deletion is logged, the
customer's audit entries are unlinked from them (the entries stay, naming brands' pairwise subjects
only), the vault is shredded (profile ciphertexts, secrets, the data key: backups become unreadable),
and the account's own rows go (sessions, the email's blind index and its failed-login counter),
leaving a bare tombstone. The person leaves with a signed deletion receipt (`broker.receipts.deletion`):
what was destroyed, the grants it ended with their pairwise subjects and the brands' deletion duties,
what stays and why, and the `account.deleted` entry it names.

What others are owed or must do is not the customer's to erase: grants, value obligations and receipts
stay (no foreign key to the customer), shown as of a deleted account.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlmodel import Session, col, select

from broker.accounts.models import Customer
from broker.accounts.service import Accounts
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants, effective_status
from broker.consent.models import Grant, GrantStatus
from broker.receipts.deletion import deletion_terms
from broker.receipts.service import Receipts
from vault.profile import Vault

__all__ = ["AccountDeletion"]


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    """Accounts, grants, the audit log and the vault, each doing its part of one deletion."""

    accounts: Accounts
    grants: Grants
    audit: AuditLog
    vault: Vault
    receipts: Receipts
    issuer: str

    def delete(self, session: Session, customer: Customer) -> UUID:
        """Delete the account for good (see the module docstring); returns the id of its deletion
        receipt (`broker.receipts.deletion`), signed in the same commit: once the caller commits,
        `Receipts.deletion_bundle` hands it over with its proof."""
        customer_id = customer.id
        held = self.vault.is_held(session, customer_id)
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
        terms = deletion_terms(receipt_id=str(uuid4()), issuer=self.issuer, grants=ended, held=held)
        self.receipts.forget_deletions(session)  # others' receipts kept past their hour go now
        entry = self.audit.record(session, Kind.ACCOUNT_DELETED, actor=Actor.CUSTOMER)
        receipt_id = self.receipts.deletion(session, terms, entry)
        self.audit.forget_customer(session, customer_id)
        self.vault.shred(session, customer_id)
        self.accounts.remove(session, customer)
        return receipt_id
