"""Account operations: sign up, log in and out, authenticate a session token, delete for good."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlmodel import Session, col, delete, select

from broker.accounts.models import AccountTombstone, Customer, CustomerSession, LoginThrottle
from broker.accounts.passwords import Passwords, check_password
from broker.accounts.throttle import LoginKeys, Throttle, ThrottleKey, pair_token
from broker.audit.entries import Actor, Kind
from broker.audit.log import AuditLog
from broker.consent.grants import Grants
from broker.digests import secret_digest
from broker.errors import Conflict, InvalidCredentials, NotAuthenticated, ValidationFailed
from vault.blind_index import blind_token
from vault.errors import ProfileInvalid
from vault.fields import validate_field
from vault.profile import Vault

TOKEN_PREFIX = "cst_"  # noqa: S105 - a prefix that makes leaked tokens recognisable, not a secret


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session and its token, which exists in clear only in this response."""

    session: CustomerSession
    token: str


@dataclass(frozen=True, slots=True)
class Accounts:
    """Customer account service."""

    vault: Vault
    passwords: Passwords
    throttle: Throttle
    blind_key: bytes
    session_ttl: timedelta
    slowdown_after: int
    max_failures_pair: int
    max_failures_address: int
    account_slowdown_after: int
    grants: Grants
    audit: AuditLog
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]

    def email_token(self, email: str) -> bytes:
        """The blind-index token of an email address."""
        return blind_token(self.blind_key, "email", email)

    def normalise_email(self, email: str) -> str:
        """Validate an email the way the profile does; a bad one is a 422 on the `email` field."""
        try:
            value = validate_field("email", email)
        except ProfileInvalid as exc:
            message = exc.errors[0].message
            raise ValidationFailed(message, errors=[{"pointer": "/email", "detail": message}]) from None
        assert isinstance(value, str)
        return value

    def sign_up(self, session: Session, email: str, password: str) -> Customer:
        """Create an account, its vault, and store the email (encrypted) as the profile's email."""
        email = self.normalise_email(email)
        check_password(password, user_inputs=[email, email.split("@")[0]])
        token = self.email_token(email)
        if session.exec(select(Customer.id).where(Customer.email_index == token)).first() is not None:
            raise Conflict("an account with this email already exists; log in instead", slug="email-taken")
        customer = Customer(
            email_index=token, password_hash=self.passwords.hash(password), created_at=self.clock()
        )
        session.add(customer)
        session.flush()
        self.vault.create(session, customer.id)
        self.vault.write(session, customer.id, {"email": email}, replace=False)
        return customer

    def login_keys(self, account: bytes, address: str) -> LoginKeys:
        """The throttle keys of a login for the account (its email token) from a client address."""
        by_address = blind_token(self.blind_key, "client-address", address)
        return LoginKeys(
            pair=ThrottleKey(pair_token(account, by_address), self.slowdown_after, self.max_failures_pair),
            # An address shared by many people (an office, a carrier NAT) slows down only halfway to its lock.
            address=ThrottleKey(by_address, self.max_failures_address // 2, self.max_failures_address),
            account=ThrottleKey(account, self.account_slowdown_after, None),
        )

    def verify_password(self, session: Session, email: str, password: str, *, address: str) -> Customer:
        """Check credentials under the throttle; the same 401 for every failure. This proves the
        password only: `broker.accounts.signin` decides whether a second factor must follow."""
        keys = self.login_keys(self.email_token(email), address)
        customer = session.exec(select(Customer).where(Customer.email_index == keys.account.token)).first()
        return self.check_password_of(session, customer, password, keys)

    def check_password_of(
        self, session: Session, customer: Customer | None, password: str, keys: LoginKeys
    ) -> Customer:
        """Check a customer's password (None: an unknown account, at the same cost) after the delay
        the throttle asks for; count a failure against every key. The caller clears the pair's count
        once the whole login has succeeded (a right password alone must not reset a second factor's)."""
        delay = self.throttle.delay_before_attempt(session, keys.password)
        if delay:
            self.sleep(delay)
        if (
            not self.passwords.verify(customer.password_hash if customer else None, password)
            or customer is None
        ):
            self.throttle.record_failure(session, keys.password)
            raise InvalidCredentials("the email or password is wrong")
        if self.passwords.needs_rehash(customer.password_hash):
            customer.password_hash = self.passwords.hash(password)
            session.add(customer)
        return customer

    def open_session(
        self, session: Session, customer_id: UUID, *, method: str = "password", second_factor: bool = False
    ) -> IssuedSession:
        """A fresh session with a new random token (ids never carry over: login rotates them), which
        records how the customer authenticated (`method`, and whether with a second factor)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        row = CustomerSession(
            customer_id=customer_id,
            token_hash=secret_digest(token),
            created_at=now,
            expires_at=now + self.session_ttl,
            authenticated_at=now,
            second_factor=second_factor,
            auth_method=method,
        )
        session.add(row)
        session.flush()
        return IssuedSession(session=row, token=token)

    def authenticate(self, session: Session, token: str) -> CustomerSession:
        """The live session behind a token, or NotAuthenticated (unknown, forged, expired or ended)."""
        digest = secret_digest(token)
        row = session.exec(select(CustomerSession).where(CustomerSession.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise NotAuthenticated("the session token is not valid; log in again")
        if row.revoked_at is not None or row.expires_at <= self.clock():
            raise NotAuthenticated("the session has ended; log in again")
        return row

    def log_out(self, session: Session, current: CustomerSession) -> None:
        """End a session server-side: its token stops working at once."""
        current.revoked_at = self.clock()
        session.add(current)
        session.flush()

    def change_email(self, session: Session, customer: Customer, email: str) -> None:
        """Point the login at a new email (the profile's email field holds the value, encrypted)."""
        token = self.email_token(email)
        if token == customer.email_index:
            return
        if session.exec(select(Customer.id).where(Customer.email_index == token)).first() is not None:
            raise Conflict("another account already uses this email", slug="email-taken")
        customer.email_index = token
        session.add(customer)

    def delete(self, session: Session, customer: Customer) -> UUID:
        """Delete the account for good: revoke its live grants (each with its receipt and notice), shred
        the vault (profile ciphertexts, secrets, DEK), end every session, drop the email's blind index
        (the customer row and its failed-login counter; the customer's own tables cascade from it),
        unlink its audit entries (which stay, naming brands' pairwise subjects only) and leave a bare
        tombstone.

        What others are owed or must do is not the customer's to erase: grants, value obligations and
        receipts stay (no foreign key to the customer), shown as of a deleted account."""
        customer_id = customer.id
        self.grants.revoke_all_for_customer(session, customer_id)
        self.audit.record(session, Kind.ACCOUNT_DELETED, actor=Actor.CUSTOMER)
        self.audit.forget_customer(session, customer_id)
        self.vault.shred(session, customer_id)
        session.exec(delete(CustomerSession).where(col(CustomerSession.customer_id) == customer_id))
        # The failed-login counter is keyed by the same blind index: it goes with the account row.
        session.exec(delete(LoginThrottle).where(col(LoginThrottle.token) == customer.email_index))
        session.delete(customer)
        session.add(AccountTombstone(customer_id=customer_id, deleted_at=self.clock()))
        session.flush()
        return customer_id
