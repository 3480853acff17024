"""Domain errors and their RFC 9457 problem types.

    BrokerError                       root: carries a problem type, a title, an HTTP status and a detail
    ├── MalformedRequest      400     the body is not valid JSON (or not JSON at all); an unparsable parameter
    ├── CodeRejected          400     an emailed code that is unknown (invalid-code), used or expired
    ├── NotAuthenticated      401     no credentials, or an expired, revoked or forged token
    ├── InvalidCredentials    401     wrong email or password (one answer for both: no enumeration)
    ├── Forbidden             403     authenticated, but not allowed to do this
    ├── NotFound              404     nothing here, or nothing this caller may see
    ├── Conflict              409     the request contradicts what exists (e.g. email-taken)
    ├── RequestTooLarge       413     the body is over the configured limit
    ├── ValidationFailed      422     the input is well-formed but not acceptable; `errors` says where
    │   └── WrongPassword     422     the current password given to change it is wrong (counted: throttled)
    ├── TooManyAttempts       429     throttled; `retry_after` says when to try again
    └── ServiceUnavailable    503     a dependency (the database) is down for a moment
    DatabaseNotMigrated               start-up refusal: the schema is not the newest (not an HTTP error)

Vault errors (`vault.errors`) are mapped onto these types by `broker.web.problems`.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://consentry.dev/problems/"


class BrokerError(Exception):
    """Root of the broker's errors; each subclass is one problem type."""

    slug: str = "internal"  # instances may override (one class, several problem types, e.g. email-taken)
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500
    # True for errors that answer a request whose bookkeeping must still be committed (throttle counts).
    keeps_changes: ClassVar[bool] = False

    def __init__(self, detail: str, *, slug: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if slug is not None:
            self.slug = slug
        self.extensions = extensions

    @property
    def type_uri(self) -> str:
        """The stable problem `type` URI of this error."""
        return PROBLEM_BASE + self.slug


class MalformedRequest(BrokerError):
    """The request body, or a parameter the auditor API needs as a number, could not be parsed."""

    slug, title, status = "malformed-request", "Malformed request", 400


class CodeRejected(BrokerError):
    """An emailed one-time code that does not work: `invalid-code`, `code-used` or `code-expired`.
    Its bookkeeping (the wrong-code count) is kept."""

    slug, title, status = "invalid-code", "Code not accepted", 400
    keeps_changes = True


class NotAuthenticated(BrokerError):
    """Missing, expired, revoked or forged credentials."""

    slug, title, status = "unauthenticated", "Authentication required", 401


class InvalidCredentials(BrokerError):
    """Wrong email or password, deliberately indistinguishable."""

    slug, title, status = "invalid-credentials", "Invalid credentials", 401
    keeps_changes = True


class Forbidden(BrokerError):
    """The caller is known but may not do this."""

    slug, title, status = "forbidden", "Forbidden", 403


class NotFound(BrokerError):
    """No such resource for this caller."""

    slug, title, status = "not-found", "Not found", 404


class Conflict(BrokerError):
    """The request conflicts with the current state."""

    slug, title, status = "conflict", "Conflict", 409


class AddressTaken(Conflict):
    """A change of address to one another account has (`email-taken`) or looks like
    (`email-lookalike`). The attempt's count is kept: refusals would otherwise tell a prober, for
    free, which addresses have accounts."""

    slug = "email-taken"
    keeps_changes = True


class RequestTooLarge(BrokerError):
    """The body is over the limit."""

    slug, title, status = "request-too-large", "Request body too large", 413


class ValidationFailed(BrokerError):
    """Well-formed input that is not acceptable; `errors` lists each problem with a JSON pointer."""

    slug, title, status = "validation", "Invalid input", 422


class WrongPassword(ValidationFailed):
    """The current password, asked for before changing it, is wrong; the failure is counted."""

    slug = "wrong-password"
    keeps_changes = True


class TooManyAttempts(BrokerError):
    """Throttled; `retry_after` is in seconds."""

    slug, title, status = "too-many-attempts", "Too many attempts", 429
    keeps_changes = True

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ServiceUnavailable(BrokerError):
    """A dependency is briefly unavailable; clients should retry."""

    slug, title, status = "unavailable", "Service unavailable", 503


class DatabaseNotMigrated(Exception):
    """The database schema is behind the code; the message says which command to run."""
