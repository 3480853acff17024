"""Confirming email addresses: sign-up without enumeration, codes that verify, a change of address.

    sign up     the same 202 answer, in about the same time (argon2id hashes the password in every
                branch), whatever the address:
                  new address             an unverified account, and a code to the address
                  an account's address    no account; its owner is told someone tried (`signup_attempt`)
                  a look-alike of one     the same as taken, the matched owner told an address *like*
                                          theirs was tried, never which; nothing goes to the look-alike
                                          address, since a message there would tell its holder (maybe
                                          the attacker) that the other account exists
    verify      a code (single use, `CONSENTRY_EMAIL_CODE_TTL_SECONDS`, stored hashed) marks the sign-up
                address verified, or makes a pending new address the account's and tells the old one
    change      a code goes to the new address, which replaces the old one only once confirmed;
                an address taken, or a look-alike of another account's, is refused with a clear 409
                (the caller is logged in: and, once step-up lands, freshly authenticated)

Sign-ups and code requests are counted per client address, and wrong codes too, with blind tokens of
the address (`broker.accounts.throttle`): never stored in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlmodel import Session

from broker.accounts.codes import EmailCodes
from broker.accounts.models import CodePurpose, Customer, EmailCode
from broker.accounts.service import Accounts
from broker.accounts.throttle import Throttle, ThrottleKey
from broker.errors import (
    CodeExpired,
    CodeRejected,
    EmailAlreadyVerified,
    EmailLookalike,
    EmailTaken,
    ValidationFailed,
)
from broker.mail.outbox import Mail
from vault.blind_index import Purpose, blind_token

__all__ = ["PENDING_CHANGE", "EmailVerification"]

# "Someone tried to sign up with your address" messages one account receives per sign-up window at
# most: past it, attempts are answered the same but tell nobody (no flooding a mailbox by sign-ups).
SIGNUP_ATTEMPT_NOTICES = 3
PENDING_CHANGE = "email-change"  # the vault secret holding a new address until its code is used


@dataclass(frozen=True, slots=True)
class EmailVerification:
    """Sign-up, verification and change of address (`runtime.verification`)."""

    accounts: Accounts
    codes: EmailCodes
    mail: Mail
    throttle: Throttle  # its window is CONSENTRY_SIGNUP_WINDOW_SECONDS
    sends_per_address: int
    wrong_codes_per_address: int
    clock: Callable[[], datetime]

    def sign_up(self, session: Session, email: str, password: str, *, address: str) -> None:
        """Sign up without saying whether the address has an account (see the module docstring)."""
        self._count_send(session, address)
        email, password_hash = self.accounts.prepare(email, password)
        holder = self.accounts.holder(session, email)
        if holder is not None:
            self._tell_owner(
                session, holder, lookalike=holder.email_index != self.accounts.email_token(email)
            )
            return
        customer = self.accounts.create(session, email, password_hash)
        self._send_code(session, customer, email, CodePurpose.SIGN_UP)

    def _tell_owner(self, session: Session, holder: Customer, *, lookalike: bool) -> None:
        """Tell the owner of a taken (or look-alike) address that someone tried it, a few times per
        window at most."""
        notices = self._key("signup-notice", str(holder.id), SIGNUP_ATTEMPT_NOTICES)
        if not self.throttle.allow(session, notices):
            return
        owner = self._address_of(session, holder.id)
        self.mail.enqueue(
            session, holder.id, to=owner, template="signup_attempt", context={"lookalike": lookalike}
        )

    def resend(self, session: Session, customer: Customer, *, address: str) -> None:
        """A new code for the account's address (earlier ones stop working); 409 when it is verified."""
        if customer.email_verified_at is not None:
            raise EmailAlreadyVerified("your email address is already confirmed")
        self._count_send(session, address)
        self._send_code(session, customer, self._address_of(session, customer.id), CodePurpose.SIGN_UP)

    def request_change(self, session: Session, customer: Customer, new_email: str, *, address: str) -> str:
        """Send a code to `new_email`, which becomes the account's address once confirmed; returns it
        as normalised. 422 for the address it already is, 409 for another account's or a look-alike."""
        email = self.accounts.normalise_email(new_email)
        if self.accounts.email_token(email) == customer.email_index:
            message = "this is already your address"
            raise ValidationFailed(message, errors=[{"pointer": "/email", "detail": message}])
        # Counted before the answer can say "taken": per network and per account, so a prober with
        # an account and many addresses learns little.
        self._count_send(session, address)
        per_account = self._key("email-change", str(customer.id), self.sends_per_address)
        self.throttle.limit(session, per_account, "too many changes of address asked for")
        holder = self.accounts.holder(session, email, besides=customer.id)
        if holder is not None and holder.email_index == self.accounts.email_token(email):
            raise EmailTaken("another account uses this address; choose another")
        if holder is not None:
            raise EmailLookalike(
                "this address looks like another account's (letters from other alphabets or look-alike "
                "characters); choose another",
            )
        self._send_code(session, customer, email, CodePurpose.CHANGE)
        self.accounts.vault.put_secret(session, customer.id, PENDING_CHANGE, email)
        return email

    def verify(self, session: Session, code: str, *, address: str) -> EmailCode:
        """Use a code: the sign-up address is verified, or the pending new address replaces the old
        (which is told). 400 for a wrong, used or expired code (wrong ones counted), 429 past the limit."""
        key = self._key("verify-address", address, self.wrong_codes_per_address)
        self.throttle.limit(session, key, "too many wrong codes from your network", count=False)
        try:
            row = self.codes.redeem(session, code, purposes=(CodePurpose.SIGN_UP, CodePurpose.CHANGE))
        except CodeRejected:
            self.throttle.record_failure(session, [key])
            raise
        customer = session.get(Customer, row.customer_id)
        assert customer is not None  # codes cascade with their account
        if row.purpose is CodePurpose.SIGN_UP:
            if row.email_index != customer.email_index:
                raise CodeExpired("this code was for an address your account no longer uses")
            customer.email_verified_at = self.clock()
            session.add(customer)
            return row
        self._change(session, customer, row)
        return row

    def _change(self, session: Session, customer: Customer, row: EmailCode) -> None:
        vault = self.accounts.vault
        new = vault.secrets(session, customer.id, [PENDING_CHANGE]).get(PENDING_CHANGE)
        if new is None or self.accounts.email_token(new) != row.email_index:
            raise CodeExpired("this code was for a change of address that was replaced; ask again")
        old = self._address_of(session, customer.id)
        self.accounts.replace_email(session, customer, new)
        vault.forget_secret(session, customer.id, PENDING_CHANGE)
        self.mail.enqueue(session, customer.id, to=old, template="email_changed", context={})

    def _send_code(self, session: Session, customer: Customer, email: str, purpose: CodePurpose) -> None:
        _, code = self.codes.issue(session, customer.id, purpose, self.accounts.email_token(email))
        template = "verify_email" if purpose is CodePurpose.SIGN_UP else "email_change_verify"
        minutes = int(self.codes.ttl.total_seconds() // 60)
        self.mail.enqueue(
            session, customer.id, to=email, template=template, context={"code": code, "minutes": minutes}
        )

    def _address_of(self, session: Session, customer_id: UUID) -> str:
        email = self.accounts.email_of(session, customer_id)
        assert email is not None  # an account always has its email
        return email

    def _count_send(self, session: Session, address: str) -> None:
        """Count a sign-up or a code sent from `address`; 429 past the limit in the window."""
        key = self._key("signup-address", address, self.sends_per_address)
        self.throttle.limit(session, key, "too many sign-ups or codes asked for from your network")

    def _key(self, purpose: Purpose, address: str, limit: int) -> ThrottleKey:
        return ThrottleKey(blind_token(self.accounts.blind_key, purpose, address), limit, limit)
