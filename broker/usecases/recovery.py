"""Getting back in by email: a password reset by an emailed code, and a one-time sign-in link.

    request     `POST /v1/password-resets` or `/v1/sign-in-links` {email}: the same 202 and body, in
                about the same time, whether or not the address has an account. For an account (exact
                address, not a look-alike) a code goes to its address: 20 random Crockford base32
                characters (`broker.accounts.codes`, stored as SHA-256), single use, for
                CONSENTRY_RECOVERY_CODE_TTL_SECONDS (15 min); a new one withdraws the earlier one.
    reset       the code and a new password (the sign-up rules): the password changes, every session
                ends, every other outstanding reset code and sign-in link is withdrawn, the login
                throttle of the account is cleared, and the owner is told by mail (security activity).
    sign in     the link's code opens a session (`sign_in.link` in the security activity). It never
                looks at the password throttle: an owner whose account is under a password-guessing
                attack still gets in with a message only they can read.

Limits, each keyed by a blind token (nothing in clear): requests per client address (429 past it);
messages per email address per window (past it the answer is the same but nothing is sent, so the
limit neither tells whether the address has an account nor lets a stranger withdraw the owner's
last message); wrong codes per client address (429 past it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session, select

from broker.accounts.activity import ActivityKind, SecurityActivity
from broker.accounts.codes import EmailCodes
from broker.accounts.credentials import PasswordChanges
from broker.accounts.devices import device_label
from broker.accounts.models import CodePurpose, Customer, EmailCode
from broker.accounts.service import Accounts, IssuedSession
from broker.accounts.sessions import CustomerSessions
from broker.accounts.signin import SecondFactorRequired, SignIn
from broker.accounts.throttle import Throttle, ThrottleKey
from broker.errors import CodeExpired, CodeRejected
from broker.mail.outbox import Mail
from vault.blind_index import Purpose, blind_token

__all__ = ["LINK_ACCEPTED", "RESET_ACCEPTED", "Recovery"]

RESET_ACCEPTED = (
    "If an account uses this address, a message with a code to reset its password is on its way to it; "
    "the code works once, for 15 minutes."
)
LINK_ACCEPTED = (
    "If an account uses this address, a message with a sign-in link is on its way to it; the link "
    "works once, for 15 minutes."
)

Flow = Literal["password-reset", "sign-in"]
_PURPOSE = {"password-reset": CodePurpose.PASSWORD_RESET, "sign-in": CodePurpose.SIGN_IN}
_TEMPLATE = {"password-reset": "password_reset", "sign-in": "sign_in_link"}


@dataclass(frozen=True, slots=True)
class Recovery:
    """Password resets and sign-in links (`runtime.recovery`)."""

    accounts: Accounts
    signin: SignIn
    codes: EmailCodes  # its ttl is CONSENTRY_RECOVERY_CODE_TTL_SECONDS
    mail: Mail
    throttle: Throttle  # its window is CONSENTRY_RECOVERY_WINDOW_SECONDS
    sessions: CustomerSessions
    passwords: PasswordChanges
    activity: SecurityActivity
    mails_per_address: int
    requests_per_client: int
    max_failures: int
    clock: Callable[[], datetime]

    def request(
        self, session: Session, flow: Flow, email: str, *, address: str, user_agent: str | None = None
    ) -> None:
        """Send a reset code or a sign-in link to `email` if an account uses it; say nothing either way."""
        key = self._key("address", address, self.requests_per_client)
        self.throttle.limit(session, key, "too many requests from your network")
        email = self.accounts.normalise_email(email)
        per_address = self._key("email", self.accounts.email_token(email).hex(), self.mails_per_address)
        if not self.throttle.allow(session, per_address):
            return  # enough messages went to this address for now; the earlier ones still work
        token = self.accounts.email_token(email)
        customer = session.exec(select(Customer).where(Customer.email_index == token)).first()
        if customer is None:
            return
        purpose = _PURPOSE[flow]
        _, code = self.codes.issue(session, customer.id, purpose, customer.email_index)
        stored = self.accounts.email_of(session, customer.id)
        assert stored is not None  # an account always has its email
        minutes = int(self.codes.ttl.total_seconds() // 60)
        context = {"code": code, "minutes": minutes, "device": device_label(user_agent)}
        self.mail.enqueue(session, customer.id, to=stored, template=_TEMPLATE[flow], context=context)
        if flow == "password-reset":
            self.activity.record(
                session, customer.id, ActivityKind.RESET_REQUESTED, device=device_label(user_agent)
            )

    def reset(
        self, session: Session, code: str, new_password: str, *, address: str, user_agent: str | None = None
    ) -> Customer:
        """Set a new password with a reset code: every session ends, every other outstanding code is
        withdrawn, and the owner is told. 400 for a wrong, used or expired code (counted)."""
        _, customer = self._redeem(session, code, CodePurpose.PASSWORD_RESET, address)
        # A weak new password is a 422 that undoes the transaction (or the portal's savepoint), so it
        # does not use the code up: the customer tries a stronger one with the same code.
        self.passwords.set_password(session, customer, new_password, pointer="/new_password")
        self.sessions.end_all(session, customer.id)
        self.codes.withdraw(session, customer.id, [CodePurpose.PASSWORD_RESET, CodePurpose.SIGN_IN])
        # The owner proved they read the mail: their own address's lock and the account's slow-down go
        # (a guesser's locked addresses stay locked).
        keys = self.accounts.login_keys(customer.email_index, address)
        for key in (keys.pair, keys.account):
            self.accounts.throttle.clear(session, key)
        self.activity.record(
            session, customer.id, ActivityKind.PASSWORD_RESET, device=device_label(user_agent)
        )
        return customer

    def sign_in(
        self, session: Session, code: str, *, address: str, user_agent: str | None = None
    ) -> IssuedSession | SecondFactorRequired:
        """Open a session with a sign-in link's code (other outstanding links are withdrawn), or, when
        the account has a second factor, the pending login that asks for it: the link stands for the
        password, never for the second factor. 400 for a wrong, used or expired code (counted per
        client address); the password throttle is not asked."""
        row, _ = self._redeem(session, code, CodePurpose.SIGN_IN, address)
        self.codes.withdraw(session, row.customer_id, [CodePurpose.SIGN_IN])
        return self.signin.first_factor_passed(
            session,
            row.customer_id,
            user_agent=user_agent,
            kind=ActivityKind.SIGN_IN_LINK,
            method="emailed link",
        )

    def _redeem(
        self, session: Session, code: str, purpose: CodePurpose, address: str
    ) -> tuple[EmailCode, Customer]:
        """Use the code (wrong ones counted per client address) and return it with its account. A
        code sent to an address the account no longer uses is refused; one that works proves the
        mailbox, so an unconfirmed address becomes confirmed."""
        key = self._key("wrong-code", address, self.max_failures)
        self.throttle.limit(session, key, "too many wrong codes from your network", count=False)
        try:
            row = self.codes.redeem(session, code, purposes=[purpose])
        except CodeRejected:
            self.throttle.record_failure(session, [key])
            raise
        customer = session.get(Customer, row.customer_id)
        assert customer is not None  # codes cascade with their account
        if row.email_index != customer.email_index:
            raise CodeExpired("this code was sent to an address your account no longer uses; ask again")
        if customer.email_verified_at is None:
            customer.email_verified_at = self.clock()
            session.add(customer)
        return row, customer

    def _key(self, kind: str, value: str, limit: int) -> ThrottleKey:
        purpose: Purpose = "code-attempt" if kind == "wrong-code" else "code-request"
        return ThrottleKey(blind_token(self.accounts.blind_key, purpose, f"{kind}:{value}"), limit, limit)
