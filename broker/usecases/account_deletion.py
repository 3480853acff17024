"""Deleting a customer's account for good (`DELETE /v1/me`, the portal's account page).

In one transaction, in this order: every live grant is revoked (its tokens die; each has its receipt,
notice and webhook, and what it owes is settled as for any grant ending), the deletion is logged, the
customer's audit entries are unlinked from them (the entries stay, naming brands' pairwise subjects
only), the vault is shredded (profile ciphertexts, secrets, the data key: backups become unreadable),
and the account's own rows go (sessions, the email's blind index and its failed-login counter),
leaving a bare tombstone.

What others are owed or must do is not the customer's to erase: grants, value obligations and receipts
stay (no foreign key to the customer), shown as of a deleted account.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlmodel import Session

from broker.accounts.models import Customer
from broker.accounts.service import Accounts
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants
from vault.profile import Vault

__all__ = ["AccountDeletion"]


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    """Accounts, grants, the audit log and the vault, each doing its part of one deletion."""

    accounts: Accounts
    grants: Grants
    audit: AuditLog
    vault: Vault

    def delete(self, session: Session, customer: Customer) -> UUID:
        """Delete the account for good (see the module docstring); returns its id. The caller commits."""
        customer_id = customer.id
        self.grants.revoke_all_for_customer(session, customer_id)
        self.audit.record(session, Kind.ACCOUNT_DELETED, actor=Actor.CUSTOMER)
        self.audit.forget_customer(session, customer_id)
        self.vault.shred(session, customer_id)
        self.accounts.remove(session, customer)
        return customer_id
