"""Password policy and argon2id hashing (argon2-cffi)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from broker.errors import ValidationFailed

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 copes with more; this bounds the work one request can ask for
_STRENGTH_CHECK_CHARS = 64  # zxcvbn is super-linear in length; a longer prefix adds nothing here


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, user_inputs: list[str]) -> str | None:
    """Why this password is refused, or None when it is acceptable (NIST SP 800-63B style)."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters long"
    if password.lower() in _common_passwords():
        return "this password is on a list of commonly used passwords; choose another"
    result = zxcvbn(password[:_STRENGTH_CHECK_CHARS], user_inputs=user_inputs)
    if result["score"] < 3:
        hint = result["feedback"]["warning"] or "it follows a common pattern"
        return f"this password is too easy to guess ({hint.rstrip('.').lower()}); try a longer passphrase"
    return None


def check_password(password: str, *, user_inputs: list[str]) -> None:
    """Raise ValidationFailed naming the password field when the policy refuses it."""
    problem = password_problem(password, user_inputs=user_inputs)
    if problem:
        raise ValidationFailed(problem, errors=[{"pointer": "/password", "detail": problem}])


@dataclass(slots=True)
class Passwords:
    """argon2id hashing with configurable cost and a constant-work path for unknown accounts."""

    time_cost: int
    memory_kib: int
    parallelism: int
    _hasher: PasswordHasher = field(init=False)
    _dummy: str = field(init=False)

    def __post_init__(self) -> None:
        self._hasher = PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism, type=Type.ID
        )
        # Verifying against this when the account does not exist costs what a real check costs.
        self._dummy = self._hasher.hash("consentry-dummy-password")

    def hash(self, password: str) -> str:
        """An argon2id PHC string for the password."""
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; with `stored=None` it does the same work and fails."""
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when the hash was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored)
