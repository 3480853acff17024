"""API shapes of receipts: each one a self-contained bundle that can be checked offline."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from broker.consent.access_log import LoggedEntry
from broker.receipts.deletion import MailOutcome
from broker.voice.preferences import PreferencesPublic

__all__ = ["DeletionReceiptPublic", "ReceiptPage", "ReceiptPublic"]


class ReceiptPublic(BaseModel):
    """A consent receipt and everything needed to check it without trusting the broker: the signed
    JWS, the public key that signed it, the audit entry it names with its inclusion proof, and the
    signed checkpoint that proof leads to. `consentry-audit receipt verify` takes this document."""

    id: UUID
    grant_id: UUID
    event: str = Field(
        description="given, amended, renewed, withdrawn, revoked, expired, or dispute-decided (an "
        "auditor's decision on a dispute)"
    )
    issued_at: datetime
    receipt: dict[str, Any] = Field(description="the JWS payload, decoded (consentry-receipt/1)")
    jws: str = Field(description="compact JWS (alg Ed25519, typ consent-receipt+jwt) of the receipt")
    signing_key: dict[str, Any] = Field(
        description="the public JWK that signed it (kid in the JWS header); trust it only if it is in a "
        "JWKS you fetched from /.well-known/jwks.json or its thumbprint is pinned"
    )
    audit_entry: LoggedEntry = Field(description="the audit entry the receipt names, with its proof")
    checkpoint: str = Field(description="C2SP signed note of the checkpoint the proof leads to")
    verifier_key: str = Field(description="the log's verifier key; pin it out of band")
    tree_size: int = Field(ge=0)
    preferences: PreferencesPublic | None = Field(
        default=None,
        description="for you only: your preferences the receipt binds (its `preferences.sha256` is their "
        "digest, with `preferences_salt`); null in a brand's copy, or once your account is gone",
    )
    preferences_salt: str | None = Field(
        default=None, description="for you only: the random salt of that version, part of its digest"
    )


class ReceiptPage(BaseModel):
    """Receipts, newest first (keyset pagination)."""

    items: list[ReceiptPublic]
    next_cursor: str | None = Field(description="pass as `cursor` for older receipts; null on the last page")


class DeletionReceiptPublic(BaseModel):
    """The receipt of your account's deletion, with everything needed to check it without trusting
    the broker: the signed JWS, the public key that signed it, the `account.deleted` audit entry with
    its inclusion proof and the signed checkpoint it leads to. Keep it: the account is gone, and so is
    any way to ask for it again. `consentry-audit receipt verify` takes this document."""

    id: UUID
    event: str = Field(description="account-deleted")
    issued_at: datetime
    receipt: dict[str, Any] = Field(
        description="the JWS payload, decoded (consentry-deletion-receipt/1): what was destroyed, the "
        "grants it ended with your pairwise subject at each brand and its deletion duty, what stays and "
        "why, and the audit entry it names"
    )
    jws: str = Field(description="compact JWS (alg Ed25519, typ deletion-receipt+jwt) of the receipt")
    signing_key: dict[str, Any] = Field(
        description="the public JWK that signed it (kid in the JWS header); trust it only if it is in a "
        "JWKS you fetched from /.well-known/jwks.json or its thumbprint is pinned"
    )
    audit_entry: LoggedEntry = Field(description="the account.deleted entry, with its inclusion proof")
    checkpoint: str = Field(description="C2SP signed note of the checkpoint the proof leads to")
    verifier_key: str = Field(description="the log's verifier key; pin it out of band")
    tree_size: int = Field(ge=0)
    mail: MailOutcome | None = Field(
        default=None,
        description="in the answer to the deletion: whether this receipt went by mail to the account's "
        "address (sent; not_sent: keep this answer; no_confirmed_address: the address was never "
        "confirmed, so nothing was sent). Null in a later download",
    )
