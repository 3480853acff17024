"""What can go wrong talking to Consentry, as one tree of exceptions::

    ConsentryError                 root: the message says what happened and what to do
    ├── ServerUnreachable          no HTTP answer at all: DNS, connection refused, timeout, TLS
    ├── MalformedResponse          a 2xx answer that breaks the API contract (not JSON, a missing field)
    │   ├── IncompatibleServer     the broker speaks no Consentry API version this SDK does: upgrade one
    │   └── SealedProfileRefused   a self-custody grant's sealed fields: not ours, or bound elsewhere
    ├── InvalidCallback            the authorization response failed a check: state, iss (RFC 9207), no code
    ├── OAuthError                 an RFC 6749 error: `error`, `description` (token endpoint, or the callback)
    │   └── RefreshRejected        invalid_grant on refresh: the grant ended, or the token was used twice
    ├── ProblemError               an RFC 9457 problem+json answer: `status`, `type`, `title`, `detail`
    │   ├── Unauthenticated        401 unauthenticated: a token the broker no longer accepts
    │   ├── Forbidden              403
    │   │   ├── InsufficientScope  403 insufficient-scope: the token lacks the scope the endpoint needs
    │   │   ├── GrantInactive      403 grant-revoked, -expired, -suspended (`grant_status`, `since`)
    │   │   ├── ValueOverdue       403 value-overdue: deliver `obligation_id` (due `due_at`) to read again
    │   │   └── PurposeNotGranted  403 purpose-not-granted: read for one of `granted` (the refusal is logged)
    │   ├── PurposeRequired        400 purpose-required: a grant of several purposes (`granted`): say which
    │   ├── NotFound               404 (another brand's grant is 404 too)
    │   ├── Conflict               409 (grant-state, offer-withdrawn, offer-superseded, value-settled …)
    │   ├── ValidationFailed       422 validation: `errors` lists `{pointer, detail}`
    │   ├── RateLimited            429 too-many-attempts: `retry_after` seconds
    │   └── ServiceUnavailable     503 unavailable: retry shortly
    └── WebhookVerificationError   a webhook that must not be trusted: bad signature, stale, malformed
        └── WebhookReplayed        a valid webhook whose id was seen before: answer 2xx, do not act twice

`ProblemError` subclasses are chosen by the problem's `type` (its last path segment, the slug), then by
status; any other problem is a plain `ProblemError` carrying every member in `extensions`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

__all__ = [
    "Conflict",
    "ConsentryError",
    "Forbidden",
    "GrantInactive",
    "IncompatibleServer",
    "InsufficientScope",
    "InvalidCallback",
    "MalformedResponse",
    "NotFound",
    "OAuthError",
    "ProblemError",
    "PurposeNotGranted",
    "PurposeRequired",
    "RateLimited",
    "RefreshRejected",
    "ServerUnreachable",
    "ServiceUnavailable",
    "Unauthenticated",
    "ValidationFailed",
    "ValueOverdue",
    "WebhookReplayed",
    "WebhookVerificationError",
]

PROBLEM_JSON = "application/problem+json"


class ConsentryError(Exception):
    """The root of the SDK's errors."""


class ServerUnreachable(ConsentryError):
    """The request got no HTTP answer (DNS, connection, timeout, TLS)."""


class MalformedResponse(ConsentryError):
    """A successful answer that does not follow the API contract."""


class IncompatibleServer(MalformedResponse):
    """The broker's metadata names no Consentry API version this SDK speaks (`server_versions`, maybe
    empty for a broker older than API versioning; `sdk_versions`): one of the two must be upgraded."""

    def __init__(self, message: str, *, server_versions: list[str], sdk_versions: list[str]) -> None:
        super().__init__(message)
        self.server_versions, self.sdk_versions = server_versions, sdk_versions


class InvalidCallback(ConsentryError):
    """The redirect back from the authorization endpoint must not be used: wrong state or issuer, no code."""


class OAuthError(ConsentryError):
    """An OAuth 2 error (RFC 6749 §5.2 from the token endpoint, §4.1.2.1 in the callback)."""

    def __init__(self, error: str, description: str | None = None, *, status: int | None = None) -> None:
        self.error, self.description, self.status = error, description, status
        super().__init__(f"{error}: {description}" if description else error)


class RefreshRejected(OAuthError):
    """The refresh token was refused. Either the grant ended (revoked, expired), or this refresh token
    had been used before: refresh tokens rotate, and presenting an old one revokes every token of the
    grant. Either way the brand must send the customer through consent again."""


class ProblemError(ConsentryError):
    """An RFC 9457 problem: `type` is stable, `detail` says what to do, `extensions` holds the rest."""

    def __init__(
        self,
        status: int,
        type: str,  # the RFC 9457 member's name
        title: str,
        detail: str = "",
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.status, self.type, self.title, self.detail = status, type, title, detail
        self.extensions: dict[str, Any] = dict(extensions or {})
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")

    @property
    def slug(self) -> str:
        """The last path segment of `type`, e.g. `grant-revoked`."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]

    def _text(self, name: str) -> str | None:
        value = self.extensions.get(name)
        return value if isinstance(value, str) else None


class Unauthenticated(ProblemError):
    """401: no token, or one that expired, was revoked or was not issued by this broker."""


class Forbidden(ProblemError):
    """403: the caller is known but may not do this."""


class InsufficientScope(Forbidden):
    """403: the token lacks the scope the endpoint needs (or is a brand token where a grant's is needed)."""


class GrantInactive(Forbidden):
    """403: the grant is revoked, expired or suspended; `since` says when it stopped."""

    @property
    def grant_id(self) -> str | None:
        """The grant's id."""
        return self._text("grant_id")

    @property
    def grant_status(self) -> str | None:
        """revoked, expired or suspended."""
        return self._text("grant_status")

    @property
    def since(self) -> datetime | None:
        """When the grant stopped being live."""
        since = self._text("since")
        return None if since is None else datetime.fromisoformat(since)


class PurposeNotGranted(Forbidden):
    """403: the grant does not cover the purpose read for (or the token is for another one)."""

    @property
    def granted(self) -> list[str]:
        """The purposes the grant covers."""
        found = self.extensions.get("granted")
        return [str(p) for p in found] if isinstance(found, list) else []


class PurposeRequired(ProblemError):
    """400: the grant covers several purposes; read with `purpose=` one of `granted`."""

    @property
    def granted(self) -> list[str]:
        """The purposes the grant covers."""
        found = self.extensions.get("granted")
        return [str(p) for p in found] if isinstance(found, list) else []


class ValueOverdue(Forbidden):
    """403: reads are suspended until the brand delivers the overdue obligation."""

    @property
    def obligation_id(self) -> str | None:
        """The obligation to deliver (`deliver_value(..., obligation_id=...)`)."""
        return self._text("obligation_id")

    @property
    def grant_id(self) -> str | None:
        """The suspended grant."""
        return self._text("grant_id")

    @property
    def due_at(self) -> datetime | None:
        """When the obligation fell due."""
        due = self._text("due_at")
        return None if due is None else datetime.fromisoformat(due)


class NotFound(ProblemError):
    """404: nothing here, or nothing this brand may see."""


class Conflict(ProblemError):
    """409: the request contradicts the current state (the slug says which)."""


class ValidationFailed(ProblemError):
    """422: well-formed input that is not acceptable."""

    @property
    def errors(self) -> list[dict[str, str]]:
        """Each problem: `{pointer, detail}` (a JSON pointer into the request body)."""
        errors = self.extensions.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


class RateLimited(ProblemError):
    """429: throttled."""

    @property
    def retry_after(self) -> int | None:
        """Seconds to wait, from the Retry-After header."""
        value = self.extensions.get("retry_after")
        return value if isinstance(value, int) else None


class ServiceUnavailable(ProblemError):
    """503: a dependency is briefly down; retry."""


class WebhookVerificationError(ConsentryError):
    """The webhook must not be trusted; answer 4xx and do not act on it."""


class WebhookReplayed(WebhookVerificationError):
    """The signature is valid but this message id was accepted before: the sender retried, or someone
    replays it. Acknowledge it (2xx) so retries stop, but do not act on it again."""

    def __init__(self, message: str, *, message_id: str) -> None:
        super().__init__(message)
        self.message_id = message_id


_BY_SLUG: dict[str, type[ProblemError]] = {
    "unauthenticated": Unauthenticated,
    "insufficient-scope": InsufficientScope,
    "grant-revoked": GrantInactive,
    "grant-expired": GrantInactive,
    "grant-suspended": GrantInactive,
    "value-overdue": ValueOverdue,
    "purpose-not-granted": PurposeNotGranted,
    "purpose-required": PurposeRequired,
    "validation": ValidationFailed,
    "too-many-attempts": RateLimited,
}
_BY_STATUS: dict[int, type[ProblemError]] = {
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def problem_from(response: httpx.Response) -> ProblemError:
    """The `ProblemError` subclass for an error answer: its problem+json if it is one, else the status."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    members = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail")}
    retry_after = response.headers.get("retry-after", "")
    if retry_after.isdigit():
        members.setdefault("retry_after", int(retry_after))
    type_ = body["type"] if isinstance(body.get("type"), str) else "about:blank"
    title = body["title"] if isinstance(body.get("title"), str) else response.reason_phrase
    detail = body["detail"] if isinstance(body.get("detail"), str) else ""
    slug = type_.rstrip("/").rsplit("/", 1)[-1]
    kind = _BY_SLUG.get(slug) or _BY_STATUS.get(response.status_code, ProblemError)
    return kind(response.status_code, type_, title, detail, members)


def oauth_error_from(response: httpx.Response, *, refreshing: bool = False) -> OAuthError:
    """The RFC 6749 §5.2 error of a token endpoint answer (`RefreshRejected` for invalid_grant on refresh)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return OAuthError(
            "server_error",
            f"the token endpoint answered {response.status_code} "
            f"{response.reason_phrase} without an OAuth error",
            status=response.status_code,
        )
    description = body.get("error_description")
    description = description if isinstance(description, str) else None
    if refreshing and body["error"] == "invalid_grant":
        why = (
            "the refresh token was refused: the grant has ended, or this refresh token was used before "
            "(refresh tokens rotate; reusing an old one revokes every token of the grant). "
            "Send the customer through consent again"
        )
        return RefreshRejected(
            "invalid_grant",
            f"{why} (server: {description})" if description else why,
            status=response.status_code,
        )
    return OAuthError(body["error"], description, status=response.status_code)
