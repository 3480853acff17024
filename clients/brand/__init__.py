"""The brand SDK: typed sync and async clients for Consentry's OAuth flow and brand API, and the
webhook verifier. It imports httpx, pydantic and the standard library only.

- `client` / `async_client`: `ConsentryClient` and `AsyncConsentryClient`, the same methods, blocking or
  awaitable: discovery (RFC 8414), the authorization URL (PKCE S256, state) and its callback (state and
  RFC 9207 `iss` checked), the code exchange, refresh before expiry and after a 401, profile reads,
  offers, grants, value deliveries, dispute answers and escalations, acknowledgements of a grant's
  end, deletion attestations and the brand's access log.
- `protocol` and `endpoints`: the sans-I/O core both clients share (every request built and every
  answer read in one place).
- `authorization`: PKCE and the callback checks; `tokens`: `TokenSet` and `GrantSession`.
- `models`: the typed answers; `errors`: the exception tree (drawn in its docstring).
- `sealed`: the profiles of self-custody grants, sealed to the brand (JWE): `DecryptionKeys` opens
  them (`decryption_keys=` of the clients; joserfc, the `self-custody` extra), and every binding is
  checked (`SealedProfileRefused`).
- `webhooks`: `verify_webhook` (Standard Webhooks v1: signatures, timestamps, replays).
- `versions`: `__version__` (this release) and `API_VERSIONS`, the broker API versions the SDK speaks;
  a broker that serves none of them is refused at discovery with `IncompatibleServer`.
  `python -m clients.brand --version` prints both; `python -m clients.brand check URL` asks a broker.
"""

from clients.brand.async_client import AsyncConsentryClient
from clients.brand.authorization import AuthorizationRequest
from clients.brand.client import ConsentryClient
from clients.brand.errors import (
    Conflict,
    ConsentryError,
    Forbidden,
    GrantInactive,
    IncompatibleServer,
    InsufficientScope,
    InvalidCallback,
    MalformedResponse,
    NotFound,
    OAuthError,
    ProblemError,
    PurposeNotGranted,
    PurposeRequired,
    RateLimited,
    RefreshRejected,
    ServerUnreachable,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
    ValueOverdue,
    WebhookReplayed,
    WebhookVerificationError,
)
from clients.brand.models import (
    AccessLogPage,
    Acknowledgement,
    Contact,
    Decision,
    DeletionAttestation,
    Delivery,
    Dispute,
    Escalation,
    Grant,
    GrantPage,
    GrantTicket,
    LoggedEntry,
    Obligation,
    Offer,
    OfferPage,
    Preferences,
    PreferencesRead,
    Profile,
    QuietHours,
    Rating,
    RatingPage,
    ServerMetadata,
)
from clients.brand.protocol import BRAND_SCOPES
from clients.brand.sealed import DecryptionKeys, SealedProfileRefused
from clients.brand.tokens import GrantSession, TokenSet
from clients.brand.versions import API_VERSIONS
from clients.brand.versions import RELEASE as __version__  # noqa: N811 (the dunder PEP 396 names)
from clients.brand.webhooks import (
    MemoryReplayCache,
    ReplayCache,
    WebhookEvent,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "API_VERSIONS",
    "BRAND_SCOPES",
    "AccessLogPage",
    "Acknowledgement",
    "AsyncConsentryClient",
    "AuthorizationRequest",
    "Conflict",
    "ConsentryClient",
    "ConsentryError",
    "Contact",
    "Decision",
    "DecryptionKeys",
    "DeletionAttestation",
    "Delivery",
    "Dispute",
    "Escalation",
    "Forbidden",
    "Grant",
    "GrantInactive",
    "GrantPage",
    "GrantSession",
    "GrantTicket",
    "IncompatibleServer",
    "InsufficientScope",
    "InvalidCallback",
    "LoggedEntry",
    "MalformedResponse",
    "MemoryReplayCache",
    "NotFound",
    "OAuthError",
    "Obligation",
    "Offer",
    "OfferPage",
    "Preferences",
    "PreferencesRead",
    "ProblemError",
    "Profile",
    "PurposeNotGranted",
    "PurposeRequired",
    "QuietHours",
    "RateLimited",
    "Rating",
    "RatingPage",
    "RefreshRejected",
    "ReplayCache",
    "SealedProfileRefused",
    "ServerMetadata",
    "ServerUnreachable",
    "ServiceUnavailable",
    "TokenSet",
    "Unauthenticated",
    "ValidationFailed",
    "ValueOverdue",
    "WebhookEvent",
    "WebhookReplayed",
    "WebhookVerificationError",
    "__version__",
    "sign_webhook",
    "verify_webhook",
]
