"""Changing a password: the current one first, today's strength rules for the new one, and every other
session ends (whoever else was in is out; the session that changed it stays).

Wrong current passwords are counted per account under the login throttle's rules (a blind token of the
customer id, its own purpose): a stolen session cookie cannot be used to guess the password at leisure.
Setting a password without the current one (a reset) is `set_password`, for the recovery flow.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from broker.accounts.activity import ActivityKind, SecurityActivity
from broker.accounts.models import Customer, CustomerSession
from broker.accounts.passwords import Passwords, password_problem
from broker.accounts.sessions import CustomerSessions
from broker.accounts.throttle import Throttle, ThrottleKey
from broker.errors import NotAuthenticated, ValidationFailed, WrongPassword
from vault.blind_index import blind_token
from vault.profile import Vault

__all__ = ["PasswordChanges"]


@dataclass(frozen=True, slots=True)
class PasswordChanges:
    """Change (with the current password) or set (after a reset) a customer's password."""

    passwords: Passwords
    throttle: Throttle
    sessions: CustomerSessions
    activity: SecurityActivity
    vault: Vault
    blind_key: bytes
    max_failures: int

    def change(
        self, session: Session, current: CustomerSession, *, current_password: str, new_password: str
    ) -> int:
        """Check the current password, set the new one, end every other session; returns how many
        sessions ended. A wrong current password is a 422 on `/current_password`, counted."""
        customer = session.get(Customer, current.customer_id)
        if customer is None:
            raise NotAuthenticated("this account no longer exists")
        key = ThrottleKey(
            blind_token(self.blind_key, "password-change", str(customer.id)),
            slowdown_after=self.max_failures,  # no slow-down: a lock after max_failures is enough here
            max_failures=self.max_failures,
        )
        self.throttle.limit(session, key, "too many wrong current passwords", count=False)
        if not self.passwords.verify(customer.password_hash, current_password):
            self.throttle.record_failure(session, [key])
            detail = "the current password is wrong; type the password you log in with now"
            raise WrongPassword(detail, errors=[{"pointer": "/current_password", "detail": detail}])
        if current_password == new_password:
            detail = "the new password is the one you have now; choose a different one"
            raise ValidationFailed(detail, errors=[{"pointer": "/new_password", "detail": detail}])
        self.set_password(session, customer, new_password, pointer="/new_password")
        self.throttle.clear(session, key)
        ended = self.sessions.revoke_others(session, customer.id, keep=current.id)
        self.activity.record(session, customer.id, ActivityKind.PASSWORD_CHANGED, device=current.device)
        return ended

    def set_password(
        self, session: Session, customer: Customer, password: str, *, pointer: str = "/password"
    ) -> None:
        """Store a new password after checking it against the strength rules (422 at `pointer`)."""
        email = self.vault.read(session, customer.id, ["email"]).get("email")
        hints = [email, email.split("@")[0]] if isinstance(email, str) else []
        problem = password_problem(password, user_inputs=hints)
        if problem:
            raise ValidationFailed(problem, errors=[{"pointer": pointer, "detail": problem}])
        customer.password_hash = self.passwords.hash(password)
        session.add(customer)
        session.flush()
