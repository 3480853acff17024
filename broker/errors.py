"""Domain errors and their RFC 9457 problem types: one class per type, all of them in this module.

    BrokerError                               root: a problem type (slug, title, status) and a detail
    ├── MalformedRequest              400     malformed-request
    ├── CodeRejected                  400     invalid-code (wrong ones counted; catch it for all three)
    │   ├── CodeUsed                  400     code-used
    │   └── CodeExpired               400     code-expired
    ├── AuditRangeError               400     audit-range
    ├── PurposeRequired               400     purpose-required
    ├── NotAuthenticated              401     unauthenticated
    │   ├── LoginStepExpired          401     login-step-expired
    │   └── ChallengeInvalid          401     challenge-invalid
    ├── InvalidCredentials            401     invalid-credentials (counted)
    │   ├── PasskeyRefused            401     passkey-refused
    │   └── SecondFactorRefused       401     second-factor-refused
    ├── Forbidden                     403     (a group: no type of its own)
    │   ├── CrossSiteRefused          403     csrf
    │   ├── InsufficientScope         403     insufficient-scope
    │   ├── ReauthenticationRequired  403     reauthentication-required
    │   ├── EmailUnverified           403     email-unverified
    │   ├── GrantSuspended            403     grant-suspended
    │   ├── GrantRevoked              403     grant-revoked
    │   │   └── RevokedReadCounted    403     grant-revoked, the attempt counted (a brand's read)
    │   ├── GrantExpired              403     grant-expired
    │   │   └── ExpiredReadCounted    403     grant-expired, the attempt counted (a brand's read)
    │   ├── PurposeNotGranted         403     purpose-not-granted (the refused read is logged)
    │   ├── ReconfirmationDue         403     grant-reconfirmation-due
    │   └── ValueOverdue              403     value-overdue (the suspension is kept)
    ├── NotFound                      404     not-found
    │   └── DeletionNotAttested       404     deletion-not-attested
    ├── MethodNotAllowed              405     method-not-allowed
    ├── Conflict                      409     conflict
    │   ├── EmailTaken                409     email-taken (counted)
    │   │   ├── EmailLookalike        409     email-lookalike
    │   │   └── EmailTakenUncounted   409     email-taken, nothing of the attempt kept
    │   ├── EmailAlreadyVerified      409     email-already-verified
    │   ├── PasskeyExists             409     passkey-exists
    │   ├── TotpEnrolled              409     totp-enrolled
    │   ├── NoSecondFactor            409     no-second-factor
    │   ├── IllegalTransition         409     grant-state
    │   ├── GrantEnded                409     grant-ended
    │   ├── GrantNotEnded             409     grant-not-ended
    │   ├── RenewalNotOpen            409     renewal-not-open
    │   ├── DeletionAlreadyAttested   409     deletion-already-attested
    │   ├── OfferWithdrawn            409     offer-withdrawn
    │   ├── OfferSuperseded           409     offer-superseded
    │   ├── ValueSettled              409     value-settled
    │   ├── EndAlreadyAcknowledged    409     end-already-acknowledged
    │   ├── DisputeNotReady           409     dispute-not-ready
    │   ├── DisputeDecided            409     dispute-decided
    │   ├── NotDeclinable             409     grant-not-declinable
    │   ├── ProfileHeld               409     profile-held (self-custody: only the owner's browser opens it)
    │   ├── ProfileNotHeld            409     profile-not-held (the broker holds the profile's key)
    │   ├── GrantsUnsealable          409     grants-unsealable (a brand without an encryption key)
    │   └── SealedCopyMissing         409     sealed-copy-missing
    ├── RequestTooLarge               413     request-too-large
    ├── ValidationFailed              422     validation
    │   ├── WrongPassword             422     wrong-password (counted)
    │   └── EmailChangeNeedsVerification 422  email-change-needs-verification
    ├── TooManyAttempts               429     too-many-attempts (counted)
    ├── Internal                      500     internal
    │   ├── VaultFailed               500     vault
    │   ├── VaultGone                 500     vault-gone
    │   ├── IntegrityFailed           500     integrity
    │   └── AuditIntegrityError       500     audit-integrity
    └── ServiceUnavailable            503     unavailable
        ├── ReadNotRecorded           503     read-not-recorded
        └── DeletionReceiptPending    503     deletion-receipt-pending (the deletion itself is done)
    DatabaseNotMigrated                       start-up refusal: the schema is behind (not an HTTP error)

"(counted)": the error `keeps_changes`: the request's bookkeeping (a throttle count) is committed.
A class that declares a `slug` is a problem type, listed in `PROBLEM_TYPES` (README's Errors table
documents each; the OpenAPI document lists the types each operation can answer). A subclass without
its own slug is the same type handled differently (`EmailTakenUncounted`); a class without any slug
is a group to catch, never raised (`Forbidden`). Raise the class: a raise site cannot name a type of
its own, so a typo cannot publish a new URI. Vault errors (`vault.errors`)
are mapped onto these types by `broker.web.problems`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

PROBLEM_BASE = "https://consentry.dev/problems/"


class BrokerError(Exception):
    """Root of the broker's errors; each subclass that declares a `slug` is one problem type."""

    slug: ClassVar[str]
    title: ClassVar[str]
    status: ClassVar[int]
    type_uri: ClassVar[str]  # PROBLEM_BASE + slug, set for each class that declares its slug
    # True for errors that answer a request whose bookkeeping must still be committed (throttle counts).
    keeps_changes: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "slug" in cls.__dict__:
            cls.type_uri = PROBLEM_BASE + cls.slug

    def __init__(self, detail: str, **extensions: Any) -> None:
        if not hasattr(self, "slug"):
            raise TypeError(f"{type(self).__name__} groups problem types: raise one of them")
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


# 400


class MalformedRequest(BrokerError):
    """The request body, or a parameter the auditor API needs as a number, could not be parsed."""

    slug, title, status = "malformed-request", "Malformed request", 400


class CodeRejected(BrokerError):
    """An emailed one-time code that does not work (catch this for all three); its bookkeeping (the
    wrong-code count) is kept."""

    slug, title, status = "invalid-code", "Code not accepted", 400
    keeps_changes = True


class CodeUsed(CodeRejected):
    """The code was used already: each works once."""

    slug = "code-used"


class CodeExpired(CodeRejected):
    """The code is past its time, or was for an address (or a change of address) no longer pending."""

    slug = "code-expired"


class PurposeRequired(BrokerError):
    """A read of a grant of several purposes that does not say which one it is for."""

    slug, title, status = "purpose-required", "Purpose required", 400


class AuditRangeError(BrokerError):
    """A leaf index, tree size or range that the audit log does not have (yet): a bad request."""

    slug, title, status = "audit-range", "Outside the audit log", 400


# 401


class NotAuthenticated(BrokerError):
    """Missing, expired, revoked or forged credentials."""

    slug, title, status = "unauthenticated", "Authentication required", 401


class LoginStepExpired(NotAuthenticated):
    """The `mfa_token` of a sign-in's second step is unknown, used up or expired."""

    slug = "login-step-expired"


class ChallengeInvalid(NotAuthenticated):
    """A WebAuthn challenge that is unknown, used, expired or was issued for something else."""

    slug = "challenge-invalid"


class InvalidCredentials(BrokerError):
    """Wrong email or password, deliberately indistinguishable."""

    slug, title, status = "invalid-credentials", "Invalid credentials", 401
    keeps_changes = True


class PasskeyRefused(InvalidCredentials):
    """A passkey answer that does not verify (signature, origin, RP id, counter, owner, challenge)."""

    slug = "passkey-refused"


class SecondFactorRefused(InvalidCredentials):
    """A wrong, replayed or used authenticator-app code or recovery code."""

    slug = "second-factor-refused"


# 403


class Forbidden(BrokerError):
    """The caller is known but may not do this: catch it for any of the types below."""

    title, status = "Forbidden", 403


class CrossSiteRefused(Forbidden):
    """A cookie-authenticated request that changes state came from another origin."""

    slug = "csrf"


class InsufficientScope(Forbidden):
    """The access token lacks the scope the endpoint needs (or is a brand token where a grant's is)."""

    slug = "insufficient-scope"


class ReauthenticationRequired(Forbidden):
    """A sensitive action without a recent enough sign-in; `reauthenticate` names the endpoint."""

    slug = "reauthentication-required"


class EmailUnverified(Forbidden):
    """Adding a second factor needs a confirmed address."""

    slug = "email-unverified"


class GrantSuspended(Forbidden):
    """A read on a suspended grant; `since` says when."""

    slug = "grant-suspended"


class GrantRevoked(Forbidden):
    """A read on a revoked grant; `since` says when."""

    slug = "grant-revoked"


class GrantExpired(Forbidden):
    """A read on an expired grant; `since` says when."""

    slug = "grant-expired"


class PurposeNotGranted(Forbidden):
    """A read for a purpose the grant does not cover (or not the one its token was issued for); it is
    logged as a refused read (`profile.read_refused`), which must be kept."""

    slug = "purpose-not-granted"
    keeps_changes = True


class RevokedReadCounted(GrantRevoked):
    """A brand's read after the grant ended by revocation: refused, and counted on the grant."""

    keeps_changes = True


class ExpiredReadCounted(GrantExpired):
    """A brand's read after the grant expired: refused, and counted on the grant."""

    keeps_changes = True


class ReconfirmationDue(Forbidden):
    """A read refused because the grant's 90-day reconfirmation is due; the grant itself is unchanged."""

    slug = "grant-reconfirmation-due"


class ValueOverdue(Forbidden):
    """A read refused because the brand has not delivered what it owes; the suspension is kept."""

    slug = "value-overdue"
    keeps_changes = True


# 404, 405


class NotFound(BrokerError):
    """No such resource for this caller."""

    slug, title, status = "not-found", "Not found", 404


class DeletionNotAttested(NotFound):
    """No deletion was attested for the grant (yet); `deletion_due_at` says by when one is due."""

    slug = "deletion-not-attested"


class MethodNotAllowed(BrokerError):
    """The path is served, not with this method; `Allow` lists the methods that are."""

    slug, title, status = "method-not-allowed", "Method Not Allowed", 405

    def __init__(self, detail: str, *, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow  # the `Allow` header's value (RFC 9110 §15.5.6)


# 409


class Conflict(BrokerError):
    """The request conflicts with the current state, or with a change made at the same time."""

    slug, title, status = "conflict", "Conflict", 409


class EmailTaken(Conflict):
    """A change of address to one another account has. The attempt's count is kept: refusals would
    otherwise tell a prober, for free, which addresses have accounts."""

    slug = "email-taken"
    keeps_changes = True


class EmailLookalike(EmailTaken):
    """A change of address to one that looks like another account's (confusable characters)."""

    slug = "email-lookalike"


class EmailTakenUncounted(EmailTaken):
    """`email-taken` where nothing of the attempt is kept: an account made directly (demo, operator),
    or a confirmed change whose address another account took meanwhile (the code stays unspent)."""

    keeps_changes = False


class EmailAlreadyVerified(Conflict):
    """A new verification code for an address that is already confirmed."""

    slug = "email-already-verified"


class PasskeyExists(Conflict):
    """The passkey is registered already."""

    slug = "passkey-exists"


class TotpEnrolled(Conflict):
    """An authenticator app is already set up."""

    slug = "totp-enrolled"


class NoSecondFactor(Conflict):
    """Recovery codes asked for without a second factor (they would open nothing)."""

    slug = "no-second-factor"


class IllegalTransition(Conflict):
    """A grant cannot move from its state to the one asked for."""

    slug = "grant-state"


class GrantEnded(Conflict):
    """An ended (revoked or expired) grant cannot be renewed."""

    slug = "grant-ended"


class GrantNotEnded(Conflict):
    """A deletion is attested, and an end acknowledged, after the grant ends, not before."""

    slug = "grant-not-ended"


class RenewalNotOpen(Conflict):
    """The grant cannot be renewed yet; `window_opens_at` says when it can."""

    slug = "renewal-not-open"


class DeletionAlreadyAttested(Conflict):
    """A grant's deletion is attested once."""

    slug = "deletion-already-attested"


class OfferWithdrawn(Conflict):
    """The offer was withdrawn: it cannot be revised, accepted or renewed."""

    slug = "offer-withdrawn"


class OfferSuperseded(Conflict):
    """A newer version of the offer replaced it; `latest_id` names that version."""

    slug = "offer-superseded"


class ValueSettled(Conflict):
    """The obligation was delivered or settled already, or the grant owes nothing now."""

    slug = "value-settled"


class EndAlreadyAcknowledged(Conflict):
    """The brand already acknowledged the end of this grant: a statement is made once."""

    slug = "end-already-acknowledged"


class DisputeNotReady(Conflict):
    """The dispute cannot go to the auditors, or be decided, yet: the brand still has time to answer,
    or the customer has not agreed to show the file."""

    slug = "dispute-not-ready"


class DisputeDecided(Conflict):
    """The escalation was decided (differently), declined or withdrawn: only a new escalation reopens it."""

    slug = "dispute-decided"


class NotDeclinable(Conflict):
    """The brand cannot decline this grant: not started in the directory, past the window, already
    read, or already ended (revoking is what remains)."""

    slug = "grant-not-declinable"


class ProfileHeld(Conflict):
    """The profile is in self-custody: sealed under a key only its customer holds, so the broker can
    neither show nor change it; the customer's browser does (the portal, or `/v1/me/custody`)."""

    slug = "profile-held"


class ProfileNotHeld(Conflict):
    """A self-custody operation on a profile whose key the broker holds: move it to self-custody first."""

    slug = "profile-not-held"


class GrantsUnsealable(Conflict):
    """Self-custody needs every live grant sealed to its brand; these grants' brands registered no
    encryption key (`errors` names them): end them first, or stay in the broker's custody."""

    slug = "grants-unsealable"


class SealedCopyMissing(Conflict):
    """A self-custody grant whose fields the customer's browser has not sealed for this purpose: there
    is nothing the broker could hand over (it cannot open the profile). It comes when the customer
    next opens the portal."""

    slug = "sealed-copy-missing"


# 413, 422, 429


class RequestTooLarge(BrokerError):
    """The body is over the limit."""

    slug, title, status = "request-too-large", "Request body too large", 413


class ValidationFailed(BrokerError):
    """Well-formed input that is not acceptable; `errors` lists each problem with a JSON pointer."""

    slug, title, status = "validation", "Invalid input", 422

    @classmethod
    def at(cls, pointer: str, detail: str) -> Self:
        """One problem, at `pointer` (a JSON pointer into the input), saying `detail`."""
        return cls(detail, errors=[{"pointer": pointer, "detail": detail}])


class WrongPassword(ValidationFailed):
    """The current password, asked for before changing it, is wrong; the failure is counted."""

    slug = "wrong-password"
    keeps_changes = True


class EmailChangeNeedsVerification(ValidationFailed):
    """The profile tried to change the email, which changes through `POST /v1/me/email` (with a code)."""

    slug = "email-change-needs-verification"


class TooManyAttempts(BrokerError):
    """Throttled; `retry_after` is in seconds."""

    slug, title, status = "too-many-attempts", "Too many attempts", 429
    keeps_changes = True

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


# 500, 503


class Internal(BrokerError):
    """A fault of ours; the answer names none of it (it is logged)."""

    slug, title, status = "internal", "Internal error", 500


class VaultFailed(Internal):
    """The vault could not complete the request (a key provider, say)."""

    slug = "vault"


class VaultGone(Internal):
    """The account's data no longer exists (its data key was destroyed)."""

    slug = "vault-gone"


class IntegrityFailed(Internal):
    """Stored data could not be decrypted: it was altered, or moved; the operator is alerted."""

    slug = "integrity"


class AuditIntegrityError(Internal):
    """The stored log contradicts itself or a checkpoint already signed: it was truncated or rewritten."""

    slug, title = "audit-integrity", "The audit log is damaged"


class ServiceUnavailable(BrokerError):
    """A dependency is briefly unavailable; clients should retry (`Retry-After`, seconds)."""

    slug, title, status = "unavailable", "Service unavailable", 503
    retry_after: int | None = 1


class ReadNotRecorded(ServiceUnavailable):
    """The read could not be recorded in the audit log (in time), so it was not served."""

    slug = "read-not-recorded"


class DeletionReceiptPending(ServiceUnavailable):
    """The account is deleted (committed), but its receipt could not be proven just now: it is signed
    and kept for its hour at `receipt_url`, where it can be downloaded without an account."""

    slug, title = "deletion-receipt-pending", "Account deleted; its receipt is not ready"
    retry_after = None  # retrying the deletion cannot help: the account is gone


# The table: every problem type the broker answers, each documented in README's Errors table.
PROBLEM_TYPES: tuple[type[BrokerError], ...] = (
    MalformedRequest, CodeRejected, CodeUsed, CodeExpired, AuditRangeError,
    NotAuthenticated, LoginStepExpired, ChallengeInvalid,
    InvalidCredentials, PasskeyRefused, SecondFactorRefused,
    PurposeRequired, PurposeNotGranted,
    CrossSiteRefused, InsufficientScope, ReauthenticationRequired, EmailUnverified,
    GrantSuspended, GrantRevoked, GrantExpired, ReconfirmationDue, ValueOverdue,
    NotFound, DeletionNotAttested, MethodNotAllowed,
    Conflict, EmailTaken, EmailLookalike, EmailAlreadyVerified, PasskeyExists, TotpEnrolled, NoSecondFactor,
    IllegalTransition, GrantEnded, GrantNotEnded, RenewalNotOpen, DeletionAlreadyAttested,
    OfferWithdrawn, OfferSuperseded, ValueSettled, EndAlreadyAcknowledged,
    DisputeNotReady, DisputeDecided, NotDeclinable, ProfileHeld, ProfileNotHeld, GrantsUnsealable,
    SealedCopyMissing,
    RequestTooLarge, ValidationFailed, WrongPassword, EmailChangeNeedsVerification, TooManyAttempts,
    Internal, VaultFailed, VaultGone, IntegrityFailed, AuditIntegrityError,
    ServiceUnavailable, ReadNotRecorded, DeletionReceiptPending,
)  # fmt: skip

# Types any request can be answered with, whatever its operation documents: a method the path does
# not serve, a body over the limit (both refused before an operation is chosen), a write that lost a
# race with a concurrent one (reads write too: audit entries, checkpoints), faults of ours, of the
# stored data and of the database.
ANSWERED_ANYWHERE: tuple[type[BrokerError], ...] = (
    MethodNotAllowed, Conflict, RequestTooLarge,
    Internal, VaultFailed, VaultGone, IntegrityFailed, AuditIntegrityError, ServiceUnavailable,
)  # fmt: skip


class DatabaseNotMigrated(Exception):
    """The database schema is behind the code; the message says which command to run."""


class DatabaseMisconfigured(Exception):
    """The database did not apply a setting Consentry relies on; the message says what to set."""
