"""Signing in with more than a password: second factors, passkey logins, and step-up.

    password ──ok──▶ no factor enrolled ──────────────────────────▶ session (password)
              └───▶ factor enrolled ──▶ pending (mfa_token, 5 min, single use)
                                         └─ TOTP / recovery code / passkey ─▶ session (second factor)
    passkey alone (usernameless) ─────────────────────────────────▶ session (passkey = second factor)

A session records when and how its customer last proved who they are (`authenticated_at`,
`second_factor`). Sensitive actions need that proof to be recent (`step_up_max_age`) and, when the
account has a second factor, to have used it; `reauthenticate` renews it without a new session.

Throttling (`broker.accounts.throttle`): a wrong second factor counts against the (account, address)
pair and the address, like a wrong password, and five wrong answers void a pending login. Nothing
here waits for the account-wide counter: that one only slows password guesses, so an attacker's
burst cannot keep the owner's passkey or second factor out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlmodel import Session

from broker.accounts.activity import ActivityKind
from broker.accounts.challenges import Challenges, Purpose, challenge_digest
from broker.accounts.devices import device_label
from broker.accounts.factor_models import LoginChallenge
from broker.accounts.models import Customer, CustomerSession
from broker.accounts.passkeys import Passkeys, PasskeyView, parse_assertion
from broker.accounts.recovery_codes import RecoveryCodes
from broker.accounts.service import Accounts, IssuedSession
from broker.accounts.totp import CodeRefused, Totp, TotpEnrolment
from broker.errors import (
    EmailUnverified,
    InvalidCredentials,
    NoSecondFactor,
    NotAuthenticated,
    NotFound,
    PasskeyRefused,
    ReauthenticationRequired,
    SecondFactorRefused,
    ValidationFailed,
)

MAX_SECOND_FACTOR_FAILURES = 5
REAUTHENTICATE_PATH = "/v1/sessions/current/reauthenticate"


@dataclass(frozen=True, slots=True)
class SecondFactorRequired:
    """A correct password on an account with a second factor: what the client must send next."""

    mfa_token: str
    expires_at: datetime
    methods: list[str]
    passkey_options: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Proof:
    """What a client sends to prove a second factor; exactly one is set."""

    code: str | None = None
    recovery_code: str | None = None
    credential: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        """Which kind of second factor this is, as the activity list names it."""
        if self.code is not None:
            return "authenticator app"
        return "recovery code" if self.recovery_code is not None else "passkey"

    def check_one(self) -> None:
        """422 unless exactly one way is given."""
        given = [self.code, self.recovery_code, self.credential]
        if sum(value is not None for value in given) != 1:
            detail = (
                "send exactly one of `code` (authenticator app), `recovery_code` or `credential` (passkey)"
            )
            raise ValidationFailed(detail, errors=[{"pointer": "", "detail": detail}])


@dataclass(frozen=True, slots=True)
class SignIn:
    """Login ceremonies over `Accounts` and the second factors."""

    accounts: Accounts
    challenges: Challenges
    passkeys: Passkeys
    totp: Totp
    recovery: RecoveryCodes
    step_up_max_age: timedelta
    clock: Callable[[], datetime]

    def methods(self, session: Session, customer_id: UUID) -> list[str]:
        """The second factors the customer can use now (empty: none enrolled)."""
        methods = []
        if self.passkeys.count(session, customer_id):
            methods.append("passkey")
        if self.totp.enabled(session, customer_id):
            methods.append("totp")
        if methods and self.recovery.remaining(session, customer_id):
            methods.append("recovery_code")
        return methods

    def has_second_factor(self, session: Session, customer_id: UUID) -> bool:
        """True when the customer has a passkey or a confirmed authenticator app."""
        return bool(self.passkeys.count(session, customer_id) or self.totp.enabled(session, customer_id))

    def log_in(
        self, session: Session, email: str, password: str, *, address: str, user_agent: str | None = None
    ) -> IssuedSession | SecondFactorRequired:
        """The password step: a session, or a pending login when a second factor is enrolled.
        `user_agent` names the device in the security activity (a coarse label, never the header)."""
        customer = self.accounts.verify_password(session, email, password, address=address)
        outcome = self.first_factor_passed(session, customer.id, user_agent=user_agent)
        if isinstance(outcome, IssuedSession):
            self.accounts.throttle.clear(
                session, self.accounts.login_keys(customer.email_index, address).pair
            )
        return outcome

    def first_factor_passed(
        self,
        session: Session,
        customer_id: UUID,
        *,
        user_agent: str | None = None,
        kind: ActivityKind = ActivityKind.SIGN_IN,
        method: str = "password",
    ) -> IssuedSession | SecondFactorRequired:
        """After a first factor (a password, an emailed sign-in link): the session, or, when a second
        factor is set up, a pending login that asks for it (a mailbox alone never passes a second
        factor)."""
        methods = self.methods(session, customer_id)
        if not methods:
            return self.accounts.open_session(
                session, customer_id, user_agent=user_agent, kind=kind, method=method
            )
        issued = self.challenges.issue(
            session, Purpose.SECOND_FACTOR, customer_id=customer_id, with_token=True, with_challenge=False
        )
        assert issued.token is not None
        return self._pending(session, issued.row, issued.token, methods)

    def pending(self, session: Session, mfa_token: str) -> SecondFactorRequired:
        """A live pending login again (with a new passkey challenge), to ask once more."""
        row = self.challenges.by_token(session, Purpose.SECOND_FACTOR, mfa_token)
        assert row.customer_id is not None
        return self._pending(session, row, mfa_token, self.methods(session, row.customer_id))

    def _pending(
        self, session: Session, row: LoginChallenge, token: str, methods: list[str]
    ) -> SecondFactorRequired:
        options = None
        if "passkey" in methods:
            assert row.customer_id is not None
            allowed = self.passkeys.allowed(session, row.customer_id)
            options = self.passkeys.authentication_options(self.challenges.renew(session, row), allowed)
        return SecondFactorRequired(token, row.expires_at, methods, options)

    def complete(
        self, session: Session, mfa_token: str, proof: Proof, *, address: str, user_agent: str | None = None
    ) -> IssuedSession:
        """The second step of a pending login: one correct second factor opens the session."""
        proof.check_one()
        pending = self.challenges.by_token(session, Purpose.SECOND_FACTOR, mfa_token)
        customer = session.get(Customer, pending.customer_id)
        if customer is None:
            raise NotAuthenticated("this account no longer exists")
        keys = self.accounts.login_keys(customer.email_index, address)
        self.accounts.throttle.check_not_locked(session, keys.lockable)
        # Wrong second factors from all addresses together slow this step down (never lock it): one
        # guess per address must not make guessing codes free for someone who has the password.
        if delay := self.accounts.throttle.delay_before_attempt(session, [keys.account]):
            self.accounts.sleep(delay)
        if proof.credential is not None:
            _, challenge = parse_assertion(proof.credential)
            if pending.challenge_hash is None or challenge_digest(challenge) != pending.challenge_hash:
                self.challenges.discard(session, pending)
                raise PasskeyRefused(
                    "this passkey answer is for another challenge; start again with your password"
                )
        try:
            method = self._second_factor(session, customer, proof)
        except InvalidCredentials:
            pending.failures += 1
            if pending.failures >= MAX_SECOND_FACTOR_FAILURES:
                self.challenges.discard(session, pending)
            else:
                session.add(pending)
            self.accounts.throttle.record_failure(session, [*keys.lockable, keys.account])
            self.accounts.activity.record(
                session,
                customer.id,
                ActivityKind.SECOND_FACTOR_FAILED,
                device=device_label(user_agent),
                detail=proof.method,
            )
            raise
        self.challenges.discard(session, pending)
        self.accounts.throttle.clear(session, keys.pair)
        return self.accounts.open_session(
            session, customer.id, user_agent=user_agent, method=method, second_factor=True
        )

    def _second_factor(self, session: Session, customer: Customer, proof: Proof) -> str:
        """Check one proof for the customer; the method's name, or InvalidCredentials."""
        if proof.code is not None:
            try:
                self.totp.check(session, customer.id, proof.code)
            except CodeRefused as exc:
                raise SecondFactorRefused(exc.detail) from None
            return "password+totp"
        if proof.recovery_code is not None:
            if not self.recovery.use(session, customer.id, proof.recovery_code):
                raise SecondFactorRefused("this recovery code is wrong or was already used")
            return "password+recovery"
        assert proof.credential is not None
        parsed, challenge = parse_assertion(proof.credential)
        self.passkeys.verify(session, parsed, challenge, customer_id=customer.id)
        return "password+passkey"

    def passkey_options(self, session: Session) -> dict[str, Any]:
        """Options for a usernameless passkey login (no allowCredentials)."""
        return self.passkeys.authentication_options(self.challenges.issue(session, Purpose.PASSKEY_LOGIN))

    def passkey_log_in(
        self, session: Session, credential: dict[str, Any], *, user_agent: str | None = None
    ) -> IssuedSession:
        """Log in with a passkey alone: the challenge is used up, the signature and counter checked."""
        parsed, challenge = parse_assertion(credential)
        self.challenges.take(session, Purpose.PASSKEY_LOGIN, challenge)
        passkey = self.passkeys.verify(session, parsed, challenge)
        return self.accounts.open_session(
            session, passkey.customer_id, user_agent=user_agent, method="passkey", second_factor=True
        )

    def reauthenticate_options(self, session: Session, current: CustomerSession) -> dict[str, Any]:
        """Options for proving it is still the customer with one of their passkeys."""
        issued = self.challenges.issue(
            session, Purpose.REAUTHENTICATE, customer_id=current.customer_id, session_id=current.id
        )
        return self.passkeys.authentication_options(
            issued, self.passkeys.allowed(session, current.customer_id)
        )

    def reauthenticate(
        self, session: Session, current: CustomerSession, password: str | None, proof: Proof, *, address: str
    ) -> CustomerSession:
        """Renew the session's proof: a passkey, or the password (with a second factor when enrolled)."""
        customer = session.get(Customer, current.customer_id)
        if customer is None:
            raise NotAuthenticated("this account no longer exists")
        keys = self.accounts.login_keys(customer.email_index, address)
        if proof.credential is not None:  # a passkey proves both factors; its challenge must be ours
            parsed, challenge = parse_assertion(proof.credential)
            self.challenges.take(
                session, Purpose.REAUTHENTICATE, challenge, customer_id=customer.id, session_id=current.id
            )
            self.passkeys.verify(session, parsed, challenge, customer_id=customer.id)
            return self._renew(session, current, "passkey", second_factor=True)
        if password is None:
            detail = (
                "send `password` (with `code` or `recovery_code` if you set up a second factor), "
                "or a passkey `credential`"
            )
            raise ValidationFailed(detail, errors=[{"pointer": "/password", "detail": detail}])
        self.accounts.check_password_of(session, customer, password, keys)
        if not self.has_second_factor(session, customer.id):
            self.accounts.throttle.clear(session, keys.pair)
            return self._renew(session, current, "password", second_factor=False)
        proof.check_one()
        self.accounts.throttle.check_not_locked(session, keys.lockable)
        try:
            method = self._second_factor(session, customer, proof)
        except InvalidCredentials:
            self.accounts.throttle.record_failure(session, keys.lockable)
            raise
        self.accounts.throttle.clear(session, keys.pair)
        return self._renew(session, current, method, second_factor=True)

    def _renew(
        self, session: Session, current: CustomerSession, method: str, *, second_factor: bool
    ) -> CustomerSession:
        current.authenticated_at, current.auth_method = self.clock(), method
        current.second_factor = second_factor
        session.add(current)
        session.flush()
        return current

    def require_fresh(self, session: Session, current: CustomerSession) -> None:
        """403 `reauthentication-required` unless the session proved itself recently enough (and with
        its second factor, when the account has one)."""
        recent = self.clock() - current.authenticated_at <= self.step_up_max_age
        strong = current.second_factor or not self.has_second_factor(session, current.customer_id)
        if recent and strong:
            return
        minutes = int(self.step_up_max_age.total_seconds() // 60)
        enrolled = self.has_second_factor(session, current.customer_id)
        need = "your password and second factor, or a passkey" if enrolled else "your password"
        raise ReauthenticationRequired(
            f"this needs a sign-in from the last {minutes} minutes; confirm it is you with {need} "
            f"(POST {REAUTHENTICATE_PATH}) and try again",
            reauthenticate=REAUTHENTICATE_PATH,
            methods=["password", *self.methods(session, current.customer_id)],
        )

    def account_name(self, session: Session, customer_id: UUID) -> str:
        """What authenticators show for this account: its email (read from the vault)."""
        return self.accounts.email_of(session, customer_id) or "Consentry account"

    def passkey_registration_options(self, session: Session, current: CustomerSession) -> dict[str, Any]:
        """Options for adding a passkey to the current session's account (its address confirmed)."""
        self._require_confirmed_address(session, current.customer_id)
        name = self.account_name(session, current.customer_id)
        return self.passkeys.registration_options(session, current.customer_id, current.id, name)

    # Every change to the second factors goes into the customer's security activity (and so, through
    # its listeners, to the owner's mailbox): a factor quietly added or removed is an attack's mark.

    def add_passkey(
        self, session: Session, current: CustomerSession, name: str, credential: dict[str, Any]
    ) -> PasskeyView:
        """Keep a new passkey that answers this session's registration challenge."""
        self._require_confirmed_address(session, current.customer_id)
        view = self.passkeys.register(session, current.customer_id, current.id, name, credential)
        self._factor_changed(session, current, ActivityKind.FACTOR_ADDED, "passkey")
        return view

    def remove_passkey(self, session: Session, current: CustomerSession, passkey_id: UUID) -> None:
        """Remove a passkey (the caller has checked step-up)."""
        self.passkeys.remove(session, current.customer_id, passkey_id)
        self._forget_codes_without_factor(session, current.customer_id)
        self._factor_changed(session, current, ActivityKind.FACTOR_REMOVED, "passkey")

    def remove_totp(self, session: Session, current: CustomerSession) -> None:
        """Remove the authenticator app (the caller has checked step-up); 404 when there is none."""
        if not self.totp.remove(session, current.customer_id):
            raise NotFound("no authenticator app is set up")
        self._forget_codes_without_factor(session, current.customer_id)
        self._factor_changed(session, current, ActivityKind.FACTOR_REMOVED, "authenticator app")

    def start_totp(self, session: Session, current: CustomerSession) -> TotpEnrolment:
        """Start setting up an authenticator app for the account (its address confirmed)."""
        self._require_confirmed_address(session, current.customer_id)
        return self.totp.start(session, current.customer_id, self.account_name(session, current.customer_id))

    def confirm_totp(self, session: Session, current: CustomerSession, code: str) -> list[str]:
        """Finish setting up the app; the first recovery codes come with it (none if some remain)."""
        customer_id = current.customer_id
        self._require_confirmed_address(session, customer_id)
        self.totp.confirm(session, customer_id, code)
        self._factor_changed(session, current, ActivityKind.FACTOR_ADDED, "authenticator app")
        if self.recovery.remaining(session, customer_id):
            return []
        return self.recovery.regenerate(session, customer_id)

    def regenerate_recovery_codes(self, session: Session, current: CustomerSession) -> list[str]:
        """A new set of recovery codes; 409 without a second factor (they would open nothing)."""
        if not self.has_second_factor(session, current.customer_id):
            raise NoSecondFactor(
                "recovery codes stand in for a second factor; set up a passkey or an authenticator app first"
            )
        codes = self.recovery.regenerate(session, current.customer_id)
        self._factor_changed(session, current, ActivityKind.FACTOR_ADDED, "new recovery codes")
        return codes

    def _require_confirmed_address(self, session: Session, customer_id: UUID) -> None:
        # Someone who signed up with another person's address must not be able to hold the account
        # with factors of their own once the owner takes the address back (by a reset).
        customer = session.get(Customer, customer_id)
        if customer is None or customer.email_verified_at is None:
            raise EmailUnverified(
                "confirm your email address before adding a passkey or an authenticator app: use the code "
                "we sent, or ask for a new one (POST /v1/me/email/verification)",
            )

    def _factor_changed(
        self, session: Session, current: CustomerSession, kind: ActivityKind, factor: str
    ) -> None:
        self.accounts.activity.record(
            session, current.customer_id, kind, device=current.device, detail=factor
        )

    def _forget_codes_without_factor(self, session: Session, customer_id: UUID) -> None:
        if not self.has_second_factor(session, customer_id):
            self.recovery.delete_all(session, customer_id)
