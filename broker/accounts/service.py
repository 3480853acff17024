"""Account operations: sign up, log in and out, authenticate a session token, remove the account's rows."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, select, update

from broker.accounts.activity import ActivityKind, SecurityActivity
from broker.accounts.addresses import canonical, skeleton
from broker.accounts.devices import device_label
from broker.accounts.models import AccountTombstone, Customer, CustomerSession, LoginThrottle
from broker.accounts.passwords import Passwords, check_password
from broker.accounts.sessions import is_active
from broker.accounts.throttle import LoginKeys, Throttle, ThrottleKey, pair_token
from broker.digests import secret_digest
from broker.errors import EmailTakenUncounted, InvalidCredentials, NotAuthenticated, ValidationFailed
from vault.blind_index import blind_token
from vault.driver import DriverQuery
from vault.errors import ProfileInvalid
from vault.fields import validate_field
from vault.profile import Vault

TOKEN_PREFIX = "cst_"  # noqa: S105 - a prefix that makes leaked tokens recognisable, not a secret
# A session's last_seen_at moves at most this often: the idle timeout needs no write per request.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Built once: every customer request looks its session up, and building the statement (and its cache
# key) cost more than running it.
_SESSION_BY_TOKEN_HASH = select(CustomerSession).where(
    col(CustomerSession.token_hash) == bindparam("token_hash")
)


@dataclass(frozen=True, slots=True)
class LiveSession:
    """A live customer session as a read-only request needs it: its columns, read on the driver's
    cursor, not an ORM object. Every customer request looks its session up, and building the ORM
    `CustomerSession` cost most of the lookup: in process on SQLite, the dashboard behind a perfect
    cache (`bench/ceilings.py`) went from 341 to 207 µs of CPU. Nothing is cached: each request reads
    the row, so a session ended anywhere stops working at once."""

    id: UUID
    customer_id: UUID
    token_hash: bytes
    expires_at: datetime
    revoked_at: datetime | None
    authenticated_at: datetime
    second_factor: bool
    auth_method: str
    last_seen_at: datetime


_LIVE_SESSION_BY_TOKEN_HASH = DriverQuery(
    sa_select(*(col(getattr(CustomerSession, name)) for name in LiveSession.__dataclass_fields__)).where(
        col(CustomerSession.token_hash) == bindparam("token_hash")
    )
)


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
    idle_timeout: timedelta
    activity: SecurityActivity
    slowdown_after: int
    max_failures_pair: int
    max_failures_address: int
    account_slowdown_after: int
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]

    def email_token(self, email: str) -> bytes:
        """The blind-index token of an email address, in its canonical form (NFKC, case-folded)."""
        return blind_token(self.blind_key, "email", canonical(email))

    def skeleton_token(self, email: str) -> bytes:
        """The blind-index token of an address's look-alike skeleton (Unicode TS #39)."""
        return blind_token(self.blind_key, "email-skeleton", skeleton(email))

    def email_of(self, session: Session, customer_id: UUID) -> str | None:
        """The account's address, decrypted from its vault (None only while the account is deleted)."""
        email = self.vault.read_stored(session, customer_id, ["email"]).get("email")
        return email if isinstance(email, str) else None

    def normalise_email(self, email: str) -> str:
        """Validate an email the way the profile does; a bad one is a 422 on the `email` field."""
        try:
            value = validate_field("email", email)
        except ProfileInvalid as exc:
            message = exc.errors[0].message
            raise ValidationFailed(message, errors=[{"pointer": "/email", "detail": message}]) from None
        assert isinstance(value, str)
        return value

    def prepare(self, email: str, password: str) -> tuple[str, str]:
        """A would-be account's address (validated) and password hash (strength-checked, then hashed:
        the argon2id work every sign-up does, whatever happens next)."""
        email = self.normalise_email(email)
        check_password(password, user_inputs=[email, email.split("@")[0]])
        return email, self.passwords.hash(password)

    def holder(self, session: Session, email: str, *, besides: UUID | None = None) -> Customer | None:
        """The account whose address is `email`, or else one whose address looks like it (same
        skeleton); None when neither exists. `besides`: an account to leave out (the caller's own)."""
        index, look_alike = self.email_token(email), self.skeleton_token(email)
        others = [] if besides is None else [col(Customer.id) != besides]
        found = session.exec(select(Customer).where(Customer.email_index == index, *others)).first()
        if found is None:
            query = select(Customer).where(Customer.email_skeleton == look_alike, *others)
            found = session.exec(query.order_by(col(Customer.created_at))).first()
        return found

    def create(self, session: Session, email: str, password_hash: str, *, verified: bool = False) -> Customer:
        """A new account with its vault and its (encrypted) email; unverified unless `verified`."""
        now = self.clock()
        customer = Customer(
            email_index=self.email_token(email),
            email_skeleton=self.skeleton_token(email),
            email_verified_at=now if verified else None,
            password_hash=password_hash,
            created_at=now,
        )
        session.add(customer)
        session.flush()
        self.vault.create(session, customer.id)
        self.vault.write(session, customer.id, {"email": email}, replace=False)
        return customer

    def sign_up(self, session: Session, email: str, password: str, *, verified: bool = False) -> Customer:
        """Create an account directly (the demo, the operator); 409 when the address or a look-alike
        has one. Customers sign up through `broker.usecases.verification`, which never says so."""
        email, password_hash = self.prepare(email, password)
        if self.holder(session, email) is not None:
            raise EmailTakenUncounted("an account with this email (or one that looks like it) exists")
        return self.create(session, email, password_hash, verified=verified)

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
        customer = self.check_password_of(session, self._by_login(session, email), password, keys)
        self._index_as_now(session, customer, email)
        session.add(customer)
        return customer

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

    def _by_login(self, session: Session, email: str) -> Customer | None:
        found = session.exec(select(Customer).where(Customer.email_index == self.email_token(email))).first()
        if found is None:  # an account indexed before addresses were NFKC-normalised and case-folded
            legacy = blind_token(self.blind_key, "email", email)
            found = session.exec(select(Customer).where(Customer.email_index == legacy)).first()
        return found

    def reindex(self, session: Session, limit: int = 500) -> int:
        """Give up to `limit` accounts made before look-alike skeletons their indexes, from the address
        in their vault (`consentry accounts reindex-emails`); returns how many were done."""
        older = session.exec(
            select(Customer).where(col(Customer.email_skeleton).is_(None)).limit(limit)
        ).all()
        for customer in older:
            email = self.email_of(session, customer.id)
            assert email is not None  # an account always has its email
            self._index_as_now(session, customer, email)
            session.add(customer)
        session.flush()
        return len(older)

    def _index_as_now(self, session: Session, customer: Customer, email: str) -> None:
        """After a login (the one moment the address is in clear), bring an older account's indexes
        up to date: its canonical token and its look-alike skeleton."""
        index = self.email_token(email)
        if customer.email_index != index and self.holder(session, email, besides=customer.id) is None:
            customer.email_index = index
        if customer.email_skeleton is None:
            customer.email_skeleton = self.skeleton_token(email)

    def open_session(
        self,
        session: Session,
        customer_id: UUID,
        *,
        user_agent: str | None = None,
        kind: ActivityKind = ActivityKind.SIGN_IN,
        method: str = "password",
        second_factor: bool = False,
    ) -> IssuedSession:
        """A fresh session with a new random token (ids never carry over: login rotates them), which
        records how the customer authenticated (`method`, and whether with a second factor), recorded
        in the security activity as `kind` (or as a sign-in from a new device when it is one)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now, device = self.clock(), device_label(user_agent)
        new_device = self.activity.is_new_device(session, customer_id, device)
        row = CustomerSession(
            customer_id=customer_id,
            token_hash=secret_digest(token),
            created_at=now,
            expires_at=now + self.session_ttl,
            authenticated_at=now,
            second_factor=second_factor,
            auth_method=method,
            last_seen_at=now,
            device=device,
        )
        session.add(row)
        session.flush()
        recorded = ActivityKind.NEW_DEVICE if new_device else kind
        self.activity.record(session, customer_id, recorded, device=device, detail=method)
        return IssuedSession(session=row, token=token)

    def authenticate(self, session: Session, token: str) -> CustomerSession:
        """The live session behind a token, or NotAuthenticated (unknown, forged, revoked, past its
        absolute expiry, or idle too long). Notes when it was seen, at most once a minute, in `session`."""
        digest = secret_digest(token)
        row = session.exec(_SESSION_BY_TOKEN_HASH, params={"token_hash": digest}).first()
        self._check_live(row, digest)
        assert row is not None  # _check_live refused a missing row
        if self.seen_due(row):
            row.last_seen_at = self.clock()
            session.add(row)
        return row

    def live_session(self, session: Session, token: str) -> LiveSession:
        """`authenticate` without the write, as a record: for a read-only request, which notes the
        visit with `note_seen` in a transaction of its own when `seen_due` says so."""
        digest = secret_digest(token)
        found = _LIVE_SESSION_BY_TOKEN_HASH.first(session.connection(), {"token_hash": digest})
        row = None if found is None else LiveSession(*found)
        self._check_live(row, digest)
        assert row is not None  # _check_live refused a missing row
        return row

    def _check_live(self, row: CustomerSession | LiveSession | None, digest: bytes) -> None:
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise NotAuthenticated("the session token is not valid; log in again")
        if not is_active(row, self.clock(), self.idle_timeout):
            raise NotAuthenticated("the session has ended; log in again")

    def seen_due(self, row: CustomerSession | LiveSession) -> bool:
        """Whether the session's last-seen time is old enough to be written again."""
        return self.clock() - row.last_seen_at >= LAST_SEEN_RESOLUTION

    def note_seen(self, session: Session, session_id: UUID) -> None:
        """Move a session's last-seen time to now, unless another request already moved it as far
        (never backwards); the caller commits."""
        now = self.clock()
        session.exec(
            update(CustomerSession)
            .where(col(CustomerSession.id) == session_id, col(CustomerSession.last_seen_at) < now)
            .values(last_seen_at=now)
        )

    def log_out(self, session: Session, current: CustomerSession) -> None:
        """End a session server-side: its token stops working at once."""
        current.revoked_at = self.clock()
        session.add(current)
        session.flush()

    def replace_email(self, session: Session, customer: Customer, email: str) -> None:
        """Make a confirmed address the account's: its login, its profile email, verified now. 409
        when another account took the address, or one that looks like it, in the meantime."""
        if self.holder(session, email, besides=customer.id) is not None:
            raise EmailTakenUncounted(
                "another account now uses this address or one that looks like it; choose another"
            )
        customer.email_index, customer.email_skeleton = self.email_token(email), self.skeleton_token(email)
        customer.email_verified_at = self.clock()
        session.add(customer)
        self.vault.write(session, customer.id, {"email": email}, replace=False)
        self.activity.record(session, customer.id, ActivityKind.EMAIL_CHANGED)

    def remove(self, session: Session, customer: Customer) -> None:
        """The account's own rows go for good, the last step of deleting an account
        (`broker.usecases.account_deletion`): every session ends, the email's blind index goes with the
        customer row and its failed-login counter (the customer's own tables cascade from it), and a bare
        tombstone stays."""
        customer_id = customer.id
        session.exec(delete(CustomerSession).where(col(CustomerSession.customer_id) == customer_id))
        # The failed-login counter is keyed by the same blind index: it goes with the account row.
        session.exec(delete(LoginThrottle).where(col(LoginThrottle.token) == customer.email_index))
        session.delete(customer)
        session.add(AccountTombstone(customer_id=customer_id, deleted_at=self.clock()))
        session.flush()
